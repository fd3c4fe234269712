"""The model registry and every registered model (docs/design.md 3)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from core.colorspace import gray_level
from core.models import (
    ModelSpec,
    UnknownModelError,
    create_model,
    get_spec,
    list_models,
    register_model,
)
from core.models.efficientnet_lite import pretrained_weights_path
from core.models.unet import GrayToEncoderInput
from core.quantize import NUM_BINS
from core.torch_legacy import load_state_dict

OUTPUT_CHANNELS = {"ab_bins": NUM_BINS, "ab": 2, "uv": 2}


def _input_for(model: keras.Model, h: int, w: int, rng) -> list[np.ndarray]:
    """Random inputs for every model input; image inputs get (h, w) unless fixed."""
    arrays = []
    for inp in model.inputs:
        shape = list(inp.shape)
        if len(shape) == 4:
            shape[1] = shape[1] or h
            shape[2] = shape[2] or w
        shape[0] = 1
        arrays.append(rng.uniform(0, 1, shape).astype(np.float32))
    return arrays


def test_registry_lists_default_first() -> None:
    names = list_models()
    assert names[0] == "default"
    assert "default-reg" in names
    assert len(set(names)) == len(names)
    for name in names:
        spec = get_spec(name)
        assert isinstance(spec, ModelSpec) and spec.name == name
        assert spec.output in OUTPUT_CHANNELS
        assert spec.color_space in ("lab", "yuv")
        assert spec.input_size % spec.size_multiple == 0


# variants without shipped weights build in the slow run only (the heaviest)
EXPERIMENTS = {"default-v2s4", "default-lite1"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in EXPERIMENTS else n
        for n in list_models()
    ],
)
def test_every_model_builds_with_declared_output(name, rng) -> None:
    spec = get_spec(name)
    model = create_model(name, pretrained=False)
    inputs = _input_for(model, 64, 96, rng)
    out = np.asarray(model(inputs if len(inputs) > 1 else inputs[0], training=False))
    h, w = inputs[0].shape[1:3]
    channels = OUTPUT_CHANNELS[spec.output]
    assert out.shape == (1, h // spec.output_stride, w // spec.output_stride, channels)
    assert np.all(np.isfinite(out))
    if spec.output in ("ab", "uv"):
        assert np.abs(out).max() <= 1.0  # tanh range


@pytest.mark.slow
def test_default_model_shapes() -> None:
    model = create_model("default-v1", pretrained=False)
    x = np.full((2, 64, 96, 1), 0.5, np.float32)
    assert model(x).shape == (2, 32, 48, 313)
    reg = create_model("default-reg", pretrained=False)
    assert reg(x).shape == (2, 32, 48, 2)
    # any multiple of 32
    assert model(np.zeros((1, 32, 160, 1), np.float32)).shape == (1, 16, 80, 313)


@pytest.mark.slow
def test_decoder_ending_at_stride_4_drops_the_stride_2_stage() -> None:
    full = create_model("default", pretrained=False)
    short = create_model("default-v2s4", pretrained=False)
    names = {layer.name for layer in short.layers}
    assert "up1_a_conv" in {layer.name for layer in full.layers}
    assert not {"up1_a_conv", "up1_b_conv", "head_pool", "hint2_inject"} & names
    assert short.count_params() < full.count_params()
    with pytest.raises(ValueError, match="decoder_stride"):
        create_model("default-v1", pretrained=False, decoder_stride=4)


def test_gray_to_encoder_input_is_scaled_grey_level() -> None:
    lightness = np.linspace(0, 100, 101, dtype=np.float32)
    x = np.asarray(GrayToEncoderInput()(lightness.reshape(1, 1, -1, 1) / 100.0))
    assert x.shape == (1, 1, 101, 3)
    expected = (255.0 * gray_level(lightness) - 127.0) / 128.0
    for c in range(3):
        np.testing.assert_allclose(x[0, 0, :, c], expected, atol=1e-4)


@pytest.mark.parametrize("name", ["nope", "Default", ""])
def test_unknown_model_lists_known_names(name) -> None:
    for fn in (get_spec, create_model):
        with pytest.raises(UnknownModelError) as err:
            fn(name)
        message = str(err.value)
        assert repr(name) in message
        for known in list_models():
            assert known in message
    assert issubclass(UnknownModelError, KeyError)


def test_registering_a_name_twice_fails() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_model(ModelSpec(name="default-v1"))(lambda spec, **kw: None)
    assert get_spec("default-v1").output == "ab_bins"


@pytest.mark.slow
def test_pretrained_encoder_has_converted_imagenet_weights() -> None:
    state = load_state_dict(pretrained_weights_path("lite0"))
    model = create_model("default-v1", pretrained=True)
    encoder = model.get_layer("encoder")
    stem = encoder.get_layer("stem_conv").get_weights()[0]
    np.testing.assert_array_equal(
        stem, state["_conv_stem.weight"].transpose(2, 3, 1, 0)
    )
    dw = encoder.get_layer("blocks_7_dwconv").get_weights()[0]
    np.testing.assert_array_equal(
        dw, state["_blocks.7._depthwise_conv.weight"].transpose(2, 3, 0, 1)
    )
    gamma, beta, mean, var = encoder.get_layer("blocks_15_bn2").get_weights()
    np.testing.assert_array_equal(mean, state["_blocks.15._bn2.running_mean"])
    np.testing.assert_array_equal(var, state["_blocks.15._bn2.running_var"])
    # without pretrained weights the stem is a fresh random initialisation
    fresh = create_model("default-v1", pretrained=False).get_layer("encoder")
    assert not np.allclose(fresh.get_layer("stem_conv").get_weights()[0], stem)


def test_encoder_batch_norm_is_frozen() -> None:
    model = create_model("default-v1", pretrained=False)
    encoder = model.get_layer("encoder")
    bns = [
        la for la in encoder.layers if isinstance(la, keras.layers.BatchNormalization)
    ]
    assert bns and not any(la.trainable for la in bns)
    # decoder BN still trains
    assert model.get_layer("up1_a_bn").trainable


@pytest.mark.parametrize("name", ["default-v1", "default-reg", "vgg16-reg", "cgan"])
def test_spec_normalisation_round_trips_and_keeps_the_scales(name) -> None:
    """ModelSpec carries the normalisation: L / 100 and ab / 110 (ab / 128 for the
    paper's VGG16 regression), 2Y - 1 and (U / U_MAX, V / V_MAX) for the cGAN."""
    from core.colorspace import U_MAX, V_MAX

    spec = get_spec(name)
    rng = np.random.default_rng(0)
    chroma = rng.uniform(-80, 80, (4, 5, 2)).astype(np.float32)
    if spec.color_space == "yuv":
        luma = rng.uniform(0, 1, (4, 5, 1)).astype(np.float32)
        np.testing.assert_array_equal(spec.luma_to_norm(luma), luma * 2.0 - 1.0)
        chroma *= np.float32(0.4 / 80)
        scale = np.array([U_MAX, V_MAX], np.float32)
    else:
        luma = rng.uniform(0, 100, (4, 5, 1)).astype(np.float32)
        np.testing.assert_array_equal(spec.luma_to_norm(luma), luma / 100.0)
        scale = 128.0 if name == "vgg16-reg" else 110.0
    norm = spec.chroma_to_norm(chroma)
    np.testing.assert_array_equal(norm, chroma / scale)
    np.testing.assert_array_equal(spec.norm_to_chroma(norm), norm * scale)
    assert spec.luma_to_norm(luma).dtype == np.float32
    tensor = spec.luma_to_norm(tf.constant(luma))
    np.testing.assert_array_equal(tensor.numpy(), spec.luma_to_norm(luma))

"""Zhang et al.'s modified VGG16, "vgg16-reg" and "vgg16-cls" (docs/design.md 3.4)."""

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from core.colorizer import Colorizer, network_shape
from core.colorspace import gray_level, rgb_to_lab
from core.models import create_model, get_spec
from core.models.vgg16 import (
    CAFFE_MEANS,
    VGG_WEIGHTS_FILE,
    GrayToVggInput,
    default_vgg_weights_path,
    scaled_width,
)
from core.quantize import NUM_BINS
from training.data import lab_example
from training.losses import classification_loss, regression_loss

NAMES = ("vgg16-reg", "vgg16-cls")
CHANNELS = {"vgg16-reg": 2, "vgg16-cls": NUM_BINS}
# Keras VGG16's conv layers in blocks 1-4 and their (C_in, C_out), 3-channel input
VGG_CONVS = {
    "block1_conv1": (3, 64),
    "block1_conv2": (64, 64),
    "block2_conv1": (64, 128),
    "block2_conv2": (128, 128),
    "block3_conv1": (128, 256),
    "block3_conv2": (256, 256),
    "block3_conv3": (256, 256),
    "block4_conv1": (256, 512),
    "block4_conv2": (512, 512),
    "block4_conv3": (512, 512),
}
LAST_CONVS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")
OURS = {n: n.replace("block", "conv").replace("_conv", "_") for n in VGG_CONVS}


def _count(weights) -> int:
    return sum(int(np.prod(v.shape)) for v in weights)


def _write_legacy_vgg(
    path: Path, rng: np.random.Generator, convs: dict[str, tuple[int, int]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A stand-in for Keras' no-top VGG16 file in its legacy HDF5 layout.

    Random float32 kernels (3, 3, C_in, C_out) and biases (C_out,), stored as Keras 2
    wrote them: root attr `layer_names`, per-layer attr `weight_names`.
    """
    arrays = {}
    layer_names = ["input_1"]
    with h5py.File(path, "w") as f:
        f.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S")
        for name, (c_in, c_out) in convs.items():
            kernel = rng.normal(0, 0.05, (3, 3, c_in, c_out)).astype(np.float32)
            bias = rng.normal(0, 0.05, c_out).astype(np.float32)
            group = f.create_group(name)
            names = [f"{name}/kernel:0", f"{name}/bias:0"]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            group[names[0]] = kernel
            group[names[1]] = bias
            arrays[name] = (kernel, bias)
            layer_names.append(name)
            if name in LAST_CONVS:
                pool = name.replace(name[6:], "_pool")
                f.create_group(pool).attrs["weight_names"] = np.array([], dtype="S")
                layer_names.append(pool)
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
    return arrays


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("vgg") / VGG_WEIGHTS_FILE
    return path, _write_legacy_vgg(path, np.random.default_rng(1), VGG_CONVS)


@pytest.fixture(scope="module")
def imagenet_model(vgg_file) -> keras.Model:
    return create_model("vgg16-cls", width=1.0, vgg_weights=str(vgg_file[0]))


@pytest.fixture(scope="module")
def astronaut_lab() -> tuple[np.ndarray, np.ndarray]:
    """Lightness (1, 64, 64, 1) in [0, 100] and ab (1, 16, 16, 2) of a real photo."""
    rgb = Image.fromarray(skimage.data.astronaut()).resize((64, 64), Image.BICUBIC)
    lightness, ab = lab_example(tf.constant(np.asarray(rgb) / 255.0, tf.float32), 4)
    return lightness.numpy()[None], ab.numpy()[None]


def test_specs() -> None:
    for name in NAMES:
        spec = get_spec(name)
        assert spec.color_space == "lab"
        assert (spec.input_size, spec.size_multiple, spec.output_stride) == (224, 8, 4)
        assert spec.weights == f"{name}.weights.h5"
        assert spec.defaults == {"width": 0.25}
        assert spec.train_defaults["batch_size"] == 64
        assert spec.train_defaults["size"] == 224
        assert "VGG16" in spec.description
    assert get_spec("vgg16-reg").output == "ab"
    assert get_spec("vgg16-reg").ab_scale == 128.0
    assert get_spec("vgg16-reg").train_defaults["lr"] == 1e-4
    assert get_spec("vgg16-cls").output == "ab_bins"
    assert get_spec("vgg16-cls").train_defaults["lr"] == 3e-5


@pytest.mark.parametrize("name", NAMES)
def test_output_is_a_quarter_of_the_input(name) -> None:
    model = create_model(name, pretrained=False)
    c = CHANNELS[name]
    assert model(np.zeros((1, 224, 224, 1), np.float32)).shape == (1, 56, 56, c)
    assert model(np.zeros((2, 64, 96, 1), np.float32)).shape == (2, 16, 24, c)
    assert model(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 2, 2, c)
    assert model.input_shape == (None, None, None, 1)


@pytest.mark.parametrize(
    ("name", "width", "trainable"),
    [
        ("vgg16-cls", 1.0, 32_235_385),
        ("vgg16-reg", 1.0, 32_155_458),
        ("vgg16-cls", 0.5, 8_082_521),
        ("vgg16-cls", 0.25, 2_032_585),
    ],
)
def test_parameter_counts_match_the_doc(name, width, trainable) -> None:
    model = create_model(name, width=width)
    assert _count(model.trainable_weights) == trainable
    # the BN moving statistics: 2 x (64 + 128 + 256 + 4 x 512) at full width
    assert _count(model.non_trainable_weights) == round(4992 * width)


def test_default_width_is_a_quarter() -> None:
    model = create_model("vgg16-cls")
    assert _count(model.trainable_weights) == 2_032_585


def test_body_layout() -> None:
    model = create_model("vgg16-cls", width=1.0)
    strides = {"conv1_2": 2, "conv2_2": 2, "conv3_3": 2, "conv1_1": 1, "conv4_3": 1}
    for name, stride in strides.items():
        assert model.get_layer(name).strides == (stride, stride)
    for block in range(1, 8):
        dilation = 2 if block in (5, 6) else 1
        assert model.get_layer(f"conv{block}_1").dilation_rate == (dilation, dilation)
    widths = {"conv1_1": 64, "conv2_1": 128, "conv3_1": 256, "conv7_3": 512}
    for name, width in widths.items():
        assert model.get_layer(name).filters == width
    up = model.get_layer("conv8_up")
    assert isinstance(up, keras.layers.Conv2DTranspose)
    assert up.kernel_size == (4, 4) and up.strides == (2, 2) and up.filters == 256
    assert model.get_layer("conv8_3").filters == 256
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    body = [la for la in convs if la.name.startswith("conv") and la is not up]
    assert len(body) == 2 + 2 + 3 * 5 + 2
    assert all(la.kernel_size == (3, 3) for la in body)
    assert all(la.padding == "same" for la in [*body, up])
    assert not any(isinstance(la, keras.layers.MaxPooling2D) for la in model.layers)
    bns = [
        la.name
        for la in model.layers
        if isinstance(la, keras.layers.BatchNormalization)
    ]
    assert bns == [f"conv{b}_bn" for b in range(1, 8)]
    assert model.get_layer("logits").filters == NUM_BINS
    assert model.get_layer("logits").kernel_size == (1, 1)
    # each BN follows its block's last conv (after that conv's ReLU)
    assert model.get_layer("conv3_bn").input is model.get_layer("conv3_3").output


def test_width_multiplier_rule() -> None:
    assert [scaled_width(c, 1.0) for c in (64, 128, 256, 512)] == [64, 128, 256, 512]
    assert [scaled_width(c, 0.25) for c in (64, 128, 256, 512)] == [16, 32, 64, 128]
    assert [scaled_width(c, 0.125) for c in (64, 128, 256, 512)] == [8, 16, 32, 64]
    assert scaled_width(64, 0.01) == 8  # never below 8
    assert scaled_width(64, 0.3) == 16  # 19.2 -> nearest multiple of 8
    model = create_model("vgg16-reg", width=0.125)
    assert model.get_layer("conv1_1").filters == 8
    assert model.get_layer("ab_norm").filters == 2  # heads keep their outputs
    with pytest.raises(ValueError, match="width must be > 0"):
        create_model("vgg16-reg", width=0.0)


def test_regression_output_stays_in_tanh_range(rng) -> None:
    model = create_model("vgg16-reg", width=0.125)
    # big weights push the pre-activation far out, where only tanh bounds it
    head = model.get_layer("ab_norm")
    kernel, _ = head.get_weights()
    head.set_weights([kernel * 1e6, np.array([30.0, -30.0], np.float32)])
    x = np.concatenate(
        [
            rng.uniform(0, 1, (2, 32, 48, 1)),
            np.zeros((1, 32, 48, 1)),
            np.ones((1, 32, 48, 1)),
        ]
    ).astype(np.float32)
    out = np.asarray(model(x, training=False))
    assert out.shape == (4, 8, 12, 2)
    assert np.all(np.abs(out) <= 1.0) and np.abs(out).max() > 0.99


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_lowers_the_loss(name, astronaut_lab) -> None:
    lightness, ab = astronaut_lab
    model = create_model(name)
    spec = get_spec(name)
    weights = tf.ones(NUM_BINS)

    def loss_fn() -> tf.Tensor:
        out = model(lightness / 100.0, training=True)
        if spec.output == "ab_bins":
            return classification_loss(out, ab, weights)
        return regression_loss(out, ab, spec.ab_scale)

    optimizer = keras.optimizers.Adam(1e-3)
    with tf.GradientTape() as tape:
        before = loss_fn()
    grads = tape.gradient(before, model.trainable_weights)
    assert all(g is not None for g in grads)
    optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
    after = loss_fn()
    assert np.isfinite(float(before))
    assert float(after) < float(before)


def test_gray_to_vgg_input_is_caffe_scaled_grey_level() -> None:
    lightness = np.linspace(0, 100, 101, dtype=np.float32)
    x = np.asarray(GrayToVggInput()(lightness.reshape(1, 1, -1, 1) / 100.0))
    assert x.shape == (1, 1, 101, 3)
    for c in range(3):
        expected = 255.0 * gray_level(lightness) - CAFFE_MEANS[c]
        np.testing.assert_allclose(x[0, 0, :, c], expected, atol=1e-3)
    layer = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(GrayToVggInput(name="g"))
    )
    assert isinstance(layer, GrayToVggInput) and layer.name == "g"


def test_imagenet_weights_land_in_conv1_to_conv4(imagenet_model, vgg_file) -> None:
    _, arrays = vgg_file
    model = imagenet_model
    for theirs, ours in OURS.items():
        layer = model.get_layer(ours)
        kernel, bias = layer.get_weights()
        np.testing.assert_array_equal(kernel, arrays[theirs][0])
        np.testing.assert_array_equal(bias, arrays[theirs][1])
        assert not layer.trainable
    assert model.get_layer("conv1_1").get_weights()[0].shape == (3, 3, 3, 64)
    assert isinstance(model.get_layer("to_vgg_input"), GrayToVggInput)
    # the model still takes L / 100
    assert model.input_shape == (None, None, None, 1)
    # the BN after the frozen convs, and everything from conv5 on, still trains
    for name in ("conv1_bn", "conv4_bn", "conv5_1", "conv8_up", "logits"):
        assert model.get_layer(name).trainable
    # 7,635,264 frozen parameters (docs/design.md 3.4.4); conv1_1 takes 3 channels
    frozen = _count(w for n in OURS.values() for w in model.get_layer(n).weights)
    assert frozen == 7_635_264
    assert _count(model.trainable_weights) == 32_235_385 + 2 * 9 * 64 - frozen


def test_imagenet_model_runs_on_lightness(imagenet_model) -> None:
    out = imagenet_model(np.full((1, 32, 32, 1), 0.5, np.float32), training=False)
    assert out.shape == (1, 8, 8, NUM_BINS)
    assert np.all(np.isfinite(np.asarray(out)))


def test_pretrained_reads_the_keras_cache(vgg_file, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".keras" / "models" / VGG_WEIGHTS_FILE
    assert default_vgg_weights_path() == expected
    with pytest.raises(FileNotFoundError) as err:
        create_model("vgg16-reg", width=1.0, pretrained=True)
    message = str(err.value)
    assert "\n" not in message
    assert str(expected) in message and "cannot be downloaded" in message
    expected.parent.mkdir(parents=True)
    expected.symlink_to(vgg_file[0])
    model = create_model("vgg16-reg", width=1.0, pretrained=True)
    np.testing.assert_array_equal(
        model.get_layer("conv4_3").get_weights()[1], vgg_file[1]["block4_conv3"][1]
    )


def test_missing_vgg_file_is_a_clear_error(tmp_path) -> None:
    missing = tmp_path / "nowhere.h5"
    with pytest.raises(FileNotFoundError, match=VGG_WEIGHTS_FILE):
        create_model("vgg16-cls", width=1.0, vgg_weights=str(missing))


def test_imagenet_init_needs_full_width(vgg_file) -> None:
    with pytest.raises(ValueError, match="width=1.0"):
        create_model("vgg16-cls", vgg_weights=str(vgg_file[0]))
    with pytest.raises(ValueError, match="width=1.0"):
        create_model("vgg16-cls", width=0.5, pretrained=True)


def test_wrong_shaped_vgg_file_is_a_clear_error(tmp_path) -> None:
    convs = dict(VGG_CONVS, block3_conv2=(256, 128))
    path = tmp_path / "wrong.h5"
    _write_legacy_vgg(path, np.random.default_rng(2), convs)
    with pytest.raises(ValueError, match="'block3_conv2'.*expected kernel"):
        create_model("vgg16-cls", width=1.0, vgg_weights=str(path))


def test_vgg_file_without_a_layer_is_a_clear_error(tmp_path) -> None:
    convs = {k: v for k, v in VGG_CONVS.items() if k != "block4_conv3"}
    path = tmp_path / "short.h5"
    _write_legacy_vgg(path, np.random.default_rng(3), convs)
    with pytest.raises(ValueError, match="no layer 'block4_conv3'"):
        create_model("vgg16-cls", width=1.0, vgg_weights=str(path))


def test_keras3_weights_file_is_not_taken_for_vgg(tmp_path) -> None:
    path = tmp_path / "other.weights.h5"
    create_model("vgg16-cls", width=0.125).save_weights(path)
    with pytest.raises(ValueError, match="legacy HDF5"):
        create_model("vgg16-cls", width=1.0, vgg_weights=str(path))


def test_imagenet_input_without_weights(imagenet_model, tmp_path) -> None:
    """Weights trained from the ImageNet init load into an `imagenet_input` model."""
    model = create_model("vgg16-cls", width=1.0, imagenet_input=True)
    assert model.get_layer("conv1_1").get_weights()[0].shape == (3, 3, 3, 64)
    assert all(la.trainable for la in model.layers)
    path = tmp_path / "trained.weights.h5"
    imagenet_model.save_weights(path)
    model.load_weights(path)
    np.testing.assert_array_equal(
        model.get_layer("conv2_1").get_weights()[0],
        imagenet_model.get_layer("conv2_1").get_weights()[0],
    )


@pytest.mark.parametrize("name", NAMES)
def test_colorizer_loads_and_colorizes(name, tmp_path) -> None:
    path = tmp_path / f"{name}.weights.h5"
    create_model(name, pretrained=False).save_weights(path)
    colorizer = Colorizer.load(name, weights=path)
    photo = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((75, 50)))
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    out = colorizer.colorize(gray, size=64)
    assert out.size == (75, 50) and out.mode == "RGB"
    lab_in = rgb_to_lab(np.repeat(gray[..., None], 3, axis=-1))
    lab_out = rgb_to_lab(np.asarray(out))
    # the output keeps the input lightness (up to gamut clipping and uint8 rounding)
    assert np.median(np.abs(lab_out[..., 0] - lab_in[..., 0])) < 1.0
    h, w = network_shape(50, 75, 64, 8)
    assert w == 64 and h % 8 == 0
    raw = colorizer.predict_output(lab_in[..., 0], size=64)
    assert raw.shape == (h // 4, w // 4, CHANNELS[name])

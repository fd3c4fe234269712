"""The cGAN generator and discriminator (docs/design.md 3.5.2, 3.5.3) and its spec."""

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from core.colorspace import rgb_to_yuv
from core.models import create_model, get_spec
from core.models.cgan import build_discriminator


def _photo_crops(n: int) -> np.ndarray:
    """n real 64x64 photos: top-left and bottom-right squares of scikit-image photos.

    Returns uint8 (n, 64, 64, 3).
    """
    crops = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = Image.fromarray(getattr(skimage.data, name)())
        side = min(image.size) * 4 // 5
        w, h = image.size
        for box in ((0, 0, side, side), (w - side, h - side, w, h)):
            crops.append(np.asarray(image.crop(box).resize((64, 64), Image.LANCZOS)))
    return np.stack(crops[:n])


def _y_norm(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (B, 64, 64, 3) -> y = 2Y - 1, float32 (B, 64, 64, 1)."""
    return rgb_to_yuv(rgb / 255.0)[..., :1] * 2.0 - 1.0


def _counts(model: keras.Model) -> tuple[int, int]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, frozen


def _set_batch_statistics(model: keras.Model, inputs: list[np.ndarray]) -> None:
    """Give every BatchNorm the statistics of one batch, as training leaves them.

    A fresh model's moving statistics (mean 0, variance 1) leave the small noise map Z
    unnormalised in inference mode, unlike any trained generator.
    """
    norms = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(inputs, training=True)
    for layer, momentum in zip(norms, momenta, strict=True):
        layer.momentum = momentum


@pytest.fixture(scope="module")
def generator() -> keras.Model:
    keras.utils.set_random_seed(0)
    return create_model("cgan", pretrained=False)


def test_cgan_spec_is_a_64px_yuv_sampling_model() -> None:
    spec = get_spec("cgan")
    assert spec.color_space == "yuv" and spec.output == "uv"
    assert spec.input_size == 64 and spec.fixed_size and spec.output_stride == 1
    assert spec.noise_dim == 100 and spec.samples
    assert spec.weights == "cgan.weights.h5"
    assert spec.train_defaults == {"lr": 5e-5, "batch_size": 64, "noise_dim": 100}


def test_generator_parameter_count_and_shapes(generator) -> None:
    assert _counts(generator) == (901_000, 706)
    shapes = [tuple(x.shape) for x in generator.inputs]
    assert shapes == [(None, 64, 64, 1), (None, 100)]
    y = _y_norm(_photo_crops(3))
    z = np.random.default_rng(0).uniform(-1, 1, (3, 100)).astype(np.float32)
    uv = np.asarray(generator([y, z], training=False))
    assert uv.shape == (3, 64, 64, 2) and uv.dtype == np.float32


def test_generator_follows_the_table() -> None:
    """Kernels and widths of docs/design.md 3.5.2; y and Z appended after each block."""
    model = create_model("cgan", pretrained=False)
    table = [(7, 128, 130), (5, 64, 66), (5, 64, 66), (5, 64, 66), (5, 32, 34)]
    for i, (kernel, filters, channels) in enumerate(table, start=1):
        conv = model.get_layer(f"block{i}_conv")
        assert conv.kernel_size == (kernel, kernel) and conv.filters == filters
        assert conv.strides == (1, 1) and conv.padding == "same"
        concat = model.get_layer(f"block{i}_concat")
        assert concat.output.shape[1:] == (64, 64, channels)
    assert model.get_layer("block6_conv").kernel_size == (5, 5)
    assert model.get_layer("noise_dense").units == 64 * 64
    assert model.get_layer("input_concat").output.shape[1:] == (64, 64, 2)


def test_builder_ignores_pretrained() -> None:
    model = create_model("cgan", pretrained=True)
    assert _counts(model) == (901_000, 706)


def test_discriminator_parameter_count_and_shapes(rng) -> None:
    model = build_discriminator()
    assert _counts(model) == (4_316_545, 1_792)
    assert tuple(model.input.shape) == (None, 64, 64, 3)
    for i, side in enumerate((32, 16, 8, 4), start=1):
        conv = model.get_layer(f"d{i}_conv")
        assert conv.kernel_size == (5, 5) and conv.strides == (2, 2)
        assert model.get_layer(f"d{i}_lrelu").output.shape[1:3] == (side, side)
    names = {layer.name for layer in model.layers}
    assert "d1_bn" not in names and {"d2_bn", "d3_bn", "d4_bn"} <= names
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    logit = np.asarray(model(x, training=False))
    assert logit.shape == (2, 1) and np.all(np.isfinite(logit))


@pytest.mark.parametrize("training", [False, True])
def test_generator_output_stays_in_tanh_range(generator, training, rng) -> None:
    y = np.concatenate(
        [_y_norm(_photo_crops(4)), np.full((1, 64, 64, 1), -1.0, np.float32)]
    )
    y = np.concatenate([y, np.ones((1, 64, 64, 1), np.float32)])
    z = rng.uniform(-1, 1, (6, 100)).astype(np.float32)
    z[0], z[1] = 1.0, -1.0  # the corners of the noise cube
    uv = np.asarray(generator([y, z], training=training))
    assert np.all(np.isfinite(uv))
    assert uv.min() >= -1.0 and uv.max() <= 1.0


def test_noise_changes_the_colours_and_a_fixed_noise_repeats_them() -> None:
    keras.utils.set_random_seed(1)
    model = create_model("cgan", pretrained=False)
    y = _y_norm(_photo_crops(4))
    rng = np.random.default_rng(3)
    z1, z2 = rng.uniform(-1, 1, (2, 4, 100)).astype(np.float32)
    _set_batch_statistics(model, [y, z1])
    uv1 = np.asarray(model([y, z1], training=False))
    uv2 = np.asarray(model([y, z2], training=False))
    # clearly different: per image, comparable to the spread of the output itself
    for a, b in zip(uv1, uv2, strict=True):
        assert np.abs(a - b).mean() > 0.3 * a.std()
    np.testing.assert_array_equal(np.asarray(model([y, z1], training=False)), uv1)


@pytest.mark.slow
def test_colorizer_runs_the_cgan_at_full_size_with_seeds(tmp_path) -> None:
    """Colorizer.load("cgan", weights=...): input size and luma kept, seeds sample."""
    from core.colorizer import Colorizer

    keras.utils.set_random_seed(2)
    model = create_model("cgan", pretrained=False)
    crops = _photo_crops(8)
    z = np.random.default_rng(4).uniform(-1, 1, (8, 100)).astype(np.float32)
    _set_batch_statistics(model, [_y_norm(crops), z])
    weights = tmp_path / "cgan.weights.h5"
    model.save_weights(weights)

    colorizer = Colorizer.load("cgan", weights=weights)
    photo = skimage.data.chelsea()  # 300 x 451, a real photo at its own size
    grey = np.round(rgb_to_yuv(photo / 255.0)[..., 0] * 255.0).astype(np.uint8)
    outputs = {
        seed: np.asarray(colorizer.colorize(Image.fromarray(grey), seed=seed))
        for seed in (0, 1)
    }
    again = np.asarray(colorizer.colorize(Image.fromarray(grey), seed=0))
    assert outputs[0].shape == (300, 451, 3) and outputs[0].dtype == np.uint8
    np.testing.assert_array_equal(again, outputs[0])
    a, b = (outputs[s].astype(np.float32) for s in (0, 1))
    assert np.abs(a - b).mean() > 5.0  # another seed, other colours
    for out in (a, b):
        # the full-resolution luma is kept (docs/design.md 1.7), up to clipping
        luma = rgb_to_yuv(out / 255.0)[..., 0] * 255.0
        clipped = np.any((out == 0) | (out == 255), axis=-1)
        assert clipped.mean() < 0.5  # random weights give vivid colours
        assert np.abs(luma - grey)[~clipped].max() <= 1.0
    # the seed's noise is z = default_rng([seed, i]).uniform(-1, 1, 100), as the
    # trainer's sample grids use it
    luma = (grey / 255.0).astype(np.float32)[..., None]
    y = tf.image.resize(luma, (64, 64), antialias=True).numpy()[None] * 2.0 - 1.0
    z1 = np.random.default_rng([1, 0]).uniform(-1, 1, (1, 100)).astype(np.float32)
    expected = np.asarray(model([y, z1], training=False))[0]
    raw = colorizer.predict_output(luma[..., 0], seed=1)
    np.testing.assert_allclose(raw, expected, atol=1e-5)

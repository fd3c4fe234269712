"""The Colorizer's fast paths give what the plain formulas of core.colorspace give.

Full-resolution work runs band by band on all cores, from 8-bit data by table; these
tests compare each path with the straightforward whole-image computation.
"""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from core.colorizer import compose, pixels_to_luma
from core.colorspace import lab_to_rgb, rgb_to_lab, rgb_to_yuv, yuv_to_rgb


def _plain_compose(luma: np.ndarray, chroma: np.ndarray, space: str) -> np.ndarray:
    """The whole-image reference: TF bilinear upsampling, colorspace, rounding."""
    h, w = luma.shape
    up = tf.image.resize(chroma, (h, w), method="bilinear").numpy()
    full = np.concatenate([luma[..., None], up], axis=-1)
    rgb = yuv_to_rgb(full) if space == "yuv" else lab_to_rgb(full)
    return np.round(rgb * 255.0).astype(np.uint8)


@pytest.mark.parametrize(
    "pixels",
    [
        np.arange(256, dtype=np.uint8).reshape(16, 16),
        skimage.data.coffee()[::3, ::3],
        np.repeat(skimage.data.camera()[::4, ::4, None], 3, axis=-1),  # grey as RGB
        np.random.default_rng(1).random((33, 40, 3)).astype(np.float32),
        np.random.default_rng(2).random((33, 40)).astype(np.float32),
    ],
    ids=["grey8", "rgb8", "grey-as-rgb8", "float-rgb", "float-grey"],
)
@pytest.mark.parametrize("space", ["lab", "yuv"])
def test_luma_equals_the_colorspace_conversion(pixels, space) -> None:
    rgb = pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    convert = rgb_to_yuv if space == "yuv" else rgb_to_lab
    expected = convert(rgb)[..., 0]
    got = pixels_to_luma(pixels, space)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4 if space == "lab" else 1e-6)


def test_luma_of_a_large_rgb_photo_runs_in_bands(rng) -> None:
    """More rows than one band: every band is filled, none twice."""
    rgb = rng.integers(0, 256, (700, 300, 3), dtype=np.uint8)
    np.testing.assert_allclose(pixels_to_luma(rgb), rgb_to_lab(rgb)[..., 0], atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "small"),
    [
        ((1, 1), (4, 4)),
        ((96, 128), (48, 64)),
        ((700, 300), (16, 8)),
        ((3, 900), (8, 32)),
    ],
)
@pytest.mark.parametrize("space", ["lab", "yuv"])
def test_compose_equals_the_whole_image_formulas(rng, shape, small, space) -> None:
    if space == "lab":
        luma = rng.uniform(0, 100, shape).astype(np.float32)
        chroma = rng.uniform(-90, 90, (*small, 2)).astype(np.float32)
    else:
        luma = rng.uniform(0, 1, shape).astype(np.float32)
        chroma = rng.uniform(-0.4, 0.4, (*small, 2)).astype(np.float32)
    image = np.stack([luma, luma, luma], axis=-1)
    got = np.asarray(compose(image, chroma, None, space), dtype=np.int16)
    expected = _plain_compose(luma, chroma, space).astype(np.int16)
    diff = np.abs(got - expected)
    # float rounding in another order may move a value across .5: one level, rarely
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_compose_keeps_alpha(rng) -> None:
    lab = np.zeros((20, 30, 3), np.float32)
    lab[..., 0] = 50.0
    alpha = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    out = compose(lab, np.zeros((5, 8, 2), np.float32), alpha)
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


def test_colorize_iter_gives_what_colorize_gives(random_colorizer, rng, tmp_path):
    grey = rng.integers(60, 200, (40, 50), dtype=np.uint8)
    missing = tmp_path / "missing.png"
    images = [grey, skimage.data.coffee()[::8, ::8], missing, grey.T.copy()]
    results = list(random_colorizer.colorize_iter(images, size=64))
    assert len(results) == len(images)
    assert str(missing) in str(results[2]) and isinstance(results[2], ValueError)
    for image, result in zip(images, results, strict=True):
        if image is missing:
            continue
        single = random_colorizer.colorize(image, size=64)
        np.testing.assert_array_equal(np.asarray(result), np.asarray(single))


def test_colorize_iter_checks_options_before_the_first_image(random_colorizer):
    with pytest.raises(ValueError, match="size"):
        random_colorizer.colorize_iter([np.zeros((4, 4), np.uint8)], size=8)

"""Image loading forms and the parallel PNG writer; Pillow reads what it writes."""

import io
import zlib

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.imageio import (
    ImageLoadError,
    _adler32_combine,
    encode_png,
    load_image,
    load_pixels,
    pixels_to_rgb,
)


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (1, 1, 3), (7, 5, 4), (5, 3, 2), (300, 201, 3), (1100, 900, 3), (3, 2000)],
)
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_encode_png_round_trips_through_pillow(rng, shape, workers) -> None:
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(pixels, workers=workers)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "PNG"
        back = np.asarray(im)
    np.testing.assert_array_equal(back, pixels)


def test_encode_png_zlib_stream_and_checksum_are_valid() -> None:
    """A stream of several strips decompresses with its Adler-32 checked by zlib."""
    photo = skimage.data.astronaut()  # 512 x 512 x 3: several strips
    data = encode_png(photo, workers=2)
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    raw = zlib.decompress(data[idat + 4 : idat + 4 + length])
    assert len(raw) == photo.shape[0] * (photo.shape[1] * 3 + 1)
    assert raw[0] == 2  # every row carries the "Up" filter


def test_encode_png_of_a_photo_decodes_to_the_photo() -> None:
    photo = Image.fromarray(skimage.data.coffee())
    with Image.open(io.BytesIO(encode_png(photo))) as im:
        np.testing.assert_array_equal(np.asarray(im), np.asarray(photo))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_encode_png_keeps_the_mode(rng, mode) -> None:
    channels = len(mode)
    pixels = rng.integers(0, 256, (9, 11, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)
    with Image.open(io.BytesIO(encode_png(image))) as im:
        assert im.mode == mode
        np.testing.assert_array_equal(np.asarray(im), np.asarray(image))


def test_encode_png_rejects_other_images() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="got P"):
        encode_png(Image.new("P", (4, 4)))
    with pytest.raises(ValueError, match="empty"):
        encode_png(np.zeros((0, 4, 3), np.uint8))


def test_adler32_combine_matches_zlib(rng) -> None:
    for n1, n2 in [(0, 5), (1, 1), (1000, 777), (70_000, 200_000)]:
        a, b = rng.bytes(n1), rng.bytes(n2)
        combined = _adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b))
        assert combined == zlib.adler32(a + b)


def test_load_pixels_keeps_8_bit_grey_as_one_channel(rng) -> None:
    grey = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    for source in (grey, grey[..., None], Image.fromarray(grey)):
        pixels, alpha = load_pixels(source)
        assert pixels.dtype == np.uint8 and pixels.shape == (6, 7) and alpha is None
        np.testing.assert_array_equal(pixels, grey)
    la = Image.merge("LA", [Image.fromarray(grey), Image.fromarray(grey[::-1].copy())])
    pixels, alpha = load_pixels(la)
    np.testing.assert_array_equal(pixels, grey)
    np.testing.assert_array_equal(alpha, grey[::-1])


def test_load_image_is_load_pixels_as_float_rgb(rng) -> None:
    cases = [
        rng.integers(0, 256, (6, 7), dtype=np.uint8),
        rng.integers(0, 256, (6, 7, 3), dtype=np.uint8),
        rng.integers(0, 65536, (6, 7), dtype=np.uint16),
        rng.random((6, 7, 4)),
    ]
    for arr in cases:
        rgb, alpha = load_image(arr)
        pixels, alpha2 = load_pixels(arr)
        assert rgb.dtype == np.float32 and rgb.shape == (6, 7, 3)
        np.testing.assert_array_equal(rgb, pixels_to_rgb(pixels))
        assert (alpha is None) == (alpha2 is None)
    rgb, _alpha = load_image(cases[0])
    np.testing.assert_allclose(rgb[..., 1], cases[0] / 255.0, atol=1e-7)


def test_load_pixels_rejects_shapes_without_two_dimensions() -> None:
    with pytest.raises(ImageLoadError, match="shape"):
        load_pixels(np.zeros(5, np.uint8))

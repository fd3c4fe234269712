"""Image loading forms and the parallel PNG writer; Pillow reads what it writes."""

import io
import logging
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.imageio import (
    ImageLoadError,
    ImageTooLargeError,
    _adler32_combine,
    encode_png,
    load_image,
    load_pixels,
    pixels_to_rgb,
)
from tests.bombs import png_claiming


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


# --- bad input (issue 19, section 4) ------------------------------------------------


def _float_tiff(path: Path, bad: dict[tuple[int, int], float]) -> Path:
    """A 12x10 float32 TIFF (mode F) of values in [0, 1], with `bad` pixels set."""
    values = np.linspace(0.2, 0.8, 120, dtype=np.float32).reshape(10, 12)
    for (y, x), value in bad.items():
        values[y, x] = value
    Image.fromarray(values, mode="F").save(path)
    return path


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ({(3, 4): np.nan}, "1 pixel is NaN or infinite"),
        (
            {(0, 0): np.inf, (9, 11): -np.inf, (5, 5): np.nan},
            "3 pixels are NaN or infinite",
        ),
    ],
    ids=["one-nan", "nan-and-inf"],
)
def test_float_tiff_with_nan_or_inf_is_refused(tmp_path, bad, expected) -> None:
    path = _float_tiff(tmp_path / "photo.tif", bad)
    for source in (path, str(path)):
        with pytest.raises(ImageLoadError) as err:
            load_pixels(source)
        assert str(err.value) == f"{path}: {expected}"
    with pytest.raises(ImageLoadError, match=f"^image bytes: {expected}$"):
        load_pixels(path.read_bytes())
    with Image.open(path) as im, pytest.raises(ImageLoadError, match=expected):
        load_image(im)


def test_finite_float_tiff_still_loads(tmp_path) -> None:
    path = _float_tiff(tmp_path / "photo.tif", {})
    pixels, alpha = load_pixels(path)
    assert pixels.dtype == np.float32 and pixels.shape == (10, 12) and alpha is None
    np.testing.assert_allclose([pixels.min(), pixels.max()], [0.2, 0.8])


def test_float_array_counts_pixels_not_channels() -> None:
    rgb = np.full((4, 5, 3), 0.5, np.float32)
    rgb[1, 1] = np.nan  # one pixel, three channels
    rgb[2, 3, 0] = np.inf
    with pytest.raises(ImageLoadError, match="^array: 2 pixels are NaN or infinite$"):
        load_pixels(rgb)


@pytest.mark.parametrize(
    ("source", "named"),
    [(None, "no image given (None)"), (3, "int"), (2.5, "float"), ([1, 2], "list")],
)
def test_unsupported_input_types_raise_one_line_image_load_error(source, named):
    with pytest.raises(ImageLoadError) as err:
        load_pixels(source)
    message = str(err.value)
    assert named in message and "\n" not in message
    assert "give a path, a PIL image, an image array or encoded image bytes" in message


def test_bytes_are_decoded_as_an_encoded_image_file(tmp_path, rng) -> None:
    grey = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    data = path.read_bytes()
    for source in (data, bytearray(data), memoryview(data)):
        pixels, alpha = load_pixels(source)
        np.testing.assert_array_equal(pixels, grey)
        assert alpha is None
    with pytest.raises(ImageLoadError, match="^image bytes: empty$"):
        load_pixels(b"")
    with pytest.raises(ImageLoadError, match="^image bytes: not an image file"):
        load_pixels(b"photo.png")  # a path as bytes is not a path
    with pytest.raises(ImageLoadError, match="^image bytes: corrupt or truncated"):
        load_pixels(data[: len(data) // 2])


def _frames(n: int) -> list[Image.Image]:
    return [Image.fromarray(np.full((8, 10), 40 * i + 20, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("fmt", ["TIFF", "GIF", "PNG"])
def test_multi_frame_files_use_the_first_frame_and_say_so(tmp_path, caplog, fmt):
    first, *rest = _frames(3)
    path = tmp_path / f"pages.{fmt.lower()}"
    first.save(path, format=fmt, save_all=True, append_images=rest)

    with caplog.at_level(logging.WARNING, logger="core.imageio"):
        pixels, _alpha = load_pixels(path)
    assert np.all(pixels == 20)  # the first frame's value
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 3 frames, only the first is colorized"
    ]

    caplog.clear()
    with Image.open(path) as im, caplog.at_level(logging.WARNING):
        load_pixels(im)
    assert caplog.messages == ["image: 3 frames, only the first is colorized"]


def test_single_frame_files_load_without_a_warning(tmp_path, caplog) -> None:
    for fmt in ("TIFF", "GIF", "PNG"):
        path = tmp_path / f"one.{fmt.lower()}"
        _frames(1)[0].save(path, format=fmt)
        with caplog.at_level(logging.WARNING):
            load_pixels(path)
    assert caplog.messages == []


def test_decompression_bomb_gets_the_projects_limit_message(tmp_path) -> None:
    # 200 MP: over Pillow's own refusal (twice MAX_IMAGE_PIXELS, about 179 MP)
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(20_000, 10_000))
    pillow_limit = Image.MAX_IMAGE_PIXELS

    with pytest.raises(ImageTooLargeError) as err:
        load_pixels(path, max_pixels=40_000_000)
    assert str(err.value) == (
        f"{path}: 200,000,000 pixels is over the limit of 40,000,000"
    )
    assert (err.value.pixels, err.value.limit) == (200_000_000, 40_000_000)
    for source in (path, path.read_bytes()):
        with pytest.raises(ImageTooLargeError) as err:
            load_pixels(source)
        assert "over the limit of 100,000,000" in str(err.value)
        assert "decompression bomb" not in str(err.value).lower()

    # a caller that allows more than Pillow does gets past the size check: this
    # header has no real pixels behind it, so it fails as truncated instead
    with pytest.raises(ImageLoadError) as err:
        load_pixels(path, max_pixels=300_000_000)
    assert not isinstance(err.value, ImageTooLargeError)
    assert "corrupt or truncated" in str(err.value)
    assert Image.MAX_IMAGE_PIXELS == pillow_limit


def test_too_many_pixels_under_pillows_limit_is_the_same_error(tmp_path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(3000, 2000))
    with pytest.raises(ImageTooLargeError) as err:
        load_pixels(path, max_pixels=1_000_000)
    assert str(err.value) == (
        f"{path}: 3000x2000 = 6,000,000 pixels is over the limit of 1,000,000"
    )
    assert isinstance(err.value, ImageLoadError)


def test_images_in_folder_one_list_sorted_hidden_left_out(tmp_path) -> None:
    from core.imageio import IMAGE_SUFFIXES, TENSORFLOW_SUFFIXES, images_in_folder

    names = ["b.JPG", "a.png", "sub/c.tif", "sub/d.gif", ".hidden/e.jpg", ".f.jpg"]
    for name in [*names, "notes.txt", "sub/g.jpg.bak"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in images_in_folder(tmp_path)]
    assert found == ["a.png", "b.JPG", "sub/c.tif", "sub/d.gif"]
    with_hidden = images_in_folder(tmp_path, TENSORFLOW_SUFFIXES, hidden=True)
    assert [p.relative_to(tmp_path).as_posix() for p in with_hidden] == [
        ".f.jpg",
        ".hidden/e.jpg",
        "a.png",
        "b.JPG",
    ]
    assert set(TENSORFLOW_SUFFIXES) < set(IMAGE_SUFFIXES)


def test_decode_rgb_gives_the_stored_pixels() -> None:
    from core.imageio import decode_rgb

    rgb = skimage.data.astronaut()[::8, ::8]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    out = decode_rgb(buf.getvalue())
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)
    grey = io.BytesIO()
    Image.fromarray(rgb[..., 0]).save(grey, format="JPEG")
    assert decode_rgb(grey.getvalue()).shape == (*rgb.shape[:2], 3)

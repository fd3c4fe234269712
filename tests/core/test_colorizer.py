"""The Colorizer end to end with random weights: modes, sizes, lightness, bad inputs."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.color
import skimage.data
from PIL import Image

from core.colorizer import MAX_SIZE, Colorizer, network_shape
from core.colorspace import gray_level, lab_to_rgb, rgb_to_lab
from core.imageio import ImageLoadError

SIZE = 64  # network side: small keeps every test fast


@pytest.fixture(scope="module")
def grey_float() -> np.ndarray:
    """skimage's camera (96 x 128) as a grey photo with L in [30, 70]: no clipping."""
    cam = skimage.data.camera()[::4, ::4][:96].astype(np.float32)
    return gray_level(30.0 + cam / 255.0 * 40.0)


@pytest.fixture(scope="module")
def grey8(grey_float) -> np.ndarray:
    return np.round(grey_float * 255).astype(np.uint8)


def _lightness(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        rgb = rgb / 255.0
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    return skimage.color.rgb2lab(rgb[..., :3])[..., 0]


def _assert_keeps_lightness(out: Image.Image, expected_rgb: np.ndarray) -> None:
    """Output L equals the input's L within uint8 rounding, except where clipped."""
    o = np.asarray(out)[..., :3]
    clipped = np.any((o == 0) | (o == 255), axis=-1)
    assert clipped.mean() < 0.5
    d = np.abs(_lightness(o) - _lightness(expected_rgb))
    assert d[~clipped].max() <= 1.0, d[~clipped].max()


def _chroma(out: Image.Image) -> np.ndarray:
    return skimage.color.rgb2lab(np.asarray(out)[..., :3] / 255.0)[..., 1:]


def test_grey_photo_keeps_lightness_and_gets_colour(random_colorizer, grey8) -> None:
    out = random_colorizer.colorize(Image.fromarray(grey8), size=SIZE)
    assert out.mode == "RGB" and out.size == (128, 96)
    o = np.asarray(out)
    assert not np.any((o == 0) | (o == 255))  # L in [30, 70]: nothing clipped
    assert np.abs(_lightness(o) - _lightness(grey8)).max() <= 0.5
    # random weights still predict some chroma, so the output is not grey
    assert np.abs(_chroma(out)).max() > 1.0


@pytest.mark.slow
def test_colour_input_is_colorized_from_its_own_lightness(random_colorizer) -> None:
    coffee = skimage.data.coffee()[::4, ::4]
    out = random_colorizer.colorize(coffee, size=SIZE)
    assert out.size == (coffee.shape[1], coffee.shape[0])
    _assert_keeps_lightness(out, coffee)
    # the input's own colours do not leak into the output: same L, other ab, same result
    lab = rgb_to_lab(coffee)
    shifted = lab_to_rgb(np.concatenate([lab[..., :1], lab[..., 1:] * 0.0], axis=-1))
    same = random_colorizer.colorize(shifted, size=SIZE)
    o1, o2 = np.asarray(out, np.int16), np.asarray(same, np.int16)
    assert np.abs(o1 - o2).max() <= 1


def test_saturation_scales_chroma(random_colorizer, grey8) -> None:
    grey = random_colorizer.colorize(grey8, size=SIZE, saturation=0.0)
    assert np.abs(_chroma(grey)).max() < 1.0
    c1 = np.abs(_chroma(random_colorizer.colorize(grey8, size=SIZE))).mean()
    c2 = np.abs(_chroma(random_colorizer.colorize(grey8, size=SIZE, saturation=2.0)))
    assert c2.mean() == pytest.approx(2 * c1, rel=0.05)


def _mode_cases(grey8: np.ndarray, grey_float: np.ndarray, rng) -> list:
    """(name, PIL image, expected RGB for the lightness, expected alpha or None)."""
    h, w = grey8.shape
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    rgb = np.repeat(grey8[..., None], 3, axis=-1)
    pil_rgb = Image.fromarray(rgb)
    grey16 = np.round(grey_float * 65535).astype(np.uint16)
    palette = pil_rgb.quantize(colors=64)
    transparent = palette.copy()
    transparent.info["transparency"] = int(np.asarray(palette)[0, 0])
    transparent_alpha = np.where(
        np.asarray(palette) == transparent.info["transparency"], 0, 255
    ).astype(np.uint8)
    cmyk = pil_rgb.convert("CMYK")
    return [
        ("L", Image.fromarray(grey8), grey8, None),
        (
            "LA",
            Image.merge("LA", [Image.fromarray(grey8), Image.fromarray(alpha)]),
            grey8,
            alpha,
        ),
        ("RGB", pil_rgb, rgb, None),
        ("RGBA", Image.fromarray(np.dstack([rgb, alpha])), rgb, alpha),
        ("P", palette, np.asarray(palette.convert("RGB")), None),
        (
            "P+transparency",
            transparent,
            np.asarray(palette.convert("RGB")),
            transparent_alpha,
        ),
        ("CMYK", cmyk, np.asarray(cmyk.convert("RGB")), None),
        ("I;16", Image.fromarray(grey16), grey_float, None),
        ("I", Image.fromarray(grey16.astype(np.int32)), grey_float, None),
        ("F", Image.fromarray(grey_float.astype(np.float32)), grey_float, None),
        ("F 0..255", Image.fromarray(grey8.astype(np.float32)), grey8, None),
    ]


@pytest.mark.parametrize(
    "case",
    [
        "L",
        "LA",
        "RGB",
        "RGBA",
        "P",
        "P+transparency",
        "CMYK",
        "I;16",
        "I",
        "F",
        "F 0..255",
    ],
)
def test_every_mode(random_colorizer, grey8, grey_float, rng, case) -> None:
    cases = {c[0]: c[1:] for c in _mode_cases(grey8, grey_float, rng)}
    image, expected_rgb, alpha = cases[case]
    if case != "F 0..255":
        assert image.mode == case.split("+")[0]
    out = random_colorizer.colorize(image, size=SIZE)
    assert out.size == image.size
    _assert_keeps_lightness(out, expected_rgb)
    if alpha is None:
        assert out.mode == "RGB"
    else:
        assert out.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


def test_sixteen_bit_png_file(random_colorizer, grey_float, tmp_path) -> None:
    grey16 = np.round(grey_float * 65535).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(path)
    with Image.open(path) as im:
        assert im.mode in ("I", "I;16")  # 16 bits survive the round trip
    out = random_colorizer.colorize(path, size=SIZE)
    assert out.size == (grey16.shape[1], grey16.shape[0])
    _assert_keeps_lightness(out, grey_float)
    # a flat 16-bit mid grey keeps its lightness: 32768 / 65535 -> L 53.39
    flat = tmp_path / "flat16.png"
    Image.fromarray(np.full((40, 50), 32768, np.uint16)).save(flat)
    o = np.asarray(random_colorizer.colorize(flat, size=SIZE))
    assert np.abs(_lightness(o) - 53.39).max() <= 0.5


@pytest.mark.slow
def test_exif_orientation_is_applied(random_colorizer, tmp_path) -> None:
    # a horizontal ramp, dark on the left; Orientation 6 means "rotate 90 degrees
    # clockwise to display", so the displayed image is dark at the top
    ramp = np.tile(np.linspace(60, 200, 80).astype(np.uint8), (48, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(ramp).save(path, exif=exif, quality=95)
    out = random_colorizer.colorize(path, size=SIZE)
    assert out.size == (48, 80)  # (W, H) transposed
    lightness = _lightness(np.asarray(out))
    assert lightness[:10].mean() + 20 < lightness[-10:].mean()
    with Image.open(path) as im:
        assert random_colorizer.colorize(im, size=SIZE).size == (48, 80)


@pytest.mark.parametrize("shape", [(1, 1), (17, 3001), (3001, 17), (2, 3), (97, 31)])
def test_odd_sizes_keep_height_and_width(random_colorizer, rng, shape) -> None:
    grey = rng.integers(80, 180, shape, dtype=np.uint8)
    out = random_colorizer.colorize(grey, size=SIZE)
    assert np.asarray(out).shape == (*shape, 3)
    _assert_keeps_lightness(out, grey)


def test_large_photo_keeps_size(random_colorizer) -> None:
    grey = np.full((3000, 4000), 128, np.uint8)
    grey[:, :2000] = 100
    out = np.asarray(random_colorizer.colorize(grey, size=SIZE))
    assert out.shape == (3000, 4000, 3)
    sample = out[::50, ::50]
    _assert_keeps_lightness(Image.fromarray(sample), grey[::50, ::50])


def test_network_shape() -> None:
    assert network_shape(1, 1, 64) == (64, 64)
    assert network_shape(17, 3001, 64) == (32, 64)
    assert network_shape(3000, 4000, 256) == (192, 256)
    assert network_shape(480, 640, 224) == (160, 224)
    for h, w in [(1, 1), (5, 7), (17, 3001), (3000, 4000), (333, 444)]:
        nh, nw = network_shape(h, w, 256)
        assert nh % 32 == 0 and nw % 32 == 0 and 32 <= min(nh, nw)
        assert max(nh, nw) <= 256 + 16


@pytest.mark.slow
def test_batch_equals_single(random_colorizer, grey8, rng) -> None:
    images = [
        grey8,
        skimage.data.coffee()[::4, ::4],
        rng.integers(0, 256, (33, 70), dtype=np.uint8),
        grey8[:, ::-1].copy(),
    ]
    batch = random_colorizer.colorize_batch(images, size=SIZE, batch_size=2)
    assert len(batch) == len(images)
    for im, out in zip(images, batch, strict=True):
        single = np.asarray(random_colorizer.colorize(im, size=SIZE), np.int16)
        assert np.asarray(out).shape[:2] == im.shape[:2]
        # a batch may pick other convolution kernels: allow one uint8 level
        assert np.abs(np.asarray(out, np.int16) - single).max() <= 1


@pytest.mark.slow
def test_batch_can_return_an_error_in_place_of_each_bad_input(
    random_colorizer, grey8, tmp_path
) -> None:
    nan = np.full((20, 30), 0.5, np.float32)
    nan[3, 4] = np.nan
    text = tmp_path / "notes.jpg"
    text.write_bytes(b"not a photo\n")
    good_file = tmp_path / "good.png"
    Image.fromarray(grey8[:, ::-1].copy()).save(good_file)
    images = [grey8, nan, None, good_file, 7, text, good_file.read_bytes()]

    batch = random_colorizer.colorize_batch(
        images, size=SIZE, batch_size=2, errors="return"
    )

    assert len(batch) == len(images)
    for i in (0, 3, 6):
        assert isinstance(batch[i], Image.Image) and batch[i].size == (128, 96)
        single = random_colorizer.colorize(images[i], size=SIZE)
        diff = np.abs(np.asarray(batch[i], np.int16) - np.asarray(single, np.int16))
        assert diff.max() <= 1  # a batch may pick other convolution kernels
    errors = {i: str(batch[i]) for i in (1, 2, 4, 5)}
    assert all(isinstance(batch[i], ImageLoadError) for i in errors)
    assert errors[1] == "array: 1 pixel is NaN or infinite"
    assert errors[2].startswith("no image given (None); give a path")
    assert errors[4].startswith("unsupported input type int; give a path")
    assert errors[5] == f"{text}: not an image file Pillow can read"


def test_batch_raises_the_first_bad_input_by_default(random_colorizer, grey8) -> None:
    with pytest.raises(ImageLoadError, match="^no image given"):
        random_colorizer.colorize_batch([grey8, None, 3], size=SIZE)
    with pytest.raises(ImageLoadError, match="^unsupported input type int"):
        random_colorizer.colorize_batch([grey8, 3, None], size=SIZE, errors="raise")


@pytest.mark.parametrize("source", [None, 3, 2.5, b""])
def test_colorize_refuses_other_types_with_image_load_error(
    random_colorizer, source
) -> None:
    with pytest.raises(ImageLoadError) as err:
        random_colorizer.colorize(source, size=SIZE)
    assert "\n" not in str(err.value)


def test_colorize_reads_bytes_as_an_encoded_file(
    random_colorizer, grey8, tmp_path
) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(grey8).save(path)
    from_bytes = random_colorizer.colorize(path.read_bytes(), size=SIZE)
    from_path = random_colorizer.colorize(path, size=SIZE)
    np.testing.assert_array_equal(np.asarray(from_bytes), np.asarray(from_path))


@pytest.mark.parametrize("images", ["photo.png", Path("photo.png"), b"\x89PNG"])
def test_batch_refuses_a_single_image(random_colorizer, images) -> None:
    with pytest.raises(ImageLoadError, match="takes a sequence of images"):
        random_colorizer.colorize_batch(images, size=SIZE)


def test_batch_refuses_an_unknown_errors_mode(random_colorizer, grey8) -> None:
    with pytest.raises(ValueError, match='errors must be "raise" or "return"'):
        random_colorizer.colorize_batch([grey8], errors="ignore")


def test_array_dtypes_are_equivalent(random_colorizer, grey8) -> None:
    rgb8 = np.repeat(grey8[..., None], 3, axis=-1)
    reference = np.asarray(random_colorizer.colorize(grey8, size=SIZE), np.int16)
    variants = [
        grey8[..., None],
        rgb8,
        grey8.astype(np.uint16) * 257,
        grey8.astype(np.float32) / 255,
        rgb8.astype(np.float64) / 255,
    ]
    for arr in variants:
        out = np.asarray(random_colorizer.colorize(arr, size=SIZE), np.int16)
        assert np.abs(out - reference).max() <= 1, arr.dtype


def test_array_alpha_channel_is_kept(random_colorizer, grey8, rng) -> None:
    alpha = rng.integers(0, 256, grey8.shape, dtype=np.uint8)
    out = random_colorizer.colorize(np.dstack([grey8, alpha]), size=SIZE)
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., 3], alpha)


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((0, 5), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),
        np.zeros((4, 4), np.int32),
        np.full((4, 4), np.nan, np.float32),
    ],
    ids=["empty", "five-channels", "batch", "int32", "nan"],
)
def test_bad_arrays_raise_image_load_error(random_colorizer, arr) -> None:
    with pytest.raises(ImageLoadError) as err:
        random_colorizer.colorize(arr, size=SIZE)
    assert "\n" not in str(err.value)


def _png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims width x height (a decompression bomb header)."""
    raw = b"\x00\x80"
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _hostile_files(tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    good = tmp_path / "good.jpg"
    Image.fromarray(skimage.data.camera()).save(good, quality=90)
    data = good.read_bytes()
    files = {
        "empty": (b"", "empty.jpg"),
        "truncated": (data[: len(data) // 2], "truncated.jpg"),
        "text": (b"hello, I am not a photo\n" * 20, "notes.txt"),
        "text-as-jpg": (b"hello, I am not a photo\n" * 20, "fake.jpg"),
        "bomb-header": (_png_claiming(200_000, 200_000), "bomb.png"),
    }
    out = {}
    for name, (content, filename) in files.items():
        path = tmp_path / filename
        path.write_bytes(content)
        out[name] = (path, {})
    out["over-max-pixels"] = (good, {"max_pixels": 100_000})
    out["missing"] = (tmp_path / "missing.png", {})
    return out


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "truncated",
        "text",
        "text-as-jpg",
        "bomb-header",
        "over-max-pixels",
        "missing",
    ],
)
def test_hostile_files_raise_one_line_error(random_colorizer, tmp_path, case) -> None:
    path, kwargs = _hostile_files(tmp_path)[case]
    with pytest.raises(ImageLoadError) as err:
        random_colorizer.colorize(path, size=SIZE, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message


def test_max_pixels_applies_to_arrays_and_pil(random_colorizer) -> None:
    big = np.zeros((200, 300), np.uint8)
    for image in (big, Image.fromarray(big)):
        with pytest.raises(ImageLoadError, match="60,000 pixels"):
            random_colorizer.colorize(image, size=SIZE, max_pixels=50_000)


@pytest.mark.parametrize("size", [0, 16, 31, MAX_SIZE + 1, 10_000])
def test_size_out_of_range_raises(random_colorizer, grey8, size) -> None:
    with pytest.raises(ValueError, match="size must be between"):
        random_colorizer.colorize(grey8, size=size)


@pytest.mark.parametrize(
    "kwargs", [{"saturation": -0.1}, {"saturation": 5.0}, {"temperature": -1.0}]
)
def test_bad_options_raise(random_colorizer, grey8, kwargs) -> None:
    with pytest.raises(ValueError):
        random_colorizer.colorize(grey8, size=SIZE, **kwargs)


@pytest.mark.slow
def test_predict_output_shape_and_decoding(random_colorizer) -> None:
    lightness = np.full((50, 70), 50.0, np.float32)
    logits = random_colorizer.predict_output(lightness, size=SIZE)
    assert logits.shape == (16, 32, 313) and logits.dtype == np.float32  # stride 2
    ab = random_colorizer.output_to_chroma(logits)
    assert ab.shape == (16, 32, 2) and ab.dtype == np.float32
    argmax = random_colorizer.output_to_chroma(logits, temperature=0.0)
    # argmax decoding picks bin centres: multiples of 10
    np.testing.assert_array_equal(argmax % 10, 0)


def test_colorizer_rejects_unknown_colour_space(random_colorizer) -> None:
    from dataclasses import replace

    spec = replace(random_colorizer.spec, color_space="hsv")
    with pytest.raises(ValueError, match="hsv"):
        Colorizer(random_colorizer.model, spec)


def test_mode_i_from_8bit_keeps_its_brightness() -> None:
    from core.imageio import load_image

    grey = Image.fromarray(np.full((4, 5), 200, np.uint8)).convert("I")
    rgb, _alpha = load_image(grey)
    np.testing.assert_allclose(rgb, 200 / 255, atol=1e-6)


# ------------------------------------------------------ YUV and sampling models
def _tiny_sampler() -> Colorizer:
    """A tiny fixed-size YUV model that takes [y, z] like the cGAN (random weights)."""
    import keras

    from core.models.registry import ModelSpec

    keras.utils.set_random_seed(3)
    y = keras.Input((32, 32, 1))
    z = keras.Input((8,))
    zmap = keras.layers.Reshape((32, 32, 1))(keras.layers.Dense(32 * 32)(z))
    x = keras.layers.Concatenate()([y, zmap])
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    uv = keras.layers.Conv2D(2, 3, padding="same", activation="tanh")(x)
    spec = ModelSpec(
        name="tiny-sampler",
        color_space="yuv",
        input_size=32,
        size_multiple=32,
        fixed_size=True,
        output="uv",
        output_stride=1,
        noise_dim=8,
    )
    return Colorizer(keras.Model([y, z], uv), spec)


def test_sampling_model_seeds(grey8) -> None:
    """Different seeds differ, the same seed repeats, batch image 0 = alone."""
    c = _tiny_sampler()
    assert c.spec.samples
    a0 = np.asarray(c.colorize(Image.fromarray(grey8), seed=0), dtype=np.float32)
    a0b = np.asarray(c.colorize(Image.fromarray(grey8), seed=0), dtype=np.float32)
    a1 = np.asarray(c.colorize(Image.fromarray(grey8), seed=1), dtype=np.float32)
    assert a0.shape == (96, 128, 3)
    np.testing.assert_array_equal(a0, a0b)
    assert np.abs(a0 - a1).mean() > 0.5
    batch = c.colorize_batch([Image.fromarray(grey8)] * 2, seed=0)
    np.testing.assert_array_equal(np.asarray(batch[0]), a0.astype(np.uint8))
    assert np.abs(np.asarray(batch[1], np.float32) - a0).mean() > 0.5
    with pytest.raises(ValueError, match="seed"):
        c.colorize(Image.fromarray(grey8), seed=-1)


def test_yuv_model_keeps_luma(grey8) -> None:
    """The full-resolution Y is kept: the output's luma equals the grey input's."""
    c = _tiny_sampler()
    out = np.asarray(c.colorize(Image.fromarray(grey8), seed=5), dtype=np.float32)
    luma = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    clipped = np.any((out == 0) | (out == 255), axis=-1)
    d = np.abs(luma - grey8.astype(np.float32))[~clipped]
    assert d.max() <= 1.0, d.max()
    raw = c.predict_output(grey8 / 255.0, seed=5)
    assert raw.shape == (32, 32, 2) and np.abs(raw).max() <= 1.0


@pytest.mark.slow
def test_tta_averages_the_photo_and_its_mirror(random_colorizer, grey_float) -> None:
    tta = Colorizer(random_colorizer.model, random_colorizer.spec, tta=True)
    lightness = rgb_to_lab(np.repeat(grey_float[..., None], 3, -1))[..., 0]
    plain = random_colorizer.predict_output(lightness, size=SIZE)
    mirror = random_colorizer.predict_output(lightness[:, ::-1], size=SIZE)
    averaged = tta.predict_output(lightness, size=SIZE)
    np.testing.assert_allclose(averaged, 0.5 * (plain + mirror[:, ::-1]), atol=1e-4)
    assert np.abs(averaged - plain).max() > 1e-3  # the network is not symmetric
    # so the colorization of a mirrored photo is the mirrored colorization
    grey = np.round(grey_float * 255).astype(np.uint8)
    out = np.asarray(tta.colorize(grey, size=SIZE), np.int16)
    flipped = np.asarray(tta.colorize(grey[:, ::-1], size=SIZE), np.int16)
    assert np.abs(out - flipped[:, ::-1]).max() <= 1

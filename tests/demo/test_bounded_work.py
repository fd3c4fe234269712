"""Bounded work per upload: the CLI's full-resolution path, display-size views, a
deadline per request, NaN refused in one line, and which paths count as uploads."""

import inspect
import os
import time
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import skimage.data
from PIL import Image

from demo.app import (
    DISPLAY_SIDE,
    REFUSED_UPLOAD,
    Deadline,
    accept_upload,
    colorize_files,
    colorize_photo,
    compare_models,
    display_pixels,
    read_photo,
    releasing_memory,
    upload_roots,
)
from tests.demo.conftest import MAX_BYTES, MAX_PIXELS, SIZE

LIMITS = {"max_pixels": MAX_PIXELS, "max_bytes": MAX_BYTES}


def _expired() -> Deadline:
    """A deadline that passed a second ago (no waiting, no timing in the test)."""
    return Deadline(0.5, start=time.monotonic() - 1.0)


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """A colour photo wider than DISPLAY_SIDE: 2400 x 300 (0.72 MP)."""
    coffee = Image.fromarray(skimage.data.coffee())  # 600 x 400
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    coffee.resize((2400, 300), Image.Resampling.BILINEAR).save(path)
    return path


@pytest.mark.slow
def test_the_page_colorizes_like_the_cli(demo_colorizers, photos, wide, tmp_path):
    """Same pixels as Colorizer.colorize on the file: the banded 8-bit path."""
    colorizer = demo_colorizers["default-v1"]
    for key in ("gray", "rgba"):
        result = colorize_photo(
            colorizer, photos[key], size=SIZE, out_dir=tmp_path, **LIMITS
        )
        expected = colorizer.colorize(photos[key], SIZE)
        assert np.array_equal(np.asarray(result.color), np.asarray(expected))
    result = colorize_photo(colorizer, wide, size=SIZE, out_dir=tmp_path, **LIMITS)
    with Image.open(result.png) as png:
        assert png.size == (2400, 300)
        expected = colorizer.colorize(wide, SIZE)
        assert np.array_equal(np.asarray(png), np.asarray(expected))


@pytest.mark.slow
def test_large_photos_are_shown_and_scored_at_display_size(
    demo_colorizers, wide, tmp_path
):
    result = colorize_photo(
        demo_colorizers["default-v1"], wide, size=SIZE, out_dir=tmp_path, **LIMITS
    )
    shown = (DISPLAY_SIDE, 256)
    assert result.color.size == (2400, 300)
    assert result.preview.size == result.gray.size == shown
    assert result.original is not None and result.original.size == shown
    assert result.scores is not None and 5.0 < result.scores.psnr < 100.0
    gallery = compare_models(demo_colorizers, wide, size=SIZE, **LIMITS)
    assert all(image.size == shown for image, _ in gallery)


def test_display_pixels_keeps_small_photos_and_shrinks_large_ones(photos, wide):
    pixels, alpha = read_photo(photos["rgba"], **LIMITS)
    rgb, small_alpha = display_pixels(pixels, alpha)
    assert rgb.dtype == np.float32 and rgb.shape == (149, 223, 3)
    assert np.array_equal(np.round(rgb * 255).astype(np.uint8), pixels)
    assert small_alpha is alpha
    pixels, _ = read_photo(wide, **LIMITS)
    rgb, _ = display_pixels(pixels, None, side=600)
    assert rgb.shape == (75, 600, 3) and 0.0 <= rgb.min() and rgb.max() <= 1.0
    # a 16-bit photo comes as float and shrinks channel by channel
    rgb16, _ = display_pixels(pixels.astype(np.float32) / 255.0, None, side=600)
    assert np.abs(rgb16 - rgb).max() < 2.5 / 255


def test_read_photo_keeps_8_bit_photos_as_uint8(photos):
    gray, _ = read_photo(photos["gray"], **LIMITS)
    color, _ = read_photo(photos["color"], **LIMITS)
    assert gray.dtype == color.dtype == np.uint8
    assert gray.shape == (149, 223) and color.shape == (134, 200, 3)


@pytest.mark.parametrize("writer", ["pillow", "tifffile"])
def test_a_float_tiff_with_nan_is_one_line(demo_colorizers, tmp_path, writer):
    values = np.linspace(0.0, 1.0, 64 * 48, dtype=np.float32).reshape(48, 64)
    values[10, 20] = np.nan
    path = tmp_path / "nan.tif"
    if writer == "pillow":
        Image.fromarray(values, mode="F").save(path)
    else:
        tifffile = pytest.importorskip("tifffile")
        tifffile.imwrite(path, values)
    with pytest.raises(gr.Error) as info:
        colorize_photo(demo_colorizers["default-v1"], path, size=SIZE, out_dir=tmp_path)
    message = info.value.message
    assert message.startswith("nan.tif: ")
    assert "NaN" in message or "finite" in message  # core's words or the page's
    assert "\n" not in message and str(tmp_path) not in message
    assert not list(tmp_path.glob("*.png"))  # nothing written, no black image


def test_a_passed_deadline_stops_a_photo(demo_colorizers, photos, tmp_path):
    with pytest.raises(gr.Error, match=r"took longer than 0.5 s"):
        colorize_photo(
            demo_colorizers["default-v1"],
            photos["gray"],
            size=SIZE,
            out_dir=tmp_path,
            deadline=_expired(),
            **LIMITS,
        )
    with pytest.raises(gr.Error, match=r"took longer than 0.5 s"):
        compare_models(
            demo_colorizers, photos["gray"], size=SIZE, deadline=_expired(), **LIMITS
        )
    # a deadline that has not passed changes nothing
    result = colorize_photo(
        demo_colorizers["default-v1"],
        photos["gray"],
        size=SIZE,
        out_dir=tmp_path,
        deadline=Deadline(3600.0),
        **LIMITS,
    )
    assert result.png.is_file()


def test_a_batch_past_its_deadline_keeps_what_is_done(
    demo_colorizers, photos, tmp_path
):
    deadline = Deadline(60.0)

    def progress(i: int, n: int) -> None:
        if i == 1:  # the first photo is done: let the time run out
            deadline.start -= 3600.0

    result = colorize_files(
        demo_colorizers["default-v1"],
        [photos["gray"], photos["color"], photos["gray"]],
        size=SIZE,
        out_dir=tmp_path,
        on_progress=progress,
        deadline=deadline,
        **LIMITS,
    )
    assert (result.done, result.failed) == (2, 0)
    assert "2 of 3 photos colorized" in result.report
    assert "took longer than 60 s" in result.report
    with zipfile.ZipFile(result.zip) as archive:
        assert archive.namelist() == ["cat.png", "coffee.png"]
    (tmp_path / "none").mkdir()
    with pytest.raises(gr.Error, match="took longer than 0.5 s"):
        colorize_files(
            demo_colorizers["default-v1"],
            [photos["gray"]],
            size=SIZE,
            out_dir=tmp_path / "none",
            deadline=_expired(),
            **LIMITS,
        )
    assert list((tmp_path / "none").iterdir()) == []


def test_accept_upload_takes_only_regular_files_inside_the_cache(tmp_path, photos):
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    (cache / "abc123").mkdir(parents=True)
    outside.mkdir()
    upload = cache / "abc123" / "cat.png"
    upload.write_bytes(photos["gray"].read_bytes())
    secret = outside / "secret.png"
    secret.write_bytes(photos["color"].read_bytes())
    (cache / "abc123" / "link.png").symlink_to(secret)
    (cache / "abc123" / "inner.png").symlink_to(upload)  # a link that stays inside
    roots = upload_roots(cache)

    assert accept_upload({"path": str(upload)}, roots) == upload.resolve()
    assert accept_upload(str(upload), roots) == upload.resolve()
    assert accept_upload({"path": str(cache / "abc123" / "inner.png")}, roots) == (
        upload.resolve()
    )
    assert accept_upload(None, roots) is None and accept_upload({}, roots) is None
    refused = [
        str(secret),
        f"{cache}/abc123/../../outside/secret.png",
        str(cache / "abc123" / "link.png"),
        str(cache / "abc123"),
        str(cache),
        str(cache / "abc123" / "missing.png"),
        "secret.png",
        "bad\0name.png",
        42,
    ]
    for payload in refused:
        with pytest.raises(gr.Error) as info:
            accept_upload({"path": payload}, roots)
        assert info.value.message == REFUSED_UPLOAD


def test_the_upload_cache_may_itself_be_a_symbolic_link(tmp_path, photos):
    real = tmp_path / "real-cache"
    (real / "h").mkdir(parents=True)
    upload = real / "h" / "cat.png"
    upload.write_bytes(photos["gray"].read_bytes())
    linked = tmp_path / "cache-link"
    os.symlink(real, linked)
    assert accept_upload(str(linked / "h" / "cat.png"), upload_roots(linked)) == upload


def test_releasing_memory_keeps_the_handler_as_gradio_sees_it():
    def handler(path, progress=gr.Progress()):  # noqa: B008 (as Gradio expects)
        if path is None:
            raise gr.Error("Upload a photo first")
        return np.zeros((4000, 4000), np.uint8).sum() + len(path)

    wrapped = releasing_memory(handler)
    assert inspect.signature(wrapped) == inspect.signature(handler)
    assert wrapped("ab") == 2
    with pytest.raises(gr.Error, match="Upload a photo first"):
        wrapped(None)

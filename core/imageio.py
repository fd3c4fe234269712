"""Loading user images safely, and writing PNG files fast.

Inputs are hostile until checked: the pixel count is checked from the header before
decoding (decompression bombs, refused with the project's own limit message rather than
Pillow's), truncated and corrupt files, NaN or infinite float pixels and inputs of an
unsupported type raise `ImageLoadError` with a one-line message, EXIF orientation is
applied, and every common mode is converted (L, LA, RGB, RGBA, P, CMYK, I;16 and other
16-bit greys, I, F). Of a multi-frame file (TIFF pages, GIF or PNG animation) only the
first frame is used, and a warning is logged that says so.

`load_pixels` keeps 8-bit images as they were decoded (a grey photo stays one uint8
channel), so the Colorizer never builds a float RGB copy of a large photo; `load_image`
gives the float RGB form. `encode_png` writes 8-bit PNGs with the "Up" row filter and
zlib level 2, compressing horizontal strips on all cores (docs/performance.md).
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.types import FloatArray, UInt8Array

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "PNG_LEVEL",
    "TENSORFLOW_SUFFIXES",
    "ImageLoadError",
    "ImageSource",
    "ImageTooLargeError",
    "cpu_count",
    "decode_rgb",
    "encode_png",
    "images_in_folder",
    "load_image",
    "load_pixels",
    "pixels_to_rgb",
]

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP; a 4000x3000 photo is 12 MP
# the suffixes (any case) of the image files the programs look for in folders
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
# of those, the ones the training pipeline reads (tf.io.decode_image: no TIFF; GIF,
# an animation more often than a photo, is left out of training sets)
TENSORFLOW_SUFFIXES = tuple(
    s for s in IMAGE_SUFFIXES if s not in (".tif", ".tiff", ".gif")
)
# zlib level of `encode_png`: level 2 is as fast as 1 on photos and about 8 % smaller;
# level 6 (Pillow's default) is about 6x slower for about 15 % less (performance.md)
PNG_LEVEL = 2
_PNG_STRIP_BYTES = 1 << 19  # filtered bytes per independently compressed strip
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA
_PNG_FILTER_UP = 2  # each byte minus the byte above it
_ADLER_BASE = 65521
# a path, a PIL image, an image array, or the bytes of an encoded image file
ImageSource = str | os.PathLike[str] | Image.Image | np.ndarray | bytes
_ACCEPTED = "give a path, a PIL image, an image array or encoded image bytes"
# Pillow's own refusal says "Image size (N pixels) exceeds limit of M pixels, ..."
_PILLOW_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
# serialises the rare open with Pillow's own limit lifted (see `_open`)
_PILLOW_LIMIT_LOCK = threading.Lock()
# formats whose extra frames are not more photos: MPO's are previews or depth maps
_SINGLE_PHOTO_FORMATS = ("MPO",)

log = logging.getLogger(__name__)


class ImageLoadError(ValueError):
    """An input that is not a usable image; the message is one line for users."""


class ImageTooLargeError(ImageLoadError):
    """An image with more pixels than the caller's limit (checked before decoding).

    pixels: the image's pixel count from its header; limit: the `max_pixels` refused.
    """

    def __init__(self, message: str, pixels: int, limit: int) -> None:
        super().__init__(message)
        self.pixels = pixels
        self.limit = limit


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def _count_not_finite(values: np.ndarray) -> int:
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def _not_finite_message(what: str, count: int) -> str:
    pixels = "1 pixel is" if count == 1 else f"{count:,} pixels are"
    return f"{what}: {pixels} NaN or infinite"


def _pil_to_pixels(
    im: Image.Image, what: str = "image"
) -> tuple[np.ndarray, UInt8Array | None]:
    """Any PIL mode -> (pixels, alpha); see `load_pixels` for the pixel forms.

    what: the name error messages give the image (its path, or "image").
    """
    alpha = None
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode == "LA":
        alpha = np.asarray(im.getchannel("A"), dtype=np.uint8)
        return np.asarray(im.getchannel("L"), dtype=np.uint8), alpha
    if mode in ("RGBA", "PA", "La", "RGBa"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.uint8)
        im = im.convert("RGB")
        mode = "RGB"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(im, dtype=np.float32)
        # I;16 is 16-bit grey (PNG, TIFF); plain I holds 16-bit data too, unless it came
        # from an 8-bit image (all values <= 255)
        is_8bit = mode == "I" and (grey.size == 0 or grey.max() <= 255)
        return np.clip(grey / (255.0 if is_8bit else 65535.0), 0.0, 1.0), alpha
    if mode == "F":
        grey = np.asarray(im, dtype=np.float32)
        # a NaN would otherwise pass the scale test below and decode as black
        bad = _count_not_finite(grey)
        if bad:
            raise ImageLoadError(_not_finite_message(what, bad))
        scale = 1.0 if grey.size == 0 or grey.max() <= 1.0 else 255.0
        return np.clip(grey / scale, 0.0, 1.0).astype(np.float32), alpha
    if mode in ("L", "1"):
        return np.asarray(im.convert("L"), dtype=np.uint8), alpha
    if mode != "RGB":
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    return np.asarray(im, dtype=np.uint8), alpha


def _array_to_pixels(arr: np.ndarray) -> tuple[np.ndarray, UInt8Array | None]:
    """Array (H, W), (H, W, 1|2|3|4) of uint8, uint16 or float in [0, 1]."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4) or 0 in arr.shape[:2]:
        raise ImageLoadError(
            f"expected an (H, W) or (H, W, 1|2|3|4) image array, got shape {arr.shape}"
        )
    if arr.dtype == np.uint8:
        pixels: np.ndarray = arr
    elif arr.dtype == np.uint16:
        pixels = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        # a pixel is bad when any of its channels is
        bad = int(np.count_nonzero(~np.all(np.isfinite(arr), axis=-1)))
        if bad:
            raise ImageLoadError(_not_finite_message("array", bad))
        pixels = np.clip(arr.astype(np.float32), 0.0, 1.0)
    else:
        raise ImageLoadError(
            f"expected a uint8, uint16 or float image array, got {arr.dtype}"
        )
    alpha = None
    if arr.shape[-1] in (2, 4):
        a = pixels[..., -1]
        alpha = a if a.dtype == np.uint8 else np.round(a * 255.0).astype(np.uint8)
        alpha = np.ascontiguousarray(alpha)
        pixels = pixels[..., :-1]
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return np.ascontiguousarray(pixels), alpha


def load_pixels(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, UInt8Array | None]:
    """Load an image for colorization, keeping 8-bit data as it was decoded.

    source: a path (str or os.PathLike), a PIL image, an array (uint8, uint16, or float
    in [0, 1]), or `bytes` holding an encoded image file (PNG, JPEG, TIFF, ...: the
    contents of a file, not a path; they get the same checks as a file).
    max_pixels: refuse images with more pixels than this (checked before decoding).
    Returns (pixels, alpha uint8 (H, W) or None). pixels is uint8 (H, W) grey or
    (H, W, 3) RGB in [0, 255] for 8-bit sources, else float32 (H, W) or (H, W, 3) in
    [0, 1] (16-bit and float images). Raises ImageLoadError with a one-line message
    for anything unusable (ImageTooLargeError over max_pixels), including NaN or
    infinite float pixels and a source of any other type (None, int, ...). Of a
    multi-frame image only the first frame is used; a warning is logged.
    """
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:  # (W, H) like PIL's size; other shapes fail just below
            _check_pixels(source.shape[1::-1], max_pixels, "array")
        return _array_to_pixels(source)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "image")
        _warn_frames(source, "image")
        return _pil_to_pixels(ImageOps.exif_transpose(source), "image")
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if not data:
            raise ImageLoadError("image bytes: empty")
        return _decode(lambda: io.BytesIO(data), "image bytes", max_pixels)
    if not isinstance(source, str | os.PathLike):
        raise ImageLoadError(_unsupported(source))
    try:
        path = Path(source)
    except TypeError as err:  # an os.PathLike that gives bytes
        raise ImageLoadError(_unsupported(source)) from err
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: empty file")
    return _decode(lambda: path, str(path), max_pixels)


def _unsupported(source: object) -> str:
    if source is None:
        return f"no image given (None); {_ACCEPTED}"
    return f"unsupported input type {type(source).__name__}; {_ACCEPTED}"


def _decode(
    opener: Callable[[], Path | IO[bytes]], what: str, max_pixels: int
) -> tuple[np.ndarray, UInt8Array | None]:
    """`load_pixels` of an encoded file; opener gives it anew (a path or a stream)."""
    try:
        with warnings.catch_warnings():
            # we enforce our own limit below, before any pixel is decoded
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(opener, what, max_pixels) as im:
                _check_pixels(im.size, max_pixels, what)
                if im.format == "PNG":
                    # verify() checks every chunk's CRC: a damaged PNG otherwise decodes
                    # with black rows instead of failing
                    im.verify()
            with _open(opener, what, max_pixels) as im:
                _warn_frames(im, what)
                im.load()
                return _pil_to_pixels(ImageOps.exif_transpose(im), what)
    except ImageLoadError:
        raise
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"{what}: not an image file Pillow can read") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageLoadError(f"{what}: corrupt or truncated image ({err})") from err


def _open(
    opener: Callable[[], Path | IO[bytes]], what: str, max_pixels: int
) -> Image.Image:
    """Image.open, with the project's pixel limit in place of Pillow's.

    Pillow refuses images over twice its MAX_IMAGE_PIXELS (about 179 MP) inside
    Image.open, with its own text. Those are refused here with our limit's message;
    only when the caller allows more pixels than Pillow does (or Pillow's message
    cannot be read) is the file opened again with Pillow's limit lifted, under a lock,
    for the header only: `_check_pixels` follows before any pixel is decoded.
    """
    try:
        return Image.open(opener())
    except Image.DecompressionBombError as err:
        found = _PILLOW_BOMB_PIXELS.search(str(err))
        if found is not None and int(found.group(1)) > max_pixels:
            pixels = int(found.group(1))
            raise ImageTooLargeError(
                f"{what}: {pixels:,} pixels is over the limit of {max_pixels:,}",
                pixels,
                max_pixels,
            ) from err
    with _PILLOW_LIMIT_LOCK:
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(opener())
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _warn_frames(im: Image.Image, what: str) -> None:
    """Log a warning when `im` has frames after the first (they are not used)."""
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1 and im.format not in _SINGLE_PHOTO_FORMATS:
        log.warning("%s: %d frames, only the first is colorized", what, frames)


def pixels_to_rgb(pixels: np.ndarray) -> FloatArray:
    """Pixels of `load_pixels` as float32 RGB (H, W, 3) in [0, 1]."""
    rgb = np.asarray(pixels)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    return np.ascontiguousarray(rgb, dtype=np.float32)


def load_image(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[FloatArray, UInt8Array | None]:
    """Load an image for colorization as float RGB.

    source: as for `load_pixels` (a path, a PIL image, an array or encoded bytes).
    max_pixels: refuse images with more pixels than this (checked before decoding).
    Returns (rgb float32 (H, W, 3) in [0, 1], alpha uint8 (H, W) or None).
    Raises ImageLoadError with a one-line message for anything unusable.
    """
    pixels, alpha = load_pixels(source, max_pixels)
    return pixels_to_rgb(pixels), alpha


def _adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of A + B from those of A and B and len(B) (zlib's adler32_combine)."""
    rem = len2 % _ADLER_BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 = (sum1 + (adler2 & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    sum2 = (sum2 + (adler1 >> 16) + (adler2 >> 16) + _ADLER_BASE - rem) % _ADLER_BASE
    return sum1 | (sum2 << 16)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _deflate_strip(
    rows: UInt8Array, start: int, stop: int, level: int, last: bool
) -> tuple[bytes, int, int]:
    """Up-filter and raw-deflate rows[start:stop] (2-D uint8, one row per image row).

    Returns (deflate bytes ending byte-aligned, Adler-32 and length of the filtered
    bytes). zlib releases the GIL, so strips compress in parallel threads.
    """
    filtered = np.empty((stop - start, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _PNG_FILTER_UP
    above = rows[start - 1 : stop - 1] if start > 0 else None
    if above is None:
        filtered[0, 1:] = rows[0]  # the row above the first is all zeros
        np.subtract(rows[1:stop], rows[: stop - 1], out=filtered[1:, 1:])
    else:
        np.subtract(rows[start:stop], above, out=filtered[:, 1:])
    data = filtered.data
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = compressor.compress(data)
    # a sync flush ends the strip on a byte boundary, so strips concatenate into one
    # valid deflate stream (as pigz does)
    out += compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return out, zlib.adler32(data), filtered.size


def encode_png(
    image: Image.Image | UInt8Array, level: int = PNG_LEVEL, workers: int = 0
) -> bytes:
    """PNG file bytes of an 8-bit image, compressed in parallel strips.

    image: PIL image of mode L, LA, RGB or RGBA, or uint8 (H, W) or (H, W, 1|2|3|4).
    level: zlib level 0-9. workers: threads (0: one per CPU core).
    Every row uses the "Up" filter; decoders see an ordinary 8-bit PNG.
    """
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "LA", "RGB", "RGBA"):
            raise ValueError(f"encode_png takes L, LA, RGB or RGBA, got {image.mode}")
        arr = np.asarray(image)
    else:
        arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"expected a uint8 (H, W) or (H, W, 1|2|3|4) image, got {arr.shape} "
            f"{arr.dtype}"
        )
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise ValueError(f"cannot write an empty {w}x{h} image as PNG")
    rows = np.ascontiguousarray(arr).reshape(h, w * c)
    per_strip = max(1, _PNG_STRIP_BYTES // (w * c + 1))
    bounds = [(y, min(y + per_strip, h)) for y in range(0, h, per_strip)]
    workers = min(workers or cpu_count(), len(bounds))

    def strip(bound: tuple[int, int]) -> tuple[bytes, int, int]:
        return _deflate_strip(rows, *bound, level, bound[1] == h)

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(strip, bounds))
    else:
        parts = [strip(b) for b in bounds]
    adler = 1
    for _data, part_adler, length in parts:
        adler = _adler32_combine(adler, part_adler, length)
    # zlib header: deflate with a 32 KiB window, FCHECK making it a multiple of 31
    stream = b"\x78\x01" + b"".join(p[0] for p in parts) + struct.pack(">I", adler)
    header = struct.pack(">IIBBBBB", w, h, 8, _PNG_COLOR_TYPES[c], 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", stream),
            _png_chunk(b"IEND", b""),
        )
    )


def _check_pixels(size: tuple[int, int], max_pixels: int, what: str) -> None:
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ImageLoadError(f"{what}: image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageTooLargeError(
            f"{what}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}",
            w * h,
            max_pixels,
        )


def images_in_folder(
    folder: str | os.PathLike[str],
    suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
    *,
    hidden: bool = False,
) -> list[Path]:
    """The files under `folder` (recursively) whose suffix, in any case, is one of
    `suffixes`, sorted; entries whose path below `folder` has a part starting with
    "." are left out unless `hidden`.
    """
    folder = Path(folder)
    found = []
    for path in folder.rglob("*"):
        if path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if not hidden and any(
            p.startswith(".") for p in path.relative_to(folder).parts
        ):
            continue
        found.append(path)
    return sorted(found)


def decode_rgb(data: bytes) -> UInt8Array:
    """The pixels of an encoded image file (JPEG, PNG, ...) as uint8 (H, W, 3) RGB.

    The stored pixels as the training pipeline sees them: no EXIF orientation, first
    frame only, Pillow's own pixel limit. For users' files use `load_pixels`.
    """
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))

"""Loading user images safely: any path, PIL image or array to float RGB plus alpha.

Inputs are hostile until checked: the pixel count is checked from the header before
decoding (decompression bombs), truncated and corrupt files raise `ImageLoadError` with
a one-line message, EXIF orientation is applied, and every common mode is converted (L,
LA, RGB, RGBA, P, CMYK, I;16 and other 16-bit greys, I, F).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.types import FloatArray, UInt8Array

__all__ = ["DEFAULT_MAX_PIXELS", "ImageLoadError", "ImageSource", "load_image"]

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP; a 4000x3000 photo is 12 MP
ImageSource = str | Path | Image.Image | np.ndarray


class ImageLoadError(ValueError):
    """An input that is not a usable image; the message is one line for users."""


def _pil_to_float(im: Image.Image) -> tuple[FloatArray, UInt8Array | None]:
    """Convert any PIL mode to float32 RGB (H, W, 3) in [0, 1] and optional alpha."""
    alpha = None
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("LA", "RGBA", "PA", "La", "RGBa"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.uint8)
        im = im.convert("RGB")
        mode = "RGB"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(im, dtype=np.float32)
        # I;16 is 16-bit grey (PNG, TIFF); plain I holds 16-bit data too, unless it came
        # from an 8-bit image (all values <= 255)
        is_8bit = mode == "I" and (grey.size == 0 or grey.max() <= 255)
        grey = np.clip(grey / (255.0 if is_8bit else 65535.0), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=-1), alpha
    if mode == "F":
        grey = np.asarray(im, dtype=np.float32)
        scale = 1.0 if grey.size == 0 or grey.max() <= 1.0 else 255.0
        return np.repeat(np.clip(grey / scale, 0, 1)[..., None], 3, axis=-1), alpha
    if mode != "RGB":
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.asarray(im, dtype=np.float32) / 255.0, alpha


def _array_to_float(arr: np.ndarray) -> tuple[FloatArray, UInt8Array | None]:
    """Array (H, W), (H, W, 1|2|3|4) of uint8, uint16 or float in [0, 1]."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4) or 0 in arr.shape[:2]:
        raise ImageLoadError(
            f"expected an (H, W) or (H, W, 1|2|3|4) image array, got shape {arr.shape}"
        )
    if arr.dtype == np.uint8:
        f = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        f = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ImageLoadError("image array contains NaN or infinite values")
        f = np.clip(arr.astype(np.float32), 0.0, 1.0)
    else:
        raise ImageLoadError(
            f"expected a uint8, uint16 or float image array, got {arr.dtype}"
        )
    alpha = None
    channels = arr.shape[-1]
    if channels in (2, 4):
        alpha = np.round(f[..., -1] * 255.0).astype(np.uint8)
        f = f[..., :-1]
    if f.shape[-1] == 1:
        f = np.repeat(f, 3, axis=-1)
    return np.ascontiguousarray(f), alpha


def load_image(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[FloatArray, UInt8Array | None]:
    """Load an image for colorization.

    source: a path, a PIL image or an array (uint8, uint16, or float in [0, 1]).
    max_pixels: refuse images with more pixels than this (checked before decoding).
    Returns (rgb float32 (H, W, 3) in [0, 1], alpha uint8 (H, W) or None).
    Raises ImageLoadError with a one-line message for anything unusable.
    """
    if isinstance(source, np.ndarray):
        _check_pixels(source.shape[:2], max_pixels, "array")
        return _array_to_float(source)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, max_pixels, "image")
        return _pil_to_float(ImageOps.exif_transpose(source))
    path = Path(source)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            # we enforce our own limit below, before any pixel is decoded
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_pixels(im.size, max_pixels, str(path))
                if im.format == "PNG":
                    # verify() checks every chunk's CRC: a damaged PNG otherwise decodes
                    # with black rows instead of failing
                    im.verify()
            with Image.open(path) as im:
                im.load()
                return _pil_to_float(ImageOps.exif_transpose(im))
    except ImageLoadError:
        raise
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"{path}: not an image file Pillow can read") from err
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"{path}: refused, {err}") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageLoadError(f"{path}: corrupt or truncated image ({err})") from err


def _check_pixels(size: tuple[int, int], max_pixels: int, what: str) -> None:
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ImageLoadError(f"{what}: image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageLoadError(
            f"{what}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,}"
        )

"""core.colourcheck on real small photos (scikit-image's, CC0 / public domain)."""

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.colourcheck import COLOR_CHROMA, color_spread, is_color_photo

# a warm sepia tone, as on a toned print: each channel a fixed share of the grey
SEPIA_TONE = np.array([1.0, 0.95, 0.85])


def _grey() -> np.ndarray:
    return skimage.data.camera()[::2, ::2]  # uint8 (256, 256)


def _jpeg_rgb(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _sepia(gray: np.ndarray) -> np.ndarray:
    rgb = gray[..., None].astype(np.float64) * SEPIA_TONE
    return np.clip(rgb, 0, 255).round().astype(np.uint8)


def test_a_grey_photo_is_not_colour() -> None:
    gray = _grey()
    assert not is_color_photo(gray)
    assert not is_color_photo(np.repeat(gray[..., None], 3, axis=-1))
    assert color_spread(np.repeat(gray[..., None], 3, axis=-1)) < 0.5


@pytest.mark.parametrize("quality", [30, 75, 95])
def test_a_grey_photo_saved_as_rgb_jpeg_is_not_colour(quality: int) -> None:
    rgb = _jpeg_rgb(np.repeat(_grey()[..., None], 3, axis=-1), quality)
    assert color_spread(rgb) < COLOR_CHROMA / 2
    assert not is_color_photo(rgb)


def test_a_sepia_photo_is_not_colour_though_far_from_grey() -> None:
    sepia = _sepia(_grey())
    channel_spread = sepia.max(axis=-1).astype(int) - sepia.min(axis=-1)
    assert channel_spread.mean() > 10  # clearly tinted: no mere grey (survey: >= 3)
    assert not is_color_photo(sepia)
    assert not is_color_photo(_jpeg_rgb(sepia))
    assert not is_color_photo(sepia / 255.0)


@pytest.mark.parametrize("name", ["coffee", "astronaut", "chelsea", "rocket"])
def test_colour_photos_are_colour(name: str) -> None:
    rgb = getattr(skimage.data, name)()[::2, ::2]
    assert color_spread(rgb) > COLOR_CHROMA + 1
    assert is_color_photo(rgb)
    assert is_color_photo(_jpeg_rgb(rgb))
    assert is_color_photo(rgb.astype(np.float32) / 255.0)  # float in [0, 1]
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    assert is_color_photo(np.concatenate([rgb, alpha], axis=-1))  # alpha ignored


def test_a_large_photo_is_subsampled_to_the_same_answer() -> None:
    rgb = skimage.data.coffee()
    big = np.repeat(np.repeat(rgb, 3, axis=0), 3, axis=1)  # 1200 x 1800 > 1 MP
    assert is_color_photo(big) and not is_color_photo(_sepia(_grey().repeat(5, 0)))


def test_an_image_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        color_spread(np.zeros((4, 4, 2), np.uint8))

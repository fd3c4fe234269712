"""Is this a colour photo? The one answer for the demo and the survey.

    from core.colourcheck import is_color_photo
    is_color_photo(pixels)  # False for grey, sepia and other one-tint prints

A photo is in colour when its colours differ from one another, not merely from grey:
the 99th percentile of each pixel's CIE Lab ab distance from the photo's median ab
(docs/design.md 1.3) is above COLOR_CHROMA. So grey photos, grey photos stored as RGB
JPEG (whose compression adds a little chroma noise) and toned prints (sepia,
cyanotype, selenium: one tint everywhere) are not colour photos. The line is where
the measured historical prints end: a heavy digital sepia filter, whose tint grows
from nothing in the shadows to strong in the highlights (a spread above 10.5), counts
as colour, as do hand-tinted photos.

Sepia counts as black and white for both uses:

- demo: a sepia upload is an old photo to colorize, not a colour original to score
  the colorization against (`demo.app.colorize_photo` shows the original and scores
  only for colour photos);
- survey: the real photo of a pair must be in colour, since participants tell real
  colour from colorized colour; a sepia real photo would be refused by
  `survey.create.load_photo` like a grey one.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2lab

__all__ = ["COLOR_CHROMA", "MAX_PIXELS_LOOKED_AT", "color_spread", "is_color_photo"]

# 99th-percentile ab spread: measured, 37 of the 40 historical photos in shared/data/bw
# stay below 10.5 (the rest are hand-tinted) and 120 val colour photos all lie above 11
COLOR_CHROMA = 10.5
MAX_PIXELS_LOOKED_AT = 1_000_000  # larger photos are subsampled on a regular grid


def color_spread(pixels: np.ndarray) -> float:
    """How far a photo's colours lie from its median colour: the 99th percentile of
    ||ab - median ab|| in CIE Lab (D65), 0 for a grey image.

    pixels: uint8 (H, W) or (H, W, 3|4) in [0, 255], or float (H, W) or (H, W, 3|4)
    in [0, 1]; a fourth channel (alpha) is ignored. Looks at most about
    MAX_PIXELS_LOOKED_AT pixels (every k-th row and column). Returns a float >= 0 in
    ab units (about 0 to 180).
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        return 0.0
    if pixels.ndim != 3 or pixels.shape[-1] not in (3, 4):
        raise ValueError(
            f"expected a (H, W), (H, W, 3) or (H, W, 4) image, got shape {pixels.shape}"
        )
    step = max(
        1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / MAX_PIXELS_LOOKED_AT))
    )
    rgb = pixels[::step, ::step, :3]
    rgb = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb
    # scikit-image's CIE Lab (D65; within 2e-4 of core.colorspace.rgb_to_lab): this
    # module must not load TensorFlow, which core.colorspace imports (the survey's
    # study creation runs without it)
    ab = rgb2lab(np.asarray(rgb, dtype=np.float32))[..., 1:].reshape(-1, 2)
    spread = np.hypot(*(ab - np.median(ab, axis=0)).T)
    return float(np.percentile(spread, 99))


def is_color_photo(pixels: np.ndarray, threshold: float = COLOR_CHROMA) -> bool:
    """True when a photo has real colour, not a grey or uniformly toned (sepia) one.

    pixels: as `color_spread` (uint8 in [0, 255] or float in [0, 1], (H, W) or
    (H, W, 3|4)). threshold: the spread above which a photo is in colour.
    """
    return color_spread(pixels) > threshold

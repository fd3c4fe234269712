"""The bundled example photos: scikit-image's public-domain and CC0 photos, made grey.

They ship with scikit-image (a dependency), so the quick start, the app and the tests
have real photos to colorize on a fresh clone with nothing downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.atomic import atomic_write_bytes
from core.colorspace import gray_level, rgb_to_lab
from core.imageio import encode_png

__all__ = ["EXAMPLES", "example_grey", "write_examples"]

# (scikit-image name, caption with its licence)
EXAMPLES = (
    ("astronaut", "Astronaut (NASA, public domain)"),
    ("chelsea", "Cat (CC0, Stefan van der Walt)"),
    ("coffee", "Coffee (CC0, Rachel Michetti)"),
    ("rocket", "Rocket (SpaceX, public domain)"),
    ("camera", "Camera (CC0, Lav Varshney)"),
)


def example_grey(name: str) -> np.ndarray:
    """The grey rendering g(L) of one example: uint8 (H, W) in [0, 255]."""
    import skimage.data

    rgb = getattr(skimage.data, name)()
    rgb = np.repeat(rgb[..., None], 3, axis=-1) if rgb.ndim == 2 else rgb[..., :3]
    return np.round(gray_level(rgb_to_lab(rgb)[..., 0]) * 255.0).astype(np.uint8)


def write_examples(folder: Path) -> list[tuple[Path, str]]:
    """Write every example as a grey PNG `folder/<name>.png` (atomically, creating the
    folder); returns [(path, caption), ...] in EXAMPLES order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, caption in EXAMPLES:
        path = folder / f"{name}.png"
        atomic_write_bytes(path, encode_png(Image.fromarray(example_grey(name))))
        written.append((path, caption))
    return written

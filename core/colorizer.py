"""`Colorizer`: the single entry point for inference (STYLE.md 2.3, COLORIZATION.md
1.6).

    from core import Colorizer
    colorizer = Colorizer.load("default")
    result = colorizer.colorize("photo.jpg", size=256)   # PIL.Image, same size as input

The network sees the lightness resized so its longer side is `size` (both sides rounded
to the model's multiple of 32, aspect ratio kept); the predicted chroma is upsampled to
the input's size and joined with the full-resolution lightness, so the output keeps the
input's size and detail. A colour input is colorized from its own lightness; alpha is
kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from core.colorspace import lab_to_rgb, rgb_to_lab
from core.imageio import DEFAULT_MAX_PIXELS, ImageSource, load_image
from core.models import create_model, get_spec
from core.models.registry import ModelSpec
from core.quantize import ANNEALED_T, decode_logits
from core.types import FloatArray
from core.weights import load_weights

__all__ = ["MAX_SIZE", "Colorizer", "compose", "network_shape"]

log = logging.getLogger(__name__)

MAX_SIZE = 2048  # largest network side accepted from users


def network_shape(h: int, w: int, size: int, multiple: int = 32) -> tuple[int, int]:
    """Network input (height, width): longer side `size`, aspect kept, multiples of 32.

    h, w: input size in pixels (>= 1). size: target longer side (>= multiple).
    """
    scale = size / max(h, w)
    nh = max(multiple, int(round(h * scale / multiple)) * multiple)
    nw = max(multiple, int(round(w * scale / multiple)) * multiple)
    return nh, nw


class Colorizer:
    """Colorizes images with one model; build it with `Colorizer.load(name)`."""

    def __init__(self, model: keras.Model, spec: ModelSpec) -> None:
        if spec.color_space != "lab":
            raise ValueError(
                f"model {spec.name!r} works in {spec.color_space}, not Lab"
            )
        self.model = model
        self.spec = spec

    @classmethod
    def load(
        cls, name: str = "default", weights: str | Path | None = None
    ) -> Colorizer:
        """Build a registered model and load its weights.

        weights: a weights file (e.g. a training run's best.weights.h5); None loads the
        shipped, hash-checked file. Raises UnknownModelError, MissingWeightsError or
        WeightsChecksumError with a message that says what to do.
        """
        spec = get_spec(name)
        model = create_model(name, pretrained=False)
        load_weights(model, spec, weights)
        return cls(model, spec)

    @property
    def name(self) -> str:
        return self.spec.name

    def colorize(
        self,
        image: ImageSource,
        size: int | None = None,
        *,
        temperature: float = ANNEALED_T,
        saturation: float = 1.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Image.Image:
        """Colorize one image.

        image: path, PIL image or array (uint8/uint16, or float in [0, 1]), any mode.
        size: longer side the network sees (default: the model's input size).
        temperature: annealed-mean temperature for 313-bin models (0 = argmax).
        saturation: multiplies the predicted chroma (1 = as predicted).
        Returns an RGB (or RGBA when the input had alpha) PIL image of the input's size.
        """
        return self.colorize_batch(
            [image],
            size,
            temperature=temperature,
            saturation=saturation,
            max_pixels=max_pixels,
        )[0]

    def colorize_batch(
        self,
        images: Sequence[ImageSource],
        size: int | None = None,
        *,
        temperature: float = ANNEALED_T,
        saturation: float = 1.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        batch_size: int = 8,
    ) -> list[Image.Image]:
        """Colorize several images; images of the same network shape share a batch.

        Raises ImageLoadError for the first unusable image (callers that want to go on
        past bad inputs colorize one at a time, as the CLI does).
        """
        size = self._check_size(size)
        if not 0.0 <= saturation <= 4.0:
            raise ValueError(f"saturation must be in [0, 4], got {saturation}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        loaded = [load_image(im, max_pixels) for im in images]
        labs = [rgb_to_lab(rgb) for rgb, _alpha in loaded]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, lab in enumerate(labs):
            shape = network_shape(*lab.shape[:2], size, self.spec.size_multiple)
            groups.setdefault(shape, []).append(i)
        results: list[Image.Image | None] = [None] * len(images)
        for shape, idx in groups.items():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                ab_small = self._predict_ab(
                    [labs[i][..., 0] for i in chunk], shape, temperature
                )
                for i, ab in zip(chunk, ab_small, strict=True):
                    results[i] = compose(labs[i], ab * saturation, loaded[i][1])
        return [r for r in results if r is not None]

    def predict_output(
        self, lightness: FloatArray, size: int | None = None
    ) -> FloatArray:
        """The network's raw output for one lightness map, at its output resolution.

        lightness: float32 (H, W) in [0, 100].
        Returns float32 (h, w, C), h, w = network shape / output stride: 313 bin logits
        for classification models, ab / ab_scale in [-1, 1] for regression models.
        """
        size = self._check_size(size)
        shape = network_shape(*lightness.shape, size, self.spec.size_multiple)
        return self._predict_raw([lightness], shape)[0]

    def output_to_ab(
        self, out: FloatArray, temperature: float = ANNEALED_T
    ) -> FloatArray:
        """Decode raw network output (..., C) to ab (..., 2) in CIE units."""
        if self.spec.output == "ab_bins":
            return decode_logits(out, temperature)
        return np.asarray(out, dtype=np.float32) * self.spec.ab_scale

    def _check_size(self, size: int | None) -> int:
        size = self.spec.input_size if size is None else int(size)
        if not self.spec.size_multiple <= size <= MAX_SIZE:
            raise ValueError(
                f"size must be between {self.spec.size_multiple} and {MAX_SIZE}, "
                f"got {size}"
            )
        return size

    def _predict_raw(
        self, lightness: list[FloatArray], shape: tuple[int, int]
    ) -> FloatArray:
        batch = np.stack([_resize(x[..., None], shape) for x in lightness])
        return np.asarray(self.model(batch / 100.0, training=False), dtype=np.float32)

    def _predict_ab(
        self, lightness: list[FloatArray], shape: tuple[int, int], temperature: float
    ) -> list[FloatArray]:
        return list(self.output_to_ab(self._predict_raw(lightness, shape), temperature))


def _resize(x: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """Bilinear antialiased resize of float32 (H, W, C) to `shape`."""
    if x.shape[:2] == shape:
        return x.astype(np.float32)
    return tf.image.resize(x, shape, method="bilinear", antialias=True).numpy()


def compose(
    lab: FloatArray, ab_small: FloatArray, alpha: np.ndarray | None = None
) -> Image.Image:
    """Join full-resolution lightness with upsampled chroma (COLORIZATION.md 1.6).

    lab: float32 (H, W, 3) of the input (only L is used); ab_small: float32 (h, w, 2)
    in CIE units; alpha: uint8 (H, W) or None.
    Returns an RGB (or RGBA) uint8 PIL image of size (W, H).
    """
    h, w = lab.shape[:2]
    ab = tf.image.resize(ab_small, (h, w), method="bilinear").numpy()
    rgb = lab_to_rgb(np.concatenate([lab[..., :1], ab], axis=-1))
    rgb8 = np.round(rgb * 255.0).astype(np.uint8)
    if alpha is not None:
        return Image.fromarray(np.dstack([rgb8, alpha]), mode="RGBA")
    return Image.fromarray(rgb8, mode="RGB")

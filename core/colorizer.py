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

Models work in Lab (lightness in, ab out) or in YUV (luma Y in, UV out: the cGAN). A
sampling model (`spec.samples`, e.g. the cGAN) also takes noise; `seed` picks it, so
different seeds give different colorizations and the same seed the same one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from core.colorspace import U_MAX, V_MAX, lab_to_rgb, rgb_to_lab, rgb_to_yuv, yuv_to_rgb
from core.imageio import DEFAULT_MAX_PIXELS, ImageSource, load_image
from core.models import create_model, get_spec
from core.models.registry import ModelSpec
from core.quantize import ANNEALED_T, decode_logits
from core.types import FloatArray
from core.weights import load_weights

__all__ = ["MAX_SIZE", "Colorizer", "compose", "network_shape"]

log = logging.getLogger(__name__)

MAX_SIZE = 2048  # largest network side accepted from users


_COLOR_SPACES = ("lab", "yuv")
_UV_SCALE = np.array([U_MAX, V_MAX], dtype=np.float32)


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
        if spec.color_space not in _COLOR_SPACES:
            raise ValueError(
                f"model {spec.name!r} works in {spec.color_space!r}; "
                f"the Colorizer knows {', '.join(_COLOR_SPACES)}"
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
        seed: int = 0,
    ) -> Image.Image:
        """Colorize one image.

        image: path, PIL image or array (uint8/uint16, or float in [0, 1]), any mode.
        size: longer side the network sees (default: the model's input size; models
            with a fixed input size always see input_size x input_size).
        temperature: annealed-mean temperature for 313-bin models (0 = argmax).
        saturation: multiplies the predicted chroma (1 = as predicted).
        seed: noise seed of a sampling model (ignored by the others).
        Returns an RGB (or RGBA when the input had alpha) PIL image of the input's size.
        """
        return self.colorize_batch(
            [image],
            size,
            temperature=temperature,
            saturation=saturation,
            max_pixels=max_pixels,
            seed=seed,
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
        seed: int = 0,
    ) -> list[Image.Image]:
        """Colorize several images; images of the same network shape share a batch.

        seed: image i of a sampling model gets the noise of `(seed, i)`, so one image
        colorized alone with `seed` matches image 0 of a batch with that seed.
        Raises ImageLoadError for the first unusable image (callers that want to go on
        past bad inputs colorize one at a time, as the CLI does).
        """
        size = self._check_size(size)
        if not 0.0 <= saturation <= 4.0:
            raise ValueError(f"saturation must be in [0, 4], got {saturation}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        loaded = [load_image(im, max_pixels) for im in images]
        convs = [self._convert(rgb) for rgb, _alpha in loaded]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, conv in enumerate(convs):
            groups.setdefault(self._shape(conv.shape[:2], size), []).append(i)
        results: list[Image.Image | None] = [None] * len(images)
        for shape, idx in groups.items():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                raw = self._predict_raw(
                    [convs[i][..., 0] for i in chunk],
                    shape,
                    [(seed, i) for i in chunk],
                )
                chroma = self.output_to_chroma(raw, temperature)
                for i, c in zip(chunk, chroma, strict=True):
                    results[i] = compose(
                        convs[i], c * saturation, loaded[i][1], self.spec.color_space
                    )
        return [r for r in results if r is not None]

    def predict_output(
        self, lightness: FloatArray, size: int | None = None, seed: int = 0
    ) -> FloatArray:
        """The network's raw output for one lightness map, at its output resolution.

        lightness: float32 (H, W), the model's luma: L in [0, 100] for Lab models,
        Y in [0, 1] for YUV models.
        Returns float32 (h, w, C), h, w = network shape / output stride: 313 bin logits
        for classification models, ab / ab_scale in [-1, 1] for regression models,
        normalised uv in [-1, 1] for YUV models.
        """
        size = self._check_size(size)
        shape = self._shape(lightness.shape, size)
        return self._predict_raw([lightness], shape, [(seed, 0)])[0]

    def output_to_chroma(
        self, out: FloatArray, temperature: float = ANNEALED_T
    ) -> FloatArray:
        """Decode raw network output (..., C) to chroma (..., 2).

        Lab models give ab in CIE units; YUV models give U, V in scikit-image units.
        """
        out = np.asarray(out, dtype=np.float32)
        if self.spec.output == "ab_bins":
            return decode_logits(out, temperature)
        if self.spec.output == "uv":
            return out * _UV_SCALE
        return out * self.spec.ab_scale

    def _convert(self, rgb: FloatArray) -> FloatArray:
        """RGB float32 (H, W, 3) in [0, 1] -> the model's colour space (H, W, 3)."""
        return rgb_to_yuv(rgb) if self.spec.color_space == "yuv" else rgb_to_lab(rgb)

    def _shape(self, hw: tuple[int, ...], size: int) -> tuple[int, int]:
        if self.spec.fixed_size:
            return self.spec.input_size, self.spec.input_size
        return network_shape(int(hw[0]), int(hw[1]), size, self.spec.size_multiple)

    def _check_size(self, size: int | None) -> int:
        size = self.spec.input_size if size is None else int(size)
        if not self.spec.size_multiple <= size <= MAX_SIZE:
            raise ValueError(
                f"size must be between {self.spec.size_multiple} and {MAX_SIZE}, "
                f"got {size}"
            )
        return size

    def _predict_raw(
        self,
        luma: list[FloatArray],
        shape: tuple[int, int],
        seeds: list[tuple[int, int]],
    ) -> FloatArray:
        batch = np.stack([_resize(x[..., None], shape) for x in luma])
        if self.spec.color_space == "yuv":
            x = batch * 2.0 - 1.0  # Y in [0, 1] -> [-1, 1] (COLORIZATION.md 1.3)
        else:
            x = batch / 100.0
        if self.spec.samples:
            dim = self.spec.noise_dim
            z = np.stack(
                [np.random.default_rng(list(s)).uniform(-1, 1, dim) for s in seeds]
            ).astype(np.float32)
            out = self.model([x, z], training=False)
        else:
            out = self.model(x, training=False)
        return np.asarray(out, dtype=np.float32)


def _resize(x: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """Bilinear antialiased resize of float32 (H, W, C) to `shape`."""
    if x.shape[:2] == shape:
        return x.astype(np.float32)
    return tf.image.resize(x, shape, method="bilinear", antialias=True).numpy()


def compose(
    lab: FloatArray,
    ab_small: FloatArray,
    alpha: np.ndarray | None = None,
    color_space: str = "lab",
) -> Image.Image:
    """Join full-resolution lightness with upsampled chroma (COLORIZATION.md 1.6).

    lab: float32 (H, W, 3) of the input in `color_space` (only channel 0, L or Y, is
    used); ab_small: float32 (h, w, 2) chroma (ab in CIE units, or U, V);
    alpha: uint8 (H, W) or None.
    Returns an RGB (or RGBA) uint8 PIL image of size (W, H).
    """
    h, w = lab.shape[:2]
    ab = tf.image.resize(ab_small, (h, w), method="bilinear").numpy()
    full = np.concatenate([lab[..., :1], ab], axis=-1)
    rgb = yuv_to_rgb(full) if color_space == "yuv" else lab_to_rgb(full)
    rgb8 = np.round(rgb * 255.0).astype(np.uint8)
    if alpha is not None:
        return Image.fromarray(np.dstack([rgb8, alpha]), mode="RGBA")
    return Image.fromarray(rgb8, mode="RGB")

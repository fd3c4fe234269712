"""`Colorizer`: the single entry point for inference (docs/design.md 7.2 and 1.7).

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
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

# The full-resolution band kernels are colorspace's (lightness_from_luminance,
# lab_to_rgb8), so the formulas have one home.
from core.colorspace import (
    RGB_TO_XYZN_T,
    RGB_TO_YUV_T,
    lab_to_rgb,
    lab_to_rgb8,
    lightness_from_luminance,
    rgb_to_lab,
    rgb_to_yuv,
    srgb_to_linear,
    yuv_to_rgb,
)
from core.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    ImageSource,
    cpu_count,
    load_pixels,
    pixels_to_rgb,
)
from core.models import create_model, get_spec
from core.models.registry import AB_SCALE, ModelSpec
from core.models.unet import automatic_model
from core.quantize import ANNEALED_T, NUM_BINS, bin_centers, decode_logits
from core.types import FloatArray, UInt8Array
from core.weights import load_weights

if TYPE_CHECKING:
    from core.video import StabilizeOptions, VideoLimits, VideoResult

__all__ = [
    "HINT_PATCH",
    "MAX_SIZE",
    "Colorizer",
    "Hint",
    "HintError",
    "compose",
    "hint_maps",
    "network_shape",
    "pixels_to_luma",
]

log = logging.getLogger(__name__)

MAX_SIZE = 2048  # largest network side accepted from users
PREFETCH = 2  # images decoded ahead of the network by `colorize_iter`

_COLOR_SPACES = ("lab", "yuv")
_GRAPH_CACHE = 32  # traced network shapes kept per Colorizer
# Full-resolution work runs in bands of rows: a float32 band of this many pixels
# (256 KiB) stays in a core's L2 cache, and bands run on all cores (numpy releases the
# GIL). Measured in docs/performance.md.
_BAND_PIXELS = 1 << 16
# A hint colours a square of this side (network pixels) around its point: the middle of
# the 1..9 px patches the hint models were trained with (training/hints.py).
HINT_PATCH = 5

# A user hint: (x, y, (r, g, b)), x and y in pixels of the photo as displayed (after
# EXIF orientation), the colour in 8-bit sRGB (only the ab of its Lab value is used).
Hint = tuple[int, int, tuple[int, int, int]]


class HintError(ValueError):
    """A hint that cannot be used: a point outside the photo, a bad colour, or a model
    without hint inputs. The message names the hint."""


def _check_hints(hints: Sequence[Hint], w: int, h: int) -> list[Hint]:
    """Hints as (int x, int y, (r, g, b)) after checking each; raises HintError."""
    checked = []
    for i, hint in enumerate(hints):
        try:
            x, y, color = hint
            rgb = tuple(int(c) for c in color)
            x, y = int(x), int(y)
        except (TypeError, ValueError):
            raise HintError(f"hint {i + 1} {hint!r} is not (x, y, (r, g, b))") from None
        if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
            raise HintError(f"hint {i + 1}: colour {color!r} is not 8-bit (r, g, b)")
        if not (0 <= x < w and 0 <= y < h):
            raise HintError(f"hint {i + 1} at ({x}, {y}) is outside the {w}x{h} photo")
        checked.append((x, y, rgb))
    return checked


def hint_maps(
    hints: Sequence[Hint],
    image_hw: tuple[int, int],
    shape: tuple[int, int],
    ab_scale: float = AB_SCALE,
    patch: int = HINT_PATCH,
) -> tuple[FloatArray, FloatArray]:
    """The network's hint inputs for hints given in pixels of a photo.

    hints: checked hints (x, y, (r, g, b)) in pixels of a photo of image_hw = (H, W).
    shape: the network's input (h, w). Each hint colours a patch x patch square
    around its point, mapped to the network's pixels; overlapping squares average.
    Returns hint ab / ab_scale float32 (h, w, 2) in [-1, 1] (0 where no hint) and
    the mask float32 (h, w, 1) (1 where hinted).
    """
    nh, nw = shape
    total = np.zeros((nh, nw, 2), np.float32)
    hits = np.zeros((nh, nw), np.float32)
    if hints:
        rgb = np.array([c for _x, _y, c in hints], np.uint8)
        ab = rgb_to_lab(rgb)[:, 1:] / ab_scale
        for (x, y, _c), value in zip(hints, ab, strict=True):
            cx = int((x + 0.5) * nw / image_hw[1])
            cy = int((y + 0.5) * nh / image_hw[0])
            x0, y0 = max(cx - patch // 2, 0), max(cy - patch // 2, 0)
            x1, y1 = min(cx + patch // 2 + 1, nw), min(cy + patch // 2 + 1, nh)
            total[y0:y1, x0:x1] += value
            hits[y0:y1, x0:x1] += 1.0
    mask = (hits > 0).astype(np.float32)
    hint_ab = np.clip(total / np.maximum(hits, 1.0)[..., None], -1.0, 1.0)
    return hint_ab.astype(np.float32), mask[..., None]


def _grey_table(convert: Callable[[np.ndarray], np.ndarray]) -> FloatArray:
    """Channel 0 of `convert` for the 256 grey levels: float32 (256,)."""
    levels = np.repeat(np.arange(256, dtype=np.float32)[:, None] / 255.0, 3, axis=1)
    return np.ascontiguousarray(convert(levels)[:, 0], dtype=np.float32)


# 8-bit greys are converted by table: the tables come from colorspace's own functions
_GREY_LIGHTNESS = _grey_table(rgb_to_lab)
_GREY_LUMA = _grey_table(rgb_to_yuv)
# relative luminance Y of each 8-bit level of R, G and B: float32 (3, 256)
_CHANNEL_LUMINANCE = (
    srgb_to_linear(np.arange(256) / 255.0)[None, :] * RGB_TO_XYZN_T[:, 1][:, None]
)


def network_shape(h: int, w: int, size: int, multiple: int = 32) -> tuple[int, int]:
    """Network input (height, width): longer side `size`, aspect kept, multiples of 32.

    h, w: input size in pixels (>= 1). size: target longer side (>= multiple).
    """
    scale = size / max(h, w)
    nh = max(multiple, int(round(h * scale / multiple)) * multiple)
    nw = max(multiple, int(round(w * scale / multiple)) * multiple)
    return nh, nw


class Colorizer:
    """Colorizes images with one model; build it with `Colorizer.load(name)`.

    The network runs as one traced TensorFlow graph per input shape (traced on first
    use, about a second), with the annealed mean of 313-bin models inside it: faster
    than calling the Keras model eagerly and decoding in numpy (docs/performance.md).
    A Colorizer may be shared between threads.
    """

    def __init__(self, model: keras.Model, spec: ModelSpec, tta: bool = False) -> None:
        """tta: test-time augmentation, the network's raw output averaged over the
        photo and its mirror image (twice the network time)."""
        if spec.color_space not in _COLOR_SPACES:
            raise ValueError(
                f"model {spec.name!r} works in {spec.color_space!r}; "
                f"the Colorizer knows {', '.join(_COLOR_SPACES)}"
            )
        self.model = model
        self.spec = spec
        self.tta = bool(tta)
        self._graphs: dict[tuple[tuple[int, ...], ...], Callable] = {}
        self._graphs_lock = threading.Lock()

    @classmethod
    def load(
        cls, name: str = "default", weights: str | Path | None = None, tta: bool = False
    ) -> Colorizer:
        """Build a registered model and load its weights.

        weights: a weights file (e.g. a training run's best.weights.h5); None loads the
        shipped, hash-checked file. tta: see `Colorizer`. Raises UnknownModelError,
        MissingWeightsError or WeightsChecksumError with a message that says what to do.
        """
        spec = get_spec(name)
        model = create_model(name, pretrained=False)
        load_weights(model, spec, weights)
        return cls(model, spec, tta=tta)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def takes_hints(self) -> bool:
        """True when the model has hint inputs (`colorize(..., hints=...)`)."""
        return self.spec.hints

    def colorize(
        self,
        image: ImageSource,
        size: int | None = None,
        *,
        hints: Sequence[Hint] | None = None,
        temperature: float = ANNEALED_T,
        saturation: float = 1.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        seed: int = 0,
    ) -> Image.Image:
        """Colorize one image.

        image: path, PIL image or array (uint8/uint16, or float in [0, 1]), any mode.
        size: longer side the network sees (default: the model's input size; models
            with a fixed input size always see input_size x input_size).
        hints: user hints [(x, y, (r, g, b)), ...]: x, y in pixels of the image as
            displayed (after EXIF orientation), 0 <= x < width, 0 <= y < height; the
            colour in 8-bit sRGB, of which only the ab of its Lab value is used. None
            or [] colorizes automatically. Raises HintError for a point outside the
            photo, a bad colour, or hints given to a model without hint inputs.
        temperature: annealed-mean temperature for 313-bin models (0 = argmax).
        saturation: multiplies the predicted chroma (1 = as predicted).
        seed: noise seed of a sampling model (ignored by the others).
        Returns an RGB (or RGBA when the input had alpha) PIL image of the input's size.
        """
        if hints:
            self._check_takes_hints()
            size = self._check_options(size, temperature, saturation, seed)
            y, alpha = self._load_luma(image, max_pixels)
            shape = self._shape(y.shape, size)
            maps = self._hint_maps(hints, y.shape, shape)
            chroma = self._predict_chroma([y], shape, [(seed, 0)], temperature, [maps])
            return _compose_luma(
                y, chroma[0] * saturation, alpha, self.spec.color_space
            )
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
        errors: Literal["raise", "return"] = "raise",
    ) -> list[Image.Image] | list[Image.Image | ImageLoadError]:
        """Colorize several images; images of the same network shape share a batch.

        images: a sequence of what `colorize` takes (paths, PIL images, arrays, or
            bytes of an encoded image file); a single image is refused.
        seed: image i of a sampling model gets the noise of `(seed, i)`, so one image
            colorized alone with `seed` matches image 0 of a batch with that seed.
        errors: "raise" raises the ImageLoadError of the first unusable image (in
            input order) and colorizes nothing; "return" colorizes every usable image
            and puts the ImageLoadError of each unusable one in its place.
        Returns one result per input, in input order: RGB (or RGBA) PIL images of the
        inputs' sizes, and with errors="return" ImageLoadErrors where inputs failed.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f'errors must be "raise" or "return", got {errors!r}')
        if isinstance(images, str | Path | bytes | Image.Image):
            raise ImageLoadError(
                f"colorize_batch takes a sequence of images, got one "
                f"{type(images).__name__}; use colorize for a single image"
            )
        size = self._check_options(size, temperature, saturation, seed)
        results: list[Image.Image | ImageLoadError | None] = []
        lumas: dict[int, FloatArray] = {}
        alphas: dict[int, UInt8Array | None] = {}
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            try:
                lumas[i], alphas[i] = self._load_luma(im, max_pixels)
            except ImageLoadError as err:
                if errors == "raise":
                    raise
                results.append(err)
                continue
            results.append(None)
            groups.setdefault(self._shape(lumas[i].shape, size), []).append(i)
        for shape, idx in groups.items():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                chroma = self._predict_chroma(
                    [lumas[i] for i in chunk],
                    shape,
                    [(seed, i) for i in chunk],
                    temperature,
                )
                for i, c in zip(chunk, chroma, strict=True):
                    results[i] = _compose_luma(
                        lumas[i], c * saturation, alphas[i], self.spec.color_space
                    )
        return [r for r in results if r is not None]

    def colorize_iter(
        self,
        images: Iterable[ImageSource],
        size: int | None = None,
        *,
        temperature: float = ANNEALED_T,
        saturation: float = 1.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        seed: int = 0,
    ) -> Generator[Image.Image | ImageLoadError, None, None]:
        """Colorize images one after another, decoding the next ones meanwhile.

        Yields, in input order, what `colorize(image, ...)` gives for each image: the
        colorized PIL image, or the ImageLoadError of an unusable input (the others go
        on). Up to PREFETCH images are decoded in a background thread while the
        network runs, so a folder keeps the CPU cores busy. Options are checked here,
        before the first image.
        """
        size = self._check_options(size, temperature, saturation, seed)
        return self._iter(images, size, temperature, saturation, max_pixels, seed)

    def _iter(
        self,
        images: Iterable[ImageSource],
        size: int,
        temperature: float,
        saturation: float,
        max_pixels: int,
        seed: int,
    ) -> Generator[Image.Image | ImageLoadError, None, None]:
        space = self.spec.color_space

        sources = iter(images)
        with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
            ahead = deque(
                pool.submit(self._load_luma, im, max_pixels)
                for im in islice(sources, PREFETCH)
            )
            while ahead:
                future = ahead.popleft()
                for image in islice(sources, 1):
                    ahead.append(pool.submit(self._load_luma, image, max_pixels))
                try:
                    y, alpha = future.result()
                except ImageLoadError as err:
                    yield err
                    continue
                shape = self._shape(y.shape, size)
                chroma = self._predict_chroma([y], shape, [(seed, 0)], temperature)[0]
                yield _compose_luma(y, chroma * saturation, alpha, space)

    def suggest(
        self,
        image: ImageSource,
        x: int,
        y: int,
        k: int = 6,
        hints: Sequence[Hint] | None = None,
        *,
        size: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> list[tuple[tuple[int, int, int], float]]:
        """The k most likely colours at a point, from the 313-bin distribution.

        x, y: a pixel of the image as displayed (after EXIF orientation). hints: as
        in `colorize` (the distribution given those hints). k: 1..313.
        Returns [((r, g, b), probability), ...], most likely first: each bin's ab
        with the photo's lightness at the point, as 8-bit sRGB (out-of-gamut colours
        clipped), and its softmax probability in [0, 1].
        Raises HintError for a point outside the photo or a model without a 313-bin
        output (or without hint inputs, when hints are given).
        """
        if self.spec.output != "ab_bins":
            raise HintError(
                f"model {self.name!r} predicts one colour per pixel, not a "
                "distribution to suggest from; use a 313-bin model (default)"
            )
        if not 1 <= int(k) <= NUM_BINS:
            raise ValueError(f"k must be between 1 and {NUM_BINS}, got {k}")
        if hints:
            self._check_takes_hints()
        size = self._check_size(size)
        luma, _alpha = self._load_luma(image, max_pixels)
        h, w = luma.shape
        [(x, y, _c)] = _check_hints([(x, y, (0, 0, 0))], w, h)
        shape = self._shape(luma.shape, size)
        maps = self._hint_maps(hints or [], luma.shape, shape)
        logits = self._predict_raw([luma], shape, [(0, 0)], [maps])[0]
        cell = logits[
            min(int((y + 0.5) * logits.shape[0] / h), logits.shape[0] - 1),
            min(int((x + 0.5) * logits.shape[1] / w), logits.shape[1] - 1),
        ].astype(np.float64)
        p = np.exp(cell - cell.max())
        p /= p.sum()
        top = np.argsort(-p, kind="stable")[: int(k)]
        lab = np.zeros((len(top), 3), np.float32)
        lab[:, 0] = luma[y, x]
        lab[:, 1:] = bin_centers()[top]
        rgb = np.rint(lab_to_rgb(lab) * 255.0).astype(int)
        return [
            ((int(r), int(g), int(b)), float(p[i]))
            for (r, g, b), i in zip(rgb, top, strict=True)
        ]

    def colorize_video(
        self,
        src: str | Path,
        dst: str | Path,
        size: int | None = 256,
        *,
        stabilize: bool | StabilizeOptions = True,
        hints: Sequence[Hint] | None = None,
        hint_frame: int = 0,
        temperature: float = ANNEALED_T,
        saturation: float = 1.0,
        limits: VideoLimits | None = None,
        progress: Callable[[int, int], None] | None = None,
        overwrite: bool = False,
    ) -> VideoResult:
        """Colorize a video clip into `dst`, streaming frame by frame.

        src: a video file (any container and codec FFmpeg reads). dst: the output
        file; its suffix picks the container (.mp4, .m4v, .mov, .mkv), the video is
        H.264 yuv420p with the input's frame count, frame rate and time stamps, and
        its audio streams are copied. Each frame keeps its own full-resolution
        lightness; the network sees it at `size` (longer side) and its chroma is
        upsampled, as for photos. Memory does not grow with the clip's length.
        stabilize: True carries colours along the optical flow between frames and
            runs the network on keyframes only (`core.video.StabilizeOptions`, or
            pass one); False colorizes every frame on its own (it flickers).
        hints: for a model with hint inputs, [(x, y, (r, g, b)), ...] in pixels of
            frame `hint_frame` (0-based); each point is carried along the flow to the
            later frames of its scene and dropped where the flow is unreliable or at
            a cut. Frames before `hint_frame` get no hints.
        limits: the largest clip accepted (`core.video.VideoLimits()` when None).
        progress: called as progress(frames done, frames expected or 0).
        overwrite: replace an existing `dst` (never the input).
        Returns a `core.video.VideoResult`. Raises core.video.VideoError (one line)
        for a file that is not a readable video, is corrupt, has no frames or is
        over the limits; HintError for unusable hints.
        """
        from core.video import VideoLimits, colorize_video

        return colorize_video(
            self,
            src,
            dst,
            size,
            stabilize=stabilize,
            hints=hints,
            hint_frame=hint_frame,
            temperature=temperature,
            saturation=saturation,
            limits=VideoLimits() if limits is None else limits,
            progress=progress,
            overwrite=overwrite,
        )

    def _load_luma(
        self, image: ImageSource, max_pixels: int
    ) -> tuple[FloatArray, UInt8Array | None]:
        """The model's full-resolution luma (`pixels_to_luma`) and the alpha of one
        input; the decoded pixels are not kept. Raises ImageLoadError."""
        pixels, alpha = load_pixels(image, max_pixels)
        return pixels_to_luma(pixels, self.spec.color_space), alpha

    def _check_takes_hints(self) -> None:
        if not self.spec.hints:
            raise HintError(
                f"model {self.name!r} has no hint inputs; hints need a model that "
                "takes them (default)"
            )

    def _hint_maps(
        self,
        hints: Sequence[Hint],
        image_hw: tuple[int, ...],
        shape: tuple[int, int],
    ) -> tuple[FloatArray, FloatArray]:
        h, w = int(image_hw[0]), int(image_hw[1])
        checked = _check_hints(hints, w, h)
        return hint_maps(checked, (h, w), shape, self.spec.ab_scale)

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
        return self.spec.norm_to_chroma(out)

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

    def _check_options(
        self, size: int | None, temperature: float, saturation: float, seed: int
    ) -> int:
        size = self._check_size(size)
        if not 0.0 <= saturation <= 4.0:
            raise ValueError(f"saturation must be in [0, 4], got {saturation}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return size

    def _network_inputs(
        self,
        luma: list[FloatArray],
        shape: tuple[int, int],
        seeds: list[tuple[int, int]],
        hints: list[tuple[FloatArray, FloatArray]] | None = None,
    ) -> list[FloatArray]:
        """The model's inputs: normalised luma (B, h, w, 1), noise for samplers, and
        for hint models the hint ab (B, h, w, 2) and mask (B, h, w, 1) (`hint_maps`
        per image; zeros when hints is None)."""
        batch = np.stack([_resize(x[..., None], shape) for x in luma])
        inputs = [self.spec.luma_to_norm(batch).astype(np.float32)]
        if self.spec.samples:
            dim = self.spec.noise_dim
            z = np.stack(
                [np.random.default_rng(list(s)).uniform(-1, 1, dim) for s in seeds]
            ).astype(np.float32)
            inputs.append(z)
        if self.spec.hints:
            n = len(luma)
            if hints is None:
                inputs.append(np.zeros((n, *shape, 2), np.float32))
                inputs.append(np.zeros((n, *shape, 1), np.float32))
            else:
                inputs.append(np.stack([ab for ab, _m in hints]))
                inputs.append(np.stack([m for _ab, m in hints]))
        return inputs

    def _predict_raw(
        self,
        luma: list[FloatArray],
        shape: tuple[int, int],
        seeds: list[tuple[int, int]],
        hints: list[tuple[FloatArray, FloatArray]] | None = None,
    ) -> FloatArray:
        inputs = self._network_inputs(luma, shape, seeds, hints)
        graph = self._graph([a.shape for a in inputs], False, self._hinted(inputs))
        return np.asarray(graph(*inputs), dtype=np.float32)

    def _predict_chroma(
        self,
        luma: list[FloatArray],
        shape: tuple[int, int],
        seeds: list[tuple[int, int]],
        temperature: float,
        hints: list[tuple[FloatArray, FloatArray]] | None = None,
    ) -> FloatArray:
        """Chroma (B, h, w, 2) as `output_to_chroma(_predict_raw(...))` gives it.

        The annealed mean of 313-bin models runs inside the traced graph (softmax and
        a product with the bin centres on all cores), so the logits never leave it.
        """
        if self.spec.output != "ab_bins" or temperature <= 0:
            raw = self._predict_raw(luma, shape, seeds, hints)
            return self.output_to_chroma(raw, temperature)
        inputs = self._network_inputs(luma, shape, seeds, hints)
        graph = self._graph([a.shape for a in inputs], True, self._hinted(inputs))
        out = graph(*inputs, np.float32(temperature))
        return np.asarray(out, dtype=np.float32)

    def _hinted(self, inputs: list[FloatArray]) -> bool:
        """Whether these network inputs carry a hint (the mask, last, is not 0)."""
        return bool(self.spec.hints and np.any(inputs[-1] > 0))

    def _graph(
        self, shapes: list[tuple[int, ...]], decode: bool, hinted: bool = True
    ) -> Callable:
        """The network traced for inputs of exactly these shapes (cached).

        hinted: False when no input carries a hint: the graph then leaves out the
        hints' evidence, which is zero (`core.models.unet.automatic_model`).

        decode: the graph also takes the temperature (a scalar) and returns the
        annealed-mean ab (B, h, w, 2) instead of the logits.
        """
        key = (tuple(tuple(s) for s in shapes), decode, hinted)
        with self._graphs_lock:
            graph = self._graphs.get(key)
            if graph is None:
                graph = self._trace(key[0], decode, hinted)
                if len(self._graphs) >= _GRAPH_CACHE:
                    self._graphs.pop(next(iter(self._graphs)))
                self._graphs[key] = graph
                log.debug("traced %s for inputs %s", self.spec.name, key)

        def call(*inputs: np.ndarray) -> tf.Tensor:
            return graph(*(tf.convert_to_tensor(a, tf.float32) for a in inputs))

        return call

    def _trace(
        self, shapes: tuple[tuple[int, ...], ...], decode: bool, hinted: bool = True
    ) -> Callable:
        model = self.model if hinted else automatic_model(self.model)
        centers = tf.constant(bin_centers())

        def plain(*inputs: tf.Tensor) -> tf.Tensor:
            return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

        def mirrored(*inputs: tf.Tensor) -> tf.Tensor:
            # the mirror image through the network, mirrored back (width is axis 2);
            # image-shaped inputs (luma, hint maps) are mirrored, noise is not
            flipped = tuple(
                tf.reverse(a, [2]) if a.shape.rank == 4 else a for a in inputs
            )
            return 0.5 * (plain(*inputs) + tf.reverse(plain(*flipped), [2]))

        forward = mirrored if self.tta else plain

        def forward_decoded(*inputs: tf.Tensor) -> tf.Tensor:
            *xs, temperature = inputs
            # decode_logits' annealed mean: softmax(logits / T) . bin centres
            p = tf.nn.softmax(forward(*xs) / temperature, axis=-1)
            return tf.tensordot(p, centers, axes=1)

        specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
        if decode:
            specs.append(tf.TensorSpec([], tf.float32))
        fn = tf.function(forward_decoded if decode else forward, autograph=False)
        return fn.get_concrete_function(*specs)


def _resize(x: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """Bilinear antialiased resize of float32 (H, W, C) to `shape`."""
    if x.shape[:2] == shape:
        return x.astype(np.float32)
    return tf.image.resize(x, shape, method="bilinear", antialias=True).numpy()


# ------------------------------------------------------------ full-resolution bands


def _row_bands(h: int, w: int) -> list[tuple[int, int]]:
    rows = max(1, _BAND_PIXELS // max(w, 1))
    return [(y, min(y + rows, h)) for y in range(0, h, rows)]


def _for_bands(h: int, w: int, work: Callable[[int, int], None]) -> None:
    """Call work(y0, y1) for every band of rows, on all CPU cores."""
    bands = _row_bands(h, w)
    workers = min(cpu_count(), len(bands))
    if workers <= 1:
        for band in bands:
            work(*band)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="bands") as pool:
        for done in pool.map(lambda band: work(*band), bands):
            del done  # map() re-raises a worker's exception here


def pixels_to_luma(pixels: np.ndarray, color_space: str = "lab") -> FloatArray:
    """The luma channel a model sees, at full resolution.

    pixels: `core.imageio.load_pixels` output: uint8 (H, W) or (H, W, 3), or float32
    (H, W) or (H, W, 3) in [0, 1].
    Returns float32 (H, W): CIE L in [0, 100] for "lab", YUV's Y in [0, 1] for "yuv";
    the same values as `rgb_to_lab` / `rgb_to_yuv` give (within float rounding).
    """
    grey_table = _GREY_LIGHTNESS if color_space == "lab" else _GREY_LUMA
    if pixels.dtype == np.uint8 and pixels.ndim == 3 and _is_grey(pixels):
        pixels = pixels[..., 0]
    if pixels.dtype == np.uint8 and pixels.ndim == 2:
        return grey_table[pixels]
    h, w = pixels.shape[:2]
    out = np.empty((h, w), dtype=np.float32)

    def work(y0: int, y1: int) -> None:
        band = pixels[y0:y1]
        if band.dtype == np.uint8 and color_space == "lab":
            y = _CHANNEL_LUMINANCE[0][band[..., 0]]
            y += _CHANNEL_LUMINANCE[1][band[..., 1]]
            y += _CHANNEL_LUMINANCE[2][band[..., 2]]
            out[y0:y1] = lightness_from_luminance(y)
        elif color_space == "lab":
            out[y0:y1] = rgb_to_lab(pixels_to_rgb(band))[..., 0]
        else:
            out[y0:y1] = pixels_to_rgb(band) @ RGB_TO_YUV_T[:, 0]

    _for_bands(h, w, work)
    return out


def _is_grey(rgb: UInt8Array) -> bool:
    """True when R == G == B everywhere (a grey photo saved as RGB)."""
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1])
        and np.array_equal(rgb[..., 1], rgb[..., 2])
    )


def _upsample_weights(
    n_in: int, n_out: int
) -> tuple[np.ndarray, np.ndarray, FloatArray]:
    """Source indices and weights of a bilinear resize with half-pixel centres.

    The same sampling as `tf.image.resize(method="bilinear")`: output i reads
    (1 - t) * in[i0] + t * in[i1] at position (i + 0.5) * n_in / n_out - 0.5.
    """
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0).astype(np.float32)


def _compose_luma(
    y: FloatArray,
    chroma_small: FloatArray,
    alpha: np.ndarray | None,
    color_space: str,
) -> Image.Image:
    """Join a full-resolution luma (H, W) with chroma (h, w, 2) upsampled to it.

    y: float32 (H, W), L in [0, 100] or YUV's Y in [0, 1]. chroma_small: ab in CIE
    units or U, V. alpha: uint8 (H, W) or None. Returns RGB (or RGBA) uint8 PIL image.
    Works band by band on all cores, so no full-size float image is ever allocated.
    """
    h, w = y.shape
    small = np.asarray(chroma_small, dtype=np.float32)
    c0, c1, ct = _upsample_weights(small.shape[1], w)
    # the width pass runs on the small image: planes (2, h_small, W), contiguous
    planes = np.moveaxis(
        small[:, c0] + (small[:, c1] - small[:, c0]) * ct[:, None], -1, 0
    )
    planes = np.ascontiguousarray(planes)
    r0, r1, rt = _upsample_weights(small.shape[0], h)
    out = np.empty((h, w, 3 if alpha is None else 4), dtype=np.uint8)
    if alpha is not None:
        out[..., 3] = alpha

    def work(y0: int, y1: int) -> None:
        # the height pass, one band of output rows at a time
        above, below, t = r0[y0:y1], r1[y0:y1], rt[y0:y1, None]
        u = planes[0][above] + (planes[0][below] - planes[0][above]) * t
        v = planes[1][above] + (planes[1][below] - planes[1][above]) * t
        if color_space == "yuv":
            yuv = np.stack([y[y0:y1], u, v], axis=-1)
            out[y0:y1, :, :3] = np.rint(yuv_to_rgb(yuv) * 255.0)
        else:
            lab_to_rgb8(y[y0:y1], u, v, out[y0:y1])

    _for_bands(h, w, work)
    return Image.fromarray(out)


def compose(
    lab: FloatArray,
    ab_small: FloatArray,
    alpha: np.ndarray | None = None,
    color_space: str = "lab",
) -> Image.Image:
    """Join full-resolution lightness with upsampled chroma (docs/design.md 1.7).

    lab: float32 (H, W, 3) of the input in `color_space` (only channel 0, L or Y, is
    used); ab_small: float32 (h, w, 2) chroma (ab in CIE units, or U, V);
    alpha: uint8 (H, W) or None.
    Returns an RGB (or RGBA) uint8 PIL image of size (W, H).
    """
    return _compose_luma(
        np.asarray(lab, dtype=np.float32)[..., 0], ab_small, alpha, color_space
    )

"""The colorization web page: one photo, all models side by side, or many photos.

    from demo import build_demo, launch_options
    build_demo().launch(**launch_options())       # what `python app.py` does

Handlers come first as plain functions (tested without a browser and raising `gr.Error`
with one-line messages), then `build_demo`, which loads the models once for all
requests, assembles the tabs (each built and wired by its module in `demo/tabs/`) and
queues them. Nothing runs at import time, and nothing
is fetched from the internet: analytics are off, there are no share links, the fonts are
Gradio's bundled ones and the example photos come from scikit-image's installed data.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os
import shutil
import stat
import tempfile
import time
import weakref
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image

from core.colorizer import Colorizer
from core.colorspace import gray_level, rgb_to_lab
from core.colourcheck import is_color_photo
from core.examples import write_examples
from core.imageio import encode_png, load_pixels
from core.metrics import ab_error_cmf, auc, colorfulness, psnr
from core.models import ModelSpec, get_spec, list_models
from core.quantize import ANNEALED_T
from core.types import FloatArray, UInt8Array
from core.weights import WEIGHTS_DIR, MissingWeightsError, read_manifest
from demo.hint_ui import CSS as HINT_CSS
from demo.limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_TIME_LIMIT_S,
)
from demo.tabs.batch import batch_tab, wire_batch_tab
from demo.tabs.context import PageContext
from demo.tabs.photo import photo_tab, wire_photo_tab
from demo.tabs.settings import model_info
from demo.video_tab import video_tab

__all__ = [
    "DISPLAY_SIDE",
    "REFUSED_UPLOAD",
    "SCORE_SIDE",
    "BatchResult",
    "Deadline",
    "PhotoResult",
    "Scores",
    "TabRenderer",
    "accept_upload",
    "accepted",
    "build_demo",
    "colorize_files",
    "colorize_photo",
    "compare_models",
    "display_copy",
    "display_pixels",
    "is_color_photo",
    "is_sampler",
    "launch_options",
    "load_colorizers",
    "pick_colorizer",
    "read_photo",
    "releasing_memory",
    "result_dir",
    "save_png",
    "score",
    "scores_markdown",
    "upload_roots",
    "visible_controls",
]

SIZE_MIN, SIZE_MAX, SIZE_STEP = 128, 1024, 32  # render sizes offered (longer side)
MAX_ALTERNATIVES = 8
MAX_BATCH_FILES = 50
PREVIEW_SIDE = 512  # batch previews are thumbnails; the zip holds full resolution
# the page shows photos at most this many pixels a side; the download keeps full
# resolution (a 40 MP photo would be 120 MB per view otherwise)
DISPLAY_SIDE = 2048
# scores (PSNR, AuC, colourfulness) are measured on copies of at most this many
# pixels a side: skimage's Lab conversion works in float64, 0.5 GB at 2048 x 1365
SCORE_SIDE = 1024
# the one answer to every file path that is not a file Gradio stored for an upload:
# the same words whether the path exists, is a folder or leaves the upload folder
REFUSED_UPLOAD = (
    "This file is not an upload of this page (or it has expired); "
    "please upload it again."
)
RESULT_MAX_AGE_S = 3600.0  # results on disk are kept this long for downloads

# The result slider always shows the whole photo. Gradio's ImageSlider (6.31, with no
# option to turn it off) zooms both images on the mouse wheel, anchored at the pointer
# (and cancels the page's scrolling), so scrolling the page with the pointer over the
# result left the photo zoomed, its left edge cut off. SLIDER_JS keeps wheel events
# from reaching the slider (the page scrolls instead); the CSS rule keeps the photo
# fitted whatever zoom the component computes (a pinch on a touch screen). The
# fullscreen button is the way to see detail.
SLIDER_JS = """() => {
    document.addEventListener("wheel", (event) => {
        if (event.target instanceof Element && event.target.closest("#result-slider")) {
            event.stopPropagation();
        }
    }, { capture: true });
}"""
CSS = """
.gradio-container { max-width: 1320px !important; margin: 0 auto !important; }
#app-header { padding: 0.4rem 0 0.2rem; }
#app-header h1 { font-size: 1.9rem; margin: 0 0 0.3rem; }
#app-header p { margin: 0; color: var(--body-text-color-subdued); }
#scores table { width: 100%; font-size: 0.9rem; }
#scores th, #scores td { padding: 0.3rem 0.5rem; }
#app-footer p, .credits p {
    color: var(--body-text-color-subdued); font-size: 0.8rem; margin: 0;
}
#result-slider img { transform: none !important; object-fit: contain !important; }
"""

TabRenderer = Callable[[], None]  # adds a tab's components and events when called


# ---------------------------------------------------------------- handlers


@dataclass(frozen=True)
class Scores:
    """How close a colorization is to the colour original (docs/design.md 5)."""

    psnr: float  # dB, capped at 100
    auc: float  # area under the ab-error CMF, 0..150, in percent
    colorfulness: float  # Hasler-Suesstrunk, signed form, of the result
    colorfulness_original: float


@dataclass(frozen=True)
class PhotoResult:
    """One colorized upload: what the page shows and what it offers for download."""

    gray: Image.Image  # the lightness the models see, as a grey image, display size
    color: Image.Image  # the (first) colorization, full size, RGB or RGBA
    preview: Image.Image  # `color` at display size (`color` itself when small)
    png: Path  # `color` as a PNG file
    alternatives: list[Image.Image]  # each sample of a sampling model (display size)
    original: Image.Image | None  # the upload (display size) when it was in colour
    scores: Scores | None  # set with `original`, on copies of <= SCORE_SIDE px


@dataclass(frozen=True)
class BatchResult:
    """Several colorized files: a zip of full-size PNGs, previews and a report."""

    zip: Path
    previews: list[tuple[Image.Image, str]]  # thumbnail, file name
    report: str  # Markdown: how many worked, and why the others failed
    done: int
    failed: int


def is_sampler(spec: ModelSpec) -> bool:
    """True for a model that draws random colourings (the paper's cGAN).

    Such a model's spec sets `samples = True` and its Colorizer's `colorize` takes a
    `seed`; the page then offers a number of alternatives and shows them in a gallery.
    """
    return bool(getattr(spec, "samples", False))


def visible_controls(spec: ModelSpec) -> tuple[bool, bool]:
    """(temperature shown, number of alternatives shown) for a model."""
    return spec.output == "ab_bins", is_sampler(spec)


def _short_name(path: Path) -> str:
    """The file name without Gradio's upload folder."""
    return path.name or str(path)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@dataclass
class Deadline:
    """The time one request may take, checked between its steps.

    A step under way (decoding, the network, writing a PNG) finishes; the next check
    raises gr.Error with `message`. seconds: None for no limit.
    """

    seconds: float | None
    start: float = field(default_factory=time.monotonic)

    @property
    def expired(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.start > self.seconds

    @property
    def message(self) -> str:
        return (
            f"This request took longer than {self.seconds:g} s, the limit per "
            "request on this server, and was stopped; try a smaller photo, a lower "
            "render size or fewer photos at once."
        )

    def check(self) -> None:
        """Raise gr.Error when the time is up."""
        if self.expired:
            raise gr.Error(self.message)


def upload_roots(*folders: str | Path) -> list[Path]:
    """Gradio's upload cache folders, real paths (symbolic links resolved)."""
    return [Path(os.path.realpath(folder)) for folder in folders]


def accept_upload(payload: Any, roots: Sequence[Path]) -> Path | None:
    """The real path of a file that Gradio stored for an upload, or gr.Error.

    payload: an unprocessed file input: Gradio's FileData as a dict (its "path"), a
    path string, or None / "" when nothing was uploaded (returns None).
    roots: the upload cache (`upload_roots`). The path is resolved, `..` and every
    symbolic link included; anything that is not a regular file inside a root is
    refused with REFUSED_UPLOAD, the same words whether it exists or not.
    """
    raw = payload.get("path") if isinstance(payload, dict) else payload
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str | os.PathLike):
        raise gr.Error(REFUSED_UPLOAD)
    try:
        real = Path(os.path.realpath(raw, strict=True))
        inside = any(real.is_relative_to(root) and real != root for root in roots)
        if inside and stat.S_ISREG(real.stat().st_mode):
            return real
    except (OSError, ValueError):  # missing, a loop, a NUL byte in the name
        pass
    raise gr.Error(REFUSED_UPLOAD)


def accepted(path: Path | None) -> str | None:
    return None if path is None else str(path)


def read_photo(
    path: str | Path | None, *, max_pixels: int, max_bytes: int
) -> tuple[np.ndarray, UInt8Array | None]:
    """Load an uploaded file, or raise gr.Error with a one-line message for users.

    Returns `core.imageio.load_pixels`' form, so an 8-bit photo is never turned into
    a full-size float copy: (pixels, alpha). pixels: uint8 (H, W) or (H, W, 3) in
    [0, 255] for 8-bit files, else float32 (H, W) or (H, W, 3) in [0, 1]; alpha: uint8
    (H, W) or None. NaN or infinite values are refused.
    """
    if path is None or str(path) == "":
        raise gr.Error("Upload a photo first, or pick one of the examples.")
    path = Path(path)
    name = _short_name(path)
    try:
        n_bytes = path.stat().st_size
    except OSError as err:
        raise gr.Error(f"{name}: the upload did not arrive; please try again") from err
    if n_bytes == 0:
        raise gr.Error(f"{name}: the file is empty")
    if n_bytes > max_bytes:
        raise gr.Error(
            f"{name}: {n_bytes / 1e6:.1f} MB is over the limit of "
            f"{max_bytes / 1e6:g} MB per file"
        )
    try:
        pixels, alpha = load_pixels(path, max_pixels)
    except ValueError as err:  # ImageLoadError, and any other refusal of the input
        # the message starts with the path in Gradio's upload folder: show the name only
        raise gr.Error(_one_line(str(err).replace(str(path), name))) from err
    # the sum of values in [0, 1] is finite unless one value is not: no full-size mask
    if pixels.dtype != np.uint8 and not math.isfinite(pixels.sum(dtype=np.float64)):
        raise gr.Error(f"{name}: the image holds NaN or infinite values")
    return pixels, alpha


def _float_rgb(pixels: np.ndarray) -> FloatArray:
    """Pixels of `load_pixels` (any size) as float32 RGB (H, W, 3) in [0, 1]."""
    rgb = np.asarray(pixels)
    rgb = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    return np.asarray(rgb[..., :3], dtype=np.float32)


def _display_size(size: tuple[int, int], side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """(w, h) scaled so that the longer side is at most `side` (never enlarged)."""
    scale = min(1.0, side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def display_copy(image: Image.Image, side: int = DISPLAY_SIDE) -> Image.Image:
    """The image itself when its longer side is at most `side`, else a smaller copy."""
    size = _display_size(image.size, side)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def display_pixels(
    pixels: np.ndarray, alpha: UInt8Array | None, side: int = DISPLAY_SIDE
) -> tuple[FloatArray, UInt8Array | None]:
    """A photo at display size: its longer side at most `side` pixels.

    pixels, alpha: `read_photo`'s output, any size. Returns (rgb float32 (h, w, 3) in
    [0, 1], alpha uint8 (h, w) or None); the photo's own values when it is small.
    """
    h, w = pixels.shape[:2]
    size = _display_size((w, h), side)
    if size == (w, h):
        return _float_rgb(pixels), alpha

    def shrink(channel: np.ndarray) -> np.ndarray:
        mode = "L" if channel.dtype == np.uint8 else "F"
        im = Image.fromarray(np.ascontiguousarray(channel), mode=mode)
        return np.asarray(im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))

    if pixels.dtype == np.uint8:
        mode = "L" if pixels.ndim == 2 else "RGB"
        im = Image.fromarray(pixels, mode=mode)
        small = np.asarray(im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    elif pixels.ndim == 2:
        small = shrink(pixels)
    else:
        small = np.dstack([shrink(pixels[..., c]) for c in range(3)])
    return _float_rgb(small), None if alpha is None else shrink(alpha)


def _check_settings(
    size: int, saturation: float, temperature: float, alternatives: int
) -> None:
    if not SIZE_MIN <= size <= SIZE_MAX:
        raise gr.Error(f"Render size must be between {SIZE_MIN} and {SIZE_MAX}.")
    if not 0.0 <= saturation <= 4.0:
        raise gr.Error("Saturation must be between 0 and 4.")
    if not 0.0 <= temperature <= 1.0:
        raise gr.Error("Temperature must be between 0 and 1.")
    if not 1 <= alternatives <= MAX_ALTERNATIVES:
        raise gr.Error(f"Alternatives must be between 1 and {MAX_ALTERNATIVES}.")


def pick_colorizer(colorizers: Mapping[str, Colorizer], name: str | None) -> Colorizer:
    if name not in colorizers:
        raise gr.Error(
            f"Unknown model {name!r}; choose one of {', '.join(colorizers)}."
        )
    return colorizers[name]


def _model_input(pixels: np.ndarray, alpha: UInt8Array | None) -> np.ndarray:
    """The Colorizer's array input: the pixels, with alpha as a last channel if any.

    uint8 stays uint8 (H, W[, 1|3] + alpha), float stays float32 in [0, 1].
    """
    if alpha is None:
        return pixels
    if pixels.dtype == np.uint8:
        return np.dstack([pixels, alpha])
    return np.dstack([pixels, alpha.astype(np.float32) / 255.0])


def _colorize(
    colorizer: Colorizer,
    image: np.ndarray,
    *,
    name: str,
    size: int,
    saturation: float,
    temperature: float,
    seeds: Sequence[int] = (0,),
    deadline: Deadline | None = None,
) -> list[Image.Image]:
    """One colorization, or one per seed for a sampling model (full size).

    image: `_model_input`'s array. name: the file name for messages. Raises gr.Error
    for an input the Colorizer refuses, or when the deadline passes between seeds.
    """
    options: dict[str, Any] = {"temperature": temperature, "saturation": saturation}
    seeds = seeds if is_sampler(colorizer.spec) else (None,)
    results = []
    for seed in seeds:
        if deadline is not None:
            deadline.check()
        extra = {} if seed is None else {"seed": seed}
        try:
            results.append(colorizer.colorize(image, size, **options, **extra))
        except ValueError as err:  # ImageLoadError: NaN, a shape it cannot use
            raise gr.Error(f"{name}: {_one_line(str(err))}") from err
    return results


def _gray_image(rgb: FloatArray, alpha: UInt8Array | None) -> Image.Image:
    """The lightness as the sRGB grey g(L), alpha kept.

    rgb: float32 (h, w, 3) in [0, 1] (a display-size copy); alpha: uint8 (h, w).
    """
    gray = gray_level(rgb_to_lab(rgb)[..., 0])
    gray8 = np.round(gray * 255.0).astype(np.uint8)
    if alpha is not None:
        return Image.fromarray(np.dstack([gray8, alpha]), mode="LA")
    return Image.fromarray(gray8, mode="L")


def _to_uint8(rgb: FloatArray) -> UInt8Array:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def score(original: UInt8Array, result: Image.Image) -> Scores:
    """Compare a colorization with its colour original (uint8 (H, W, 3)).

    The page passes copies of both of at most SCORE_SIDE pixels a side
    (`display_copy`), so the figures of a large photo are those of a smaller copy.
    """
    pred = np.asarray(result.convert("RGB"))
    return Scores(
        psnr=psnr(original, pred),
        auc=100.0 * auc(ab_error_cmf(original, pred)),
        colorfulness=colorfulness(pred),
        colorfulness_original=colorfulness(original),
    )


def scores_markdown(scores: Scores) -> str:
    """The evaluation figures as a small Markdown table."""
    return (
        "| | PSNR | AuC | Colorfulness |\n"
        "|---|---:|---:|---:|\n"
        f"| Colorized | {scores.psnr:.2f} dB | {scores.auc:.1f} % "
        f"| {scores.colorfulness:.1f} |\n"
        f"| Original | | | {scores.colorfulness_original:.1f} |\n\n"
        "PSNR and AuC compare the result with your colour original (higher is "
        "closer); AuC is the area under the curve of the share of pixels whose ab "
        "error is within 0 to 150. Colorfulness is Hasler and Suesstrunk's, signed. "
        f"A photo larger than {SCORE_SIDE} pixels is scored on copies of that "
        "size."
    )


def save_png(image: Image.Image, path: Path) -> Path:
    """Write an L, LA, RGB or RGBA image as a PNG (`core.imageio.encode_png`)."""
    path.write_bytes(encode_png(image))
    return path


def result_dir(workdir: Path, now: float) -> Path:
    """A new folder for one request's files; folders older than an hour are removed."""
    results = workdir / "results"
    results.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in results.iterdir():
        try:
            if now - old.stat().st_mtime > RESULT_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # removed meanwhile by another request
            continue
    return Path(tempfile.mkdtemp(dir=results))


def colorize_photo(
    colorizer: Colorizer,
    path: str | Path | None,
    *,
    size: int,
    saturation: float = 1.0,
    temperature: float = ANNEALED_T,
    alternatives: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    out_dir: Path,
    deadline: Deadline | None = None,
) -> PhotoResult:
    """Colorize one uploaded photo at full resolution and write it as a PNG.

    size: longer side the network sees. alternatives: samples drawn by a sampling
    model (ignored by the others). The full-size work is the Colorizer's banded path
    on the decoded 8-bit pixels; the grey view and the colour original are copies
    of at most DISPLAY_SIDE pixels a side, the scores are measured on copies of at
    most SCORE_SIDE. A colour upload is colorized
    from its lightness and scored against itself. Raises gr.Error for unusable files
    and settings, and when `deadline` passes between steps.
    """
    _check_settings(size, saturation, temperature, alternatives)
    pixels, alpha = read_photo(path, max_pixels=max_pixels, max_bytes=max_bytes)
    name = _short_name(Path(str(path)))
    samples = _colorize(
        colorizer,
        _model_input(pixels, alpha),
        name=name,
        size=size,
        saturation=saturation,
        temperature=temperature,
        seeds=range(alternatives),
        deadline=deadline,
    )
    color = is_color_photo(pixels)
    small_rgb, small_alpha = display_pixels(pixels, alpha)
    del pixels, alpha  # the full-size input is no longer needed
    if deadline is not None:
        deadline.check()
    png = save_png(samples[0], out_dir / f"{Path(name).stem}-colorized.png")
    previews = [display_copy(sample) for sample in samples]
    original, scores = None, None
    if color:
        original = Image.fromarray(_to_uint8(small_rgb), mode="RGB")
        scores = score(
            np.asarray(display_copy(original, SCORE_SIDE)),
            display_copy(previews[0], SCORE_SIDE),
        )
    return PhotoResult(
        gray=_gray_image(small_rgb, small_alpha),
        color=samples[0],
        preview=previews[0],
        png=png,
        alternatives=previews if len(previews) > 1 else [],
        original=original,
        scores=scores,
    )


def compare_models(
    colorizers: Mapping[str, Colorizer],
    path: str | Path | None,
    *,
    size: int,
    saturation: float = 1.0,
    temperature: float = ANNEALED_T,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: Deadline | None = None,
) -> list[tuple[Image.Image, str]]:
    """The grey input, then every model's colorization (and the original, if colour).

    Returns (image, caption) pairs for a gallery, each at most DISPLAY_SIDE pixels a
    side (a photo's own size when it is smaller); a sampling model shows its first
    sample, and the PSNR of a colour upload is measured on copies of at most
    SCORE_SIDE pixels a side. Raises
    gr.Error for unusable files and settings, and when `deadline` passes.
    """
    _check_settings(size, saturation, temperature, 1)
    pixels, alpha = read_photo(path, max_pixels=max_pixels, max_bytes=max_bytes)
    name = _short_name(Path(str(path)))
    image = _model_input(pixels, alpha)
    color = is_color_photo(pixels)
    small_rgb, small_alpha = display_pixels(pixels, alpha)
    del pixels, alpha
    original8 = _to_uint8(small_rgb)
    scored8 = np.asarray(display_copy(Image.fromarray(original8), SCORE_SIDE))
    shown = [(_gray_image(small_rgb, small_alpha), "Grey input")]
    for model, colorizer in colorizers.items():
        result = _colorize(
            colorizer,
            image,
            name=name,
            size=size,
            saturation=saturation,
            temperature=temperature,
            deadline=deadline,
        )[0]
        result = display_copy(result)
        caption = model
        if color:
            pred = np.asarray(display_copy(result, SCORE_SIDE).convert("RGB"))
            caption += f" ({psnr(scored8, pred):.1f} dB)"
        shown.append((result, caption))
    if color:
        shown.append((Image.fromarray(original8, mode="RGB"), "Original"))
    return shown


def _unique_png_name(stem: str, taken: set[str]) -> str:
    name, n = f"{stem}.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.png"
    taken.add(name)
    return name


def colorize_files(
    colorizer: Colorizer,
    paths: Sequence[str | Path] | None,
    *,
    size: int,
    saturation: float = 1.0,
    temperature: float = ANNEALED_T,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    out_dir: Path,
    on_progress: Callable[[int, int], None] | None = None,
    deadline: Deadline | None = None,
) -> BatchResult:
    """Colorize several files into one zip of full-size PNGs (`<stem>.png` each).

    A file that cannot be colorized is listed in the report and the others go on.
    When `deadline` passes, the photos done so far are kept and the report says where
    it stopped. gr.Error when there is nothing to do or nothing worked.
    """
    _check_settings(size, saturation, temperature, 1)
    if not paths:
        raise gr.Error("Add some photos first.")
    if len(paths) > MAX_BATCH_FILES:
        raise gr.Error(
            f"{len(paths)} files is more than {MAX_BATCH_FILES} at once; "
            "split them into smaller batches."
        )
    zip_path = out_dir / "colorized-photos.zip"
    previews: list[tuple[Image.Image, str]] = []
    errors: list[str] = []
    taken: set[str] = set()
    stopped = False
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, path in enumerate(paths):
            if deadline is not None and deadline.expired:
                stopped = True
                break
            if on_progress is not None:
                on_progress(i, len(paths))
            try:
                pixels, alpha = read_photo(
                    path, max_pixels=max_pixels, max_bytes=max_bytes
                )
                result = _colorize(
                    colorizer,
                    _model_input(pixels, alpha),
                    name=_short_name(Path(str(path))),
                    size=size,
                    saturation=saturation,
                    temperature=temperature,
                )[0]
            except gr.Error as err:
                errors.append(err.message)
                continue
            del pixels, alpha
            name = _unique_png_name(Path(str(path)).stem, taken)
            archive.writestr(name, encode_png(result))
            previews.append((display_copy(result, PREVIEW_SIDE), name))
    if not previews:
        zip_path.unlink()
        if stopped:
            raise gr.Error(deadline.message if deadline is not None else "")
        raise gr.Error(
            f"None of the {len(paths)} files could be colorized: {errors[0]}"
        )
    report = f"**{len(previews)} of {len(paths)} photos colorized.**"
    if stopped and deadline is not None:
        report += f" {deadline.message}"
    if errors:
        report += " Could not colorize:\n\n" + "\n".join(f"- {e}" for e in errors)
    return BatchResult(zip_path, previews, report, len(previews), len(errors))


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on another C library."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def releasing_memory(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a request handler so that freed memory goes back to the system after it.

    Gradio runs handlers in a pool of threads and the Colorizer works in bands on
    more threads; glibc keeps freed memory in each thread's arena, so a server that
    decoded a 40 MP photo in one thread and the next in another would hold both
    (measured: 1.6, 1.7 then 2.1 GB high-water over three requests). Trimming
    after each request, once the handler's frame and its full-size arrays are gone,
    keeps every request at the same peak.
    """

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            trim = _malloc_trim()
            if trim is not None:
                trim(0)

    return wrapped


def load_colorizers(
    weights: Mapping[str, str | Path] | None = None,
) -> dict[str, Colorizer]:
    """Every model with shipped weights, plus models given explicit weights files.

    weights: model name -> weights file (e.g. a training run's best.weights.h5); it
    replaces the shipped file of that model. Returns name -> Colorizer, in
    `list_models()` order (default first). Raises UnknownModelError,
    MissingWeightsError or WeightsChecksumError with a message that says what to do.
    """
    weights = dict(weights or {})
    for name, file in weights.items():
        get_spec(name)  # UnknownModelError lists the known names
        if not Path(file).is_file():
            raise MissingWeightsError(
                f"weights file {file} for model {name!r} not found"
            )
    manifest = read_manifest()
    shipped = {
        name
        for name, entry in manifest.items()
        if (WEIGHTS_DIR / entry.get("file", "")).is_file()
    }
    names = [name for name in list_models() if name in shipped or name in weights]
    if not names:
        raise MissingWeightsError(
            f"no model has shipped weights in {WEIGHTS_DIR} yet; install one with "
            "`python -m training.export` (README, 'Training the default model "
            "again') or pass a training run's weights, e.g. "
            "--weights default=runs/default/best.weights.h5"
        )
    return {name: Colorizer.load(name, weights.get(name)) for name in names}


# ---------------------------------------------------------------- page


def _theme() -> gr.themes.Base:
    # the default theme's fonts ship with Gradio (LocalFont): nothing is fetched
    return gr.themes.Default(
        primary_hue="orange", secondary_hue="amber", neutral_hue="stone"
    )


def launch_options(*, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Keyword arguments for `gr.Blocks.launch`: offline, look, upload size limit."""
    return {
        "share": False,
        "theme": _theme(),
        "css": CSS + HINT_CSS,
        "js": SLIDER_JS,
        "max_file_size": max_bytes,  # refused while uploading, before any decoding
        "footer_links": ["api", "settings"],
        "ssr_mode": False,
        "pwa": False,
        "mcp_server": False,
        "enable_monitoring": False,
    }


def build_demo(
    colorizers: Mapping[str, Colorizer] | None = None,
    *,
    weights: Mapping[str, str | Path] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    concurrency_limit: int = DEFAULT_CONCURRENCY,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S,
    extra_tabs: Sequence[tuple[str, TabRenderer]] = (),
) -> gr.Blocks:
    """The app's page, queued, with the models loaded once and shared by all requests.

    colorizers: name -> Colorizer, first shown first; None loads every model with
        shipped weights (default first) plus those in `weights` (`load_colorizers`).
    max_pixels, max_bytes: largest accepted photo; pass the same max_bytes to
        `launch_options` so that bigger uploads are refused while they arrive.
    concurrency_limit: photos colorized at once; others wait in a queue of
        `queue_size` requests (2 CPU cores are busiest with one at a time).
    time_limit_s: seconds one request may take (checked between its steps); a
        request past it stops with a message that says so. None: no limit.
    extra_tabs: (title, render) pairs; each `render()` adds its components and
        events inside a tab of its own after the colorization tabs (the survey).

    The tabs are built and wired by `demo.tabs` (one module each); this function
    assembles them: header, tabs, footer, then each tab's events.
    """
    if colorizers is None:
        colorizers = load_colorizers(weights)
    elif weights:
        raise ValueError("pass either colorizers or weights, not both")
    if not colorizers:
        raise ValueError("build_demo needs at least one colorizer")
    workdir = Path(tempfile.mkdtemp(prefix="colorize-demo-"))  # mode 0700
    examples = [
        (str(path), caption) for path, caption in write_examples(workdir / "examples")
    ]
    ctx = PageContext(
        colorizers=dict(colorizers),
        workdir=workdir,
        # where Gradio stores uploads: the server's folder (read when it starts) and
        # the page's cache (examples are copied there); both are GRADIO_TEMP_DIR or
        # <temp>/gradio
        roots=lambda: upload_roots(get_upload_folder(), demo.GRADIO_CACHE),
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        concurrency_limit=concurrency_limit,
        time_limit_s=time_limit_s,
    )
    with gr.Blocks(
        title="Colorize black-and-white photos",
        analytics_enabled=False,
        delete_cache=(3600, 3600),
    ) as demo:
        _header()
        with gr.Tabs():
            with gr.Tab("Colorize a photo", id="photo"):
                photo = photo_tab(ctx, examples)
            with gr.Tab("Colorize many photos", id="batch"):
                batch = batch_tab(ctx)
            video_tab(
                ctx.colorizers,
                upload_path=ctx.upload,
                result_dir=ctx.result_dir,
                time_limit_s=ctx.time_limit_s,
                concurrency_limit=ctx.concurrency_limit,
            )
            for title, render in extra_tabs:
                with gr.Tab(title):
                    render()
        _footer(ctx)
        wire_photo_tab(photo, ctx)
        wire_batch_tab(batch, ctx)
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency_limit)
    # the folder of examples and results goes when the page object does (or at exit)
    weakref.finalize(demo, shutil.rmtree, workdir, ignore_errors=True)
    return demo


def _header() -> None:
    gr.Markdown(
        "# Colorize black-and-white photos\n"
        "Bring old photos to colour. Everything runs on this computer: your photos "
        "are not sent anywhere.",
        elem_id="app-header",
    )


def _footer(ctx: PageContext) -> None:
    gr.Markdown(
        "Models: "
        + "; ".join(f"{n} ({model_info(c)})" for n, c in ctx.colorizers.items())
        + f". Photos up to {ctx.max_pixels / 1e6:g} megapixels and "
        f"{ctx.max_bytes / 1e6:g} MB; results keep the photo's full resolution.",
        elem_id="app-footer",
    )

"""Colorize photos in batch: files, folders and globs in, same-size PNGs out.

    python -m core.colorize photos/ scans/*.tif --out colorized [--model default]
    python -m core.colorize photos/ --out variants --model cgan --samples 4 --seed 10
    python -m core.colorize photo.jpg --out colorized --hints h.json
    python -m core.colorize --examples --out colorized
    python -m core.colorize --list-models
    python -m core.colorize clip.mp4 --out colorized     # video: colorized/clip.mp4

Each input `photo.jpg` becomes `<--out>/photo.png`, the same size as the input; with
`--samples K` (sampling models such as cgan) it becomes K files `photo-s<seed>.png`,
one per seed `--seed`, `--seed`+1, ... A file that cannot be colorized gets one line
`error: <path>: <reason>` on stderr and the batch goes on; the last line on stdout is
`N colorized, M failed`, counting output files. A model with hint inputs (default)
takes colour hints from `--hints FILE`, or from `<stem>.hints.json` beside each photo.
Video clips (VIDEO_SUFFIXES) are colorized with stable colours by `core.video`.
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import os
import re
import sys
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from core.atomic import atomic_write_bytes, remove_stale_temps
from core.cli import run_main
from core.colorizer import MAX_SIZE, Colorizer, Hint, HintError
from core.config import add_dataclass_args, dataclass_from_args
from core.examples import write_examples
from core.hintfile import HintFileError, read_hints, sidecar_path
from core.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageLoadError,
    ImageTooLargeError,
    encode_png,
    images_in_folder,
)
from core.models import UnknownModelError, get_spec, list_models
from core.quantize import ANNEALED_T
from core.video import (
    VIDEO_SUFFIXES,
    VideoLimits,
    colorize_video_file,
    is_video,
    output_name,
)
from core.weights import (
    WEIGHTS_DIR,
    MissingWeightsError,
    WeightsChecksumError,
    read_manifest,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "BatchPlan",
    "ColorizeConfig",
    "Job",
    "colorize_file",
    "find_images",
    "main",
    "plan_batch",
    "run",
]

log = logging.getLogger(__name__)

WRITE_AHEAD = 2  # colorized images that may wait for the writer thread

EPILOG = f"""\
inputs:
  Each INPUT is a file, a folder or a glob (quote it to let this program expand it;
  `**` matches any depth). Folders are searched recursively for image files
  ({" ".join(IMAGE_SUFFIXES)}, any case), skipping hidden files
  and folders and the --out folder itself.
  A file given by name (or matched by a glob) is tried whatever its suffix. An INPUT
  that matches nothing is an error. Files found twice are colorized once. Symbolic
  links to folders are not descended into by folder searches or `**`, so link loops
  end. Of a multi-frame file (TIFF pages, GIF or PNG animation) only the first frame
  is colorized, with a line `warning: <path>: N frames, only the first is colorized`.

outputs:
  INPUT `a/photo.jpg` is written to `OUT/photo.png` (RGB, or RGBA when the input has
  alpha), the same size as the input, atomically (a partly written PNG never appears).
  Inputs are taken in the order given, folders and globs in sorted order. When two
  inputs share a stem, the first one is written and the later ones fail (nothing is
  overwritten silently): rename them or colorize them into separate folders. An output
  that would replace an input file is refused, even with --overwrite. An output that
  already exists is left untouched and counted as failed unless --overwrite is given.
  Temporary files `.NAME.png.<pid>.<random>.tmp` that an earlier run left in OUT
  when it was killed while writing are removed (writer gone for a minute, or a day
  old).

sampling models:
  A sampling model (cgan) draws one colorization per noise seed; the same --seed gives
  the same PNG. With --samples K > 1 each input `a/photo.jpg` gives K files
  `OUT/photo-s<S>.png` for S = SEED, SEED+1, ..., SEED+K-1, each checked for clashes
  as above and counted on its own in `N colorized, M failed`. Other models ignore
  --seed and refuse --samples above 1.

hints:
  A model with hint inputs (default) can be told the colour of some points: a JSON
  file, a list of {{"x": int, "y": int, "color": "#rrggbb"}} with x and y in pixels of
  the photo as displayed (after EXIF orientation), e.g.
    [{{"x": 120, "y": 45, "color": "#2050e0"}}]
  --hints FILE applies to every INPUT; without it, a file `<stem>.hints.json` beside
  a photo (`a/photo.hints.json` for `a/photo.jpg`) is used for that photo, and a PNG
  the web app saved carries its hints too (`--hints colorized.png`). A hints file that
  is not JSON, has wrong fields or a point outside the photo gives a one-line `error:`
  naming the file and the hint; that photo fails and the batch goes on. A model
  without hint inputs refuses --hints, and ignores `<stem>.hints.json` files with a
  `warning:`.

videos:
  Files ending in {" ".join(VIDEO_SUFFIXES)} (any case) are video clips; folders are
  searched for them too. `clip.mp4` becomes `OUT/clip.mp4` (.m4v, .mov and .mkv keep
  their suffix, .avi and .webm become .mkv): H.264, the same frame count, frame rate
  and duration, the audio copied, each frame's own lightness at full resolution.
  Colours are carried along the optical flow from frame to frame so that they stay
  put (--per-frame colorizes every frame on its own instead). A progress bar counts
  frames. A clip over --max-seconds, --max-frames or --max-frame-pixels, a corrupt
  one, one without frames or a file that is not a video gets a one-line `error:`.
  Hints (--hints, `<stem>.hints.json`) are points of frame --hint-frame, carried
  along the motion to the earlier and later frames of its scene (other scenes get
  none).

exit status:
  0 every input was colorized; 1 some input failed (unreadable, corrupt, truncated,
  NaN or infinite pixels, over --max-pixels, no match, name clash, existing output);
  2 bad usage (unknown model, --size out of range, --seed below 0, --samples below 1
  or above 1 with a model that does not sample, no INPUT, missing or corrupt
  weights, --hints with a model without hint inputs or a --hints file that cannot
  be read).
"""


@dataclass(frozen=True)
class ColorizeConfig:
    out: str = field(default="", metadata={"help": "output folder (created if needed)"})
    model: str = field(default="default", metadata={"help": "registered model name"})
    weights: str = field(
        default="",
        metadata={
            "help": "weights file to use instead of the shipped one, e.g. a training "
            "run's best.weights.h5"
        },
    )
    size: int | None = field(
        default=None,
        metadata={
            "help": "longer side the network sees, rounded to a multiple of 32 "
            f"(32 to {MAX_SIZE}; default: the model's input size, 256 for 'default'). "
            "The output always has the input's size"
        },
    )
    temperature: float = field(
        default=ANNEALED_T,
        metadata={"help": "annealed-mean temperature for 313-bin models (0 = argmax)"},
    )
    saturation: float = field(
        default=1.0, metadata={"help": "chroma multiplier in [0, 4] (1 = as predicted)"}
    )
    max_pixels: int = field(
        default=DEFAULT_MAX_PIXELS,
        metadata={"help": "refuse larger images, checked before decoding"},
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "noise seed of a sampling model such as cgan (others ignore it)"
        },
    )
    samples: int = field(
        default=1,
        metadata={
            "help": "colorizations per photo with seeds seed, seed+1, ... "
            "(sampling models only)"
        },
    )
    hints: str = field(
        default="",
        metadata={
            "help": "JSON hints file (or a PNG the app saved) for every INPUT; "
            "without it, <stem>.hints.json beside a photo is used (models with hint "
            "inputs only, e.g. default)"
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace outputs that already exist"}
    )
    max_seconds: float = field(
        default=VideoLimits.max_seconds,
        metadata={"help": "videos: refuse clips longer than this (seconds)"},
    )
    max_frames: int = field(
        default=VideoLimits.max_frames,
        metadata={"help": "videos: refuse clips with more frames"},
    )
    max_frame_pixels: int = field(
        default=VideoLimits.max_pixels,
        metadata={"help": "videos: refuse larger frames (width x height)"},
    )
    hint_frame: int = field(
        default=0,
        metadata={"help": "videos: the frame (from 0) whose pixels the hints name"},
    )
    per_frame: bool = field(
        default=False,
        metadata={
            "help": "videos: colorize every frame on its own, without carrying "
            "colours between frames (flickers; for comparison)"
        },
    )
    quiet: bool = field(
        default=False,
        metadata={"help": "no progress bar (it is also off when stderr is not a TTY)"},
    )
    list_models: bool = field(
        default=False,
        metadata={"help": "list the models and whether their weights ship, then exit"},
    )
    examples: bool = field(
        default=False,
        metadata={
            "help": "also colorize the bundled example photos (scikit-image's "
            "public-domain photos, made grey; their grey versions are written to "
            "OUT/grey/)"
        },
    )


@dataclass(frozen=True)
class Job:
    """One input file, the PNG it is written to and the noise seed it is drawn with."""

    source: Path
    target: Path
    seed: int = 0


@dataclass(frozen=True)
class BatchPlan:
    """The files to colorize, and one-line errors for inputs that cannot be."""

    jobs: tuple[Job, ...]
    errors: tuple[str, ...]


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _images_in(folder: Path, skip: Path | None) -> list[Path]:
    """Image files under `folder`, sorted; hidden entries and `skip` left out."""
    root = folder.resolve()
    # the --out folder inside an input folder holds our own outputs, not photos
    if skip is not None and (skip == root or not _is_within(skip, root)):
        skip = None
    return [
        path
        for path in images_in_folder(folder, IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        if skip is None or not _is_within(path.resolve(), skip)
    ]


_MAGIC = re.compile(r"[*?[]")


def _tree(folder: str) -> list[str]:
    """`folder` and every non-hidden path below it, as `**` matches them.

    Symbolic links are listed but never descended into, and no folder is entered
    twice (by device and inode, against bind-mount loops), so a folder with link
    loops is walked once and the walk ends. Iterative: any depth.
    """
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [folder]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            info = os.stat(current or ".")
            if (info.st_dev, info.st_ino) in seen:
                continue
            entries = list(os.scandir(current or "."))
        except OSError:
            continue
        seen.add((info.st_dev, info.st_ino))
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = os.path.join(current, entry.name)
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_folder = False
            if is_folder:
                stack.append(path)
            else:
                found.append(path)
    return found


def _glob(pattern: str) -> list[str]:
    """`glob.glob(pattern, recursive=True)`, except that `**` never follows a loop.

    Python's glob descends into symbolic links to folders under `**`, so a link
    loop (`a/b -> ..`) makes it run until the paths grow too long, for ever in
    practice. Here `**` lists links without descending into them (as bash's globstar
    does) and enters no folder twice. Other components match as in glob: `*`, `?` and
    `[...]` within one name, hidden names only when the component starts with a dot.
    Returns the matching paths, sorted.
    """
    parts = pattern.split("/")
    base = "/" if pattern.startswith("/") else ""
    parts = [part for part in parts if part] + ([""] if pattern.endswith("/") else [])
    found: list[str] = []

    def walk(base: str, rest: list[str]) -> None:
        if not rest:
            found.append(base)
            return
        part, rest = rest[0], rest[1:]
        if part == "":  # a trailing slash: folders only
            if os.path.isdir(base or "."):
                found.append(os.path.join(base, ""))
        elif part == "**":
            for path in _tree(base):
                walk(path, rest)
        elif _MAGIC.search(part):
            try:
                names = os.listdir(base or ".")
            except OSError:
                return
            if not part.startswith("."):
                names = [name for name in names if not name.startswith(".")]
            for name in sorted(fnmatch.filter(names, part)):
                walk(os.path.join(base, name), rest)
        else:
            path = os.path.join(base, part)
            if os.path.lexists(path):
                walk(path, rest)

    walk(base, parts)
    return sorted({path for path in found if path})


def find_images(
    inputs: Sequence[str], skip: Path | None = None
) -> tuple[list[Path], list[str]]:
    """Expand INPUT arguments (files, folders, globs) into image files, in order.

    skip: a folder whose contents are never collected from inside an input folder
    (the output folder). Returns (files without duplicates, one-line errors for the
    inputs that matched nothing).
    """
    skip = skip.resolve() if skip is not None else None
    files: list[Path] = []
    errors: list[str] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = _images_in(path, skip)
            if not found:
                errors.append(f"{item}: folder has no image files")
        else:
            found = []
            for match in _glob(item):
                match_path = Path(match)
                if match_path.is_dir():
                    found.extend(_images_in(match_path, skip))
                elif match_path.is_file():
                    found.append(match_path)
            if not found:
                errors.append(f"{item}: no such file or folder, and no glob match")
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files, errors


def _outputs(source: Path, out_dir: Path, seed: int, samples: int) -> list[Job]:
    """The jobs of one input: `<stem>.png`, or one `<stem>-s<seed>.png` per sample."""
    if is_video(source):
        return [Job(source, out_dir / output_name(source), seed)]
    if samples == 1:
        return [Job(source, out_dir / f"{source.stem}.png", seed)]
    return [
        Job(source, out_dir / f"{source.stem}-s{s}.png", s)
        for s in range(seed, seed + samples)
    ]


def _clash(job: Job, input_keys: set[Path], claimed: dict[Path, Path]) -> str | None:
    """Why `job.target` may not be written (an input, or another input's output)."""
    source, target = job.source, job.target
    key = target.resolve()
    if key == source.resolve():
        return (
            f"{source}: refusing to overwrite the input with its own output; "
            "choose another --out"
        )
    if key in input_keys:
        return (
            f"{source}: its output {target} would overwrite an input file; "
            "choose another --out"
        )
    if key in claimed:
        return (
            f"{source}: its output {target} is already the output of "
            f"{claimed[key]} (same name); rename one of them"
        )
    return None


def plan_batch(
    inputs: Sequence[str], out_dir: Path, *, seed: int = 0, samples: int = 1
) -> BatchPlan:
    """Pair each input image with its outputs in `out_dir`, refusing clashes.

    samples == 1: one job `<stem>.png` drawn with `seed`. samples K > 1: K jobs
    `<stem>-s<S>.png`, S = seed, ..., seed + K - 1, in that order after each other.
    An output that would replace any input file, or that an earlier input already
    claimed (same name), becomes an error instead of a job; the input's other
    outputs are still planned.
    """
    files, errors = find_images(inputs, skip=out_dir)
    input_keys = {path.resolve() for path in files}
    claimed: dict[Path, Path] = {}
    jobs = []
    for source in files:
        for job in _outputs(source, out_dir, seed, samples):
            problem = _clash(job, input_keys, claimed)
            if problem is None:
                claimed[job.target.resolve()] = source
                jobs.append(job)
            else:
                errors.append(problem)
    return BatchPlan(tuple(jobs), tuple(errors))


def _existing_output(job: Job, cfg: ColorizeConfig) -> str | None:
    """The one-line refusal for an output that exists (without --overwrite), or None."""
    if (job.target.exists() or job.target.is_symlink()) and not cfg.overwrite:
        return (
            f"{job.source}: output {job.target} already exists; "
            "pass --overwrite to replace it"
        )
    return None


def _write_png(job: Job, image: Image.Image) -> str | None:
    """Encode `image` as PNG and write it atomically; a one-line message on failure."""
    data = encode_png(image)
    try:
        atomic_write_bytes(job.target, data)
    except OSError as err:
        return f"{job.source}: cannot write {job.target}: {err.strerror or err}"
    log.debug("%s -> %s (%dx%d)", job.source, job.target, *image.size)
    return None


def _one_line(err: ImageLoadError) -> str:
    message = " ".join(str(err).split("\n"))
    if isinstance(err, ImageTooLargeError):
        message += " (--max-pixels)"
    return message


def _job_hints(
    job: Job, cfg: ColorizeConfig, colorizer: Colorizer
) -> tuple[list[Hint], str] | str | None:
    """The hints for one job and the file they came from, a one-line error, or None.

    `--hints` applies to every job; otherwise `<stem>.hints.json` beside the input,
    which a model without hint inputs ignores with a warning.
    """
    source = cfg.hints or None
    if source is None:
        sidecar = sidecar_path(job.source)
        if not sidecar.is_file():
            return None
        if not colorizer.takes_hints:
            log.warning(
                "warning: %s: ignored, model %r has no hint inputs "
                "(use --model default)",
                sidecar,
                colorizer.name,
            )
            return None
        source = str(sidecar)
    try:
        return read_hints(source), source
    except HintFileError as err:
        return f"{job.source}: {err}"


def _colorize_hinted(
    job: Job,
    cfg: ColorizeConfig,
    colorizer: Colorizer,
    hints: list[Hint],
    source: str,
) -> Image.Image | str:
    """Colorize one file with hints from `source`; the image or a one-line error."""
    try:
        return colorizer.colorize(
            job.source,
            cfg.size,
            hints=hints,
            temperature=cfg.temperature,
            saturation=cfg.saturation,
            max_pixels=cfg.max_pixels,
            seed=job.seed,
        )
    except ImageLoadError as err:
        return _one_line(err)
    except HintError as err:
        return f"{job.source}: {source}: {err}"


def _colorize_video(
    job: Job,
    cfg: ColorizeConfig,
    colorizer: Colorizer,
    hinted: tuple[list[Hint], str] | None,
) -> str | None:
    """Colorize one video clip into `job.target`; a one-line error or None."""
    hints, hints_source = hinted if hinted is not None else (None, "")
    return colorize_video_file(
        colorizer,
        job.source,
        job.target,
        size=cfg.size,
        temperature=cfg.temperature,
        saturation=cfg.saturation,
        limits=VideoLimits(cfg.max_seconds, cfg.max_frames, cfg.max_frame_pixels),
        stabilize=not cfg.per_frame,
        hints=hints,
        hints_source=hints_source,
        hint_frame=cfg.hint_frame,
        overwrite=cfg.overwrite,
        quiet=cfg.quiet,
    )


def colorize_file(job: Job, cfg: ColorizeConfig, colorizer: Colorizer) -> str | None:
    """Colorize one file and write its PNG (or video) atomically.

    Hints come from `cfg.hints` or the input's `<stem>.hints.json` (see EPILOG).
    Returns None on success, else a one-line `<path>: <reason>` message.
    """
    refusal = _existing_output(job, cfg)
    if refusal is not None:
        return refusal
    hinted = _job_hints(job, cfg, colorizer)
    if isinstance(hinted, str):
        return hinted
    if is_video(job.source):
        return _colorize_video(job, cfg, colorizer, hinted)
    if hinted is not None:
        result = _colorize_hinted(job, cfg, colorizer, *hinted)
        return result if isinstance(result, str) else _write_png(job, result)
    try:
        image = colorizer.colorize(
            job.source,
            cfg.size,
            temperature=cfg.temperature,
            saturation=cfg.saturation,
            max_pixels=cfg.max_pixels,
            seed=job.seed,
        )
    except ImageLoadError as err:
        return _one_line(err)
    return _write_png(job, image)


def run(plan: BatchPlan, cfg: ColorizeConfig, colorizer: Colorizer) -> tuple[int, int]:
    """Colorize a planned batch, logging one `error: ...` line per failure.

    Three stages overlap, so a folder keeps every core busy: the Colorizer decodes the
    next photos in a background thread while its network runs, and a writer thread
    encodes and writes the previous result. Each job gives the same PNG as
    `colorize_file`. The Colorizer takes one seed per pass, so the jobs run in one pass
    per seed (in order of first appearance), each in input order; errors are logged in
    that order. Existing outputs are all checked before the first pass. Photos with
    hints (`--hints`, `<stem>.hints.json`) are colorized one at a time, in their place.
    Temporary files that an earlier run killed while writing left in the output
    folders are removed first (`core.atomic.remove_stale_temps`). Video clips are
    colorized one at a time in their place, each with a progress bar in frames.
    Returns (colorized, failed) output files; the plan's errors count as failed.
    """
    for folder in sorted({job.target.parent for job in plan.jobs}):
        for path in remove_stale_temps(folder, suffix=".png"):
            log.info("removed %s, left by an interrupted earlier run", path)
    failed = 0
    for message in plan.errors:
        log.error("error: %s", message)
        failed += 1
    done = 0
    progress = tqdm(
        total=len(plan.jobs),
        desc="colorizing",
        unit="image",
        file=sys.stderr,
        disable=cfg.quiet or not sys.stderr.isatty(),
    )
    # per job: a refusal (existing output, bad hints file), or its hints, or None
    passes: dict[int, list[tuple[Job, str | tuple[list[Hint], str] | None]]] = {}
    for job in plan.jobs:
        todo = _existing_output(job, cfg)
        if todo is None:
            todo = _job_hints(job, cfg, colorizer)
        passes.setdefault(job.seed, []).append((job, todo))
    # outcomes in input order: a write in progress, or a one-line error
    queue: deque[Future[str | None] | str] = deque()

    def report(item: Future[str | None] | str) -> None:
        nonlocal done, failed
        message = item.result() if isinstance(item, Future) else item
        if not message:  # None, or "" for a video written
            done += 1
        else:
            log.error("error: %s", message)
            failed += 1
        progress.update(1)

    with ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        for seed, jobs in passes.items():
            # photos with hints are colorized one by one below, the others stream
            images = colorizer.colorize_iter(
                (
                    job.source
                    for job, todo in jobs
                    if todo is None and not is_video(job.source)
                ),
                cfg.size,
                temperature=cfg.temperature,
                saturation=cfg.saturation,
                max_pixels=cfg.max_pixels,
                seed=seed,
            )
            with closing(images):
                for job, todo in jobs:
                    if isinstance(todo, str):
                        queue.append(todo)
                    elif is_video(job.source):
                        queue.append(_colorize_video(job, cfg, colorizer, todo) or "")
                    elif todo is not None:
                        hinted = _colorize_hinted(job, cfg, colorizer, *todo)
                        if isinstance(hinted, str):
                            queue.append(hinted)
                        else:
                            queue.append(writer.submit(_write_png, job, hinted))
                    else:
                        result = next(images)
                        if isinstance(result, ImageLoadError):
                            queue.append(_one_line(result))
                        else:
                            queue.append(writer.submit(_write_png, job, result))
                    # images wait for the writer; a few at most, to bound memory
                    while queue and (
                        len(queue) > WRITE_AHEAD
                        or not isinstance(queue[0], Future)
                        or queue[0].done()
                    ):
                        report(queue.popleft())
        while queue:
            report(queue.popleft())
    progress.close()
    return done, failed


def _describe_models() -> list[str]:
    """One line per registered model: name, shipped-weights state, description."""
    manifest = read_manifest()
    names = list_models()
    width = max(len(name) for name in names)
    lines = []
    for name in names:
        entry = manifest.get(name)
        if entry is None:
            state = "no weights"
        elif (WEIGHTS_DIR / entry["file"]).is_file():
            state = "weights shipped"
        else:
            state = "weights missing"
        lines.append(f"{name:<{width}}  {state:<15}  {get_spec(name).description}")
    return lines


def _usage_error(cfg: ColorizeConfig, inputs: Sequence[str]) -> str | None:
    """The one-line message for invalid options, or None when they are usable."""
    try:
        spec = get_spec(cfg.model)
    except UnknownModelError as err:
        return str(err)
    if not inputs and not cfg.examples:
        return (
            "no INPUT given; pass image files, folders or globs, or --examples "
            "(see --help)"
        )
    if not cfg.out:
        return "--out DIR is required"
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        return f"--out {cfg.out} exists and is not a folder"
    if cfg.size is not None and not spec.size_multiple <= cfg.size <= MAX_SIZE:
        low = spec.size_multiple
        return f"--size must be between {low} and {MAX_SIZE}, got {cfg.size}"
    if cfg.temperature < 0:
        return f"--temperature must be >= 0, got {cfg.temperature}"
    if not 0.0 <= cfg.saturation <= 4.0:
        return f"--saturation must be between 0 and 4, got {cfg.saturation}"
    if cfg.max_pixels < 1:
        return f"--max-pixels must be at least 1, got {cfg.max_pixels}"
    if cfg.seed < 0:
        return f"--seed must be >= 0, got {cfg.seed}"
    if cfg.max_seconds <= 0 or cfg.max_frames < 1 or cfg.max_frame_pixels < 1:
        return (
            "--max-seconds must be above 0, --max-frames and --max-frame-pixels at "
            f"least 1; got {cfg.max_seconds:g}, {cfg.max_frames}, "
            f"{cfg.max_frame_pixels}"
        )
    if cfg.hint_frame < 0:
        return f"--hint-frame must be >= 0, got {cfg.hint_frame}"
    if cfg.samples < 1:
        return f"--samples must be at least 1, got {cfg.samples}"
    if cfg.hints and not spec.hints:
        with_hints = [
            name
            for name in list_models()
            if get_spec(name).hints and get_spec(name).weights  # shipped only
        ]
        return (
            f"--hints needs a model with hint inputs ({', '.join(with_hints)}); "
            f"{cfg.model!r} has none"
        )
    if cfg.hints:
        try:
            read_hints(cfg.hints)
        except HintFileError as err:
            return f"--hints {err}"
    if cfg.samples > 1 and not spec.samples:
        sampling = [name for name in list_models() if get_spec(name).samples]
        return (
            f"--samples {cfg.samples} needs a sampling model "
            f"({', '.join(sampling)}); {cfg.model!r} gives one colorization per photo"
        )
    return None


def _load_colorizer(cfg: ColorizeConfig) -> Colorizer | str:
    """The model with its weights, or a one-line message saying why it cannot load."""
    try:
        return Colorizer.load(cfg.model, cfg.weights or None)
    except (MissingWeightsError, WeightsChecksumError) as err:
        return str(err)
    except (OSError, ValueError) as err:
        # h5py and Keras say OSError/ValueError for a file that is not weights of
        # this model; the first line of their message is the useful part
        reason = str(err).strip().split("\n")[0]
        return (
            f"cannot load weights {cfg.weights or 'shipped'} into model "
            f"{cfg.model!r} ({reason}); pass a best.weights.h5 written by "
            f"`python -m training.train --model {cfg.model}`"
        )


class _CliFormatter(logging.Formatter):
    """Messages as they are, warnings from the library prefixed with `warning: `."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.WARNING and not message.startswith("warning: "):
            message = f"warning: {message}"
        return message


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.colorize",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="image file, folder or glob"
    )
    add_dataclass_args(parser, ColorizeConfig)
    return run_main(parser, argv, _run, level=logging.WARNING, force_logging=True)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(ColorizeConfig, args)
    inputs: list[str] = args.inputs
    logging.getLogger().handlers[0].setFormatter(_CliFormatter())

    if cfg.list_models:
        for line in _describe_models():
            print(line)
        return 0
    problem = _usage_error(cfg, inputs)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if cfg.examples:
        grey = [str(path) for path, _caption in write_examples(Path(cfg.out) / "grey")]
        print(
            f"{len(grey)} example photos in {Path(cfg.out) / 'grey'}", file=sys.stderr
        )
        inputs = [*grey, *inputs]
    plan = plan_batch(inputs, Path(cfg.out), seed=cfg.seed, samples=cfg.samples)
    colorizer = _load_colorizer(cfg)
    if isinstance(colorizer, str):
        print(f"error: {colorizer}", file=sys.stderr)
        return 2
    with logging_redirect_tqdm():
        done, failed = run(plan, cfg, colorizer)
    print(f"{done} colorized, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

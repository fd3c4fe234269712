"""Speed and memory benchmarks: the networks, the Colorizer end to end, the CLI and
training, with every figure the median of several runs in one process.

    python -m benchmarks.run [--quick] [--out runs/benchmarks/benchmark.json]

Measured in one run, so that ratios hold on a noisy, shared machine:

- the peak of this machine: a large float32 (and bfloat16) matrix product in TensorFlow;
- every registered model's throughput at render size 256 (models with a fixed input
  size at their own size), batch 1 and batch 16, each network traced once per shape as
  the Colorizer runs it; its FLOPs (TensorFlow's profiler) and the fraction of the
  float32 peak it reaches; the reference, Zhang et al.'s full-width architecture
  (`vgg16-cls`, width 1.0, untrained weights), and each model's speed-up over it;
- the Colorizer end to end (decode, colorize, encode, atomic write: the CLI's
  `colorize_file`) on a 1-megapixel and a 12-megapixel JPEG, and the peak resident
  memory of a child process that only colorizes the 12-megapixel one;
- the CLI's throughput on a folder of photos of about 1 megapixel, with the CPU cores it
  keeps busy, against colorizing the same files one by one;
- the web app on a 40-megapixel PNG upload: time per colorize request and the
  server's peak resident memory (`benchmarks.web_upload`, the app in a child process);
- video (`benchmarks.video`): a colour clip made grey and colorized with stable colours,
  end-to-end frames per second at render size 256, flicker and PSNR against per-frame
  colorization, and peak memory on a short and a 4x longer clip;
- training throughput of each model at its training resolution (a step built from the
  public losses of training.train), the default also at 128x128, and the throughput of
  the input pipeline alone (training.data.make_dataset).

The test photos are real photographs (BSDS500 test, or scikit-image's samples when the
folder is missing) upscaled into a temporary folder; nothing is written beside the
code. The JSON records the load average, the commit and the command; `python -m
benchmarks.performance_doc` turns the saved JSON files into docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from benchmarks.markdown import check_goals
from benchmarks.video import VideoBenchConfig, run_video
from benchmarks.web_upload import format_web, run_web
from core.atomic import atomic_write_bytes
from core.cli import TIMED_LOG_FORMAT, run_main
from core.colorize import ColorizeConfig, Job, colorize_file, plan_batch, run
from core.colorizer import Colorizer
from core.config import add_dataclass_args, dataclass_from_args
from core.models import create_model, get_spec, list_models
from core.models.registry import ModelSpec
from core.models.unet import automatic_model
from core.weights import read_manifest
from training.data import PipelineConfig, make_dataset
from training.losses import classification_loss, regression_loss

__all__ = [
    "GOALS",
    "BenchConfig",
    "format_table",
    "main",
    "make_photos",
    "run_benchmarks",
    "traced_network",
]

log = logging.getLogger(__name__)

REFERENCE = ("vgg16-cls", {"width": 1.0})  # Zhang et al.'s architecture, full width
RENDER_SIZE = 256  # network side of every model without a fixed input size
BATCHES = (1, 16)
PEAK_DTYPES = (tf.float32, tf.bfloat16)  # the large matrix product measures both
ONE_MP = (1224, 816)  # 3:2, about 1.0 megapixel
TWELVE_MP = (4000, 3000)  # 4:3, 12.0 megapixels
GOAL_TRAIN_SIZE = 128  # the training goal is stated for the default at 128x128
DEFAULT_TRAIN_SIZE = 160  # training.train's default crop side
DEFAULT_TRAIN_BATCH = 16
TRAIN_BUDGET_S = 20.0  # timed training steps stop after this (at least two steps)
# (key, description, target, "min" or "max"); the values are looked up in the results
GOALS: tuple[tuple[str, str, float, str], ...] = (
    ("speedup_batch1", "default vs Zhang architecture at 256, batch 1", 15.0, "min"),
    ("latency_1mp_ms", "1 MP JPEG to PNG, end to end (ms)", 250.0, "max"),
    ("latency_12mp_ms", "12 MP JPEG to PNG, end to end (ms)", 2500.0, "max"),
    ("peak_memory_12mp_mb", "peak resident memory, 12 MP photo (MB)", 2048.0, "max"),
    ("cli_cores_busy", "CPU cores the CLI keeps busy on a folder", 1.5, "min"),
    ("web_40mp_s", "web app, 40 MP PNG upload, per request (s)", 10.0, "max"),
    ("web_40mp_peak_mb", "web server peak memory, 40 MP upload (MB)", 2048.0, "max"),
    ("video_frames_per_s", "video at render 256, end to end (frames/s)", 15.0, "min"),
    ("train_128_images_per_s", "default training at 128x128 (images/s)", 25.0, "min"),
    ("pipeline_over_training", "input pipeline / training throughput", 5.0, "min"),
)


@dataclass(frozen=True)
class BenchConfig:
    quick: bool = field(
        default=False,
        metadata={"help": "fewer repeats and a smaller folder: about a minute"},
    )
    out: str = field(
        default="runs/benchmarks/benchmark.json",
        metadata={"help": "JSON file written with every figure"},
    )
    photos: str = field(
        default="../shared/data/test/bsds500-test",
        metadata={"help": "real photos to upscale into the test JPEGs"},
    )
    data: str = field(
        default="../shared/data/train",
        metadata={"help": "training shards for the input pipeline and training"},
    )
    folder_images: int = field(
        default=50, metadata={"help": "photos in the CLI folder (quick: 8)"}
    )
    levers: bool = field(
        default=True,
        metadata={
            "help": "time each speed lever against its alternative (needs the core of "
            "issue 7; --no-levers measures older code)"
        },
    )
    web: bool = field(
        default=True,
        metadata={
            "help": "measure the web app on a 40 MP upload (benchmarks.web_upload; "
            "a few minutes)"
        },
    )
    video: bool = field(
        default=True,
        metadata={
            "help": "measure video colorization (benchmarks.video: frames/s, flicker, "
            "memory; a few minutes, --quick: a small clip)"
        },
    )
    seed: int = 0


@dataclass(frozen=True)
class _Plan:
    """How much to measure: the full run or --quick."""

    repeats: int  # timed runs per figure (the median is reported)
    batch16_repeats: int
    latency_repeats: int
    latency_12mp_repeats: int
    folder_images: int
    folder_repeats: int
    train_steps: int
    train_warmup: int  # untimed steps (the first traces the step)
    train_models: bool  # every model's training, not only the default's
    pipeline_batches: int
    reference_batch16: bool
    matmul_n: int
    lever_repeats: int
    web_repeats: int  # timed requests on the 40 MP upload (after one untimed)


def _plan(cfg: BenchConfig) -> _Plan:
    if cfg.quick:
        return _Plan(3, 1, 3, 1, 8, 1, 2, 1, False, 4, False, 2048, 1, 1)
    return _Plan(7, 3, 7, 3, cfg.folder_images, 3, 5, 2, True, 20, True, 3072, 5, 3)


# ---------------------------------------------------------------- timing helpers


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median_seconds(
    fn: Callable[[], object], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median and minimum wall time of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = [_timed(fn) for _ in range(repeats)]
    return {"median_s": float(np.median(times)), "min_s": float(min(times))}


def _median_seconds_within(
    fn: Callable[[], object], warmup: int, max_runs: int, budget_s: float
) -> dict[str, float]:
    """Like `_median_seconds`, but stops after `budget_s` seconds (at least 2 runs)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < max_runs and (len(times) < 2 or sum(times) < budget_s):
        times.append(_timed(fn))
    return {"median_s": float(np.median(times)), "min_s": float(min(times))}


def _interleaved(
    fns: dict[str, Callable[[], object]], repeats: int
) -> dict[str, list[float]]:
    """Time each function `repeats` times, round-robin, so all see the same load."""
    for fn in fns.values():
        fn()  # warm-up: first-call costs are not throughput
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn))
    return times


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- the networks


def traced_network(model: keras.Model, spec: ModelSpec, batch: int, side: int):
    """The model traced for one input shape, and a call on fixed random inputs.

    Returns (concrete function, call() -> None). Inputs: normalised luma float32
    (batch, side, side, 1), plus noise (batch, noise_dim) for sampling models, plus
    empty hint maps (batch, side, side, 2) and (batch, side, side, 1) for hint models,
    through `automatic_model` (without the hints' evidence, zero without hints), as
    the Colorizer runs automatic colorization.
    """
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 1, (batch, side, side, 1)).astype(np.float32)]
    if spec.samples:
        inputs.append(rng.uniform(-1, 1, (batch, spec.noise_dim)).astype(np.float32))
    if spec.hints:
        inputs.append(np.zeros((batch, side, side, 2), np.float32))
        inputs.append(np.zeros((batch, side, side, 1), np.float32))
    tensors = [tf.constant(x) for x in inputs]
    net = automatic_model(model)  # as the Colorizer runs it without hints

    def forward(*xs: tf.Tensor) -> tf.Tensor:
        return net(list(xs) if len(xs) > 1 else xs[0], training=False)

    graph = tf.function(forward, autograph=False).get_concrete_function(
        *[tf.TensorSpec(x.shape, tf.float32) for x in inputs]
    )

    def call() -> None:
        graph(*tensors).numpy()

    return graph, call


def _flops(graph: Any) -> float:
    """Floating-point operations of one call (TensorFlow's profiler count)."""
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=graph.graph, options=opts)
    return float(info.total_float_ops)


def _matmul(n: int, dtype: tf.DType) -> Callable[[], None]:
    """One n x n matrix product in `dtype` (2 n^3 floating-point operations)."""
    rng = np.random.default_rng(0)
    a, b = (
        tf.cast(tf.constant(rng.standard_normal((n, n)), tf.float32), dtype)
        for _ in range(2)
    )
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)), autograph=False)
    return lambda: product().numpy()


def _model_side(spec: ModelSpec) -> int:
    return spec.input_size if spec.fixed_size else RENDER_SIZE


def _bench_models(plan: _Plan) -> dict[str, Any]:
    """Throughput, FLOPs and speed-up of every model, and of the reference."""
    names = list_models()
    entries: dict[str, dict[str, Any]] = {}
    calls: dict[int, dict[str, Callable[[], None]]] = {b: {} for b in BATCHES}
    # the machine's peak runs in the same rounds as the models: it sees the same load
    peaks = {f"peak_{t.name}": _matmul(plan.matmul_n, t) for t in PEAK_DTYPES}
    for batch in BATCHES:
        calls[batch].update(peaks)
    for name in [*names, "reference"]:
        if name == "reference":
            spec = get_spec(REFERENCE[0])
            model = create_model(REFERENCE[0], pretrained=False, **REFERENCE[1])
        else:
            spec = get_spec(name)
            model = create_model(name, pretrained=False)
        side = _model_side(spec)
        entry: dict[str, Any] = {
            "size": side,
            "fixed_size": spec.fixed_size,
            "params": int(model.count_params()),
        }
        for batch in BATCHES:
            if name == "reference" and batch > 1 and not plan.reference_batch16:
                continue
            graph, call = traced_network(model, spec, batch, side)
            if batch == 1:
                entry["gflops"] = _flops(graph) / 1e9
            calls[batch][name] = call
        if name == "default":
            x = np.random.default_rng(0).uniform(0, 1, (1, side, side, 1))
            x = tf.constant(x.astype(np.float32))
            if spec.hints:  # empty hint maps, as the Colorizer gives without hints
                x = [x, tf.zeros((1, side, side, 2)), tf.zeros((1, side, side, 1))]
            auto = automatic_model(model)
            calls[1]["eager"] = lambda m=auto, x=x: m(x, training=False).numpy()
        entries[name] = entry
        log.info("built %s (%d parameters)", name, entry["params"])
    best: dict[str, float] = {}
    for batch in BATCHES:
        repeats = plan.repeats if batch == 1 else plan.batch16_repeats
        times = _interleaved(calls[batch], repeats)
        for name, runs in times.items():
            if name in peaks:
                best[name] = min(best.get(name, np.inf), *runs)
                continue
            seconds = float(np.median(runs))
            if name == "eager":
                entries["default"]["eager_batch1_images_per_s"] = 1.0 / seconds
                continue
            entries[name][f"batch{batch}_ms"] = seconds * 1000.0
            entries[name][f"batch{batch}_images_per_s"] = batch / seconds
    flop = 2.0 * plan.matmul_n**3
    # a peak is what the machine can do: the best run, not the median
    peak = {"matmul_n": plan.matmul_n}
    peak.update({f"{k[5:]}_gflops": flop / v / 1e9 for k, v in best.items()})
    reference = entries.pop("reference")
    for entry in [*entries.values(), reference]:
        for batch in BATCHES:
            key = f"batch{batch}_images_per_s"
            if key in entry and key in reference and entry is not reference:
                entry[f"speedup_batch{batch}"] = entry[key] / reference[key]
    reference.update(name=REFERENCE[0], **REFERENCE[1])
    return {"models": entries, "reference": reference, "peak": peak}


# ---------------------------------------------------------------- photos


def _source_photos(folder: str, count: int) -> list[Image.Image]:
    """`count` real photos: from `folder` (sorted), else scikit-image's samples."""
    paths = sorted(Path(folder).glob("*.jpg")) if Path(folder).is_dir() else []
    if paths:
        photos = []
        for path in (paths * (count // len(paths) + 1))[:count]:
            with Image.open(path) as im:
                photos.append(im.convert("RGB"))
        return photos
    import skimage.data

    samples = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    return [Image.fromarray(samples[i % len(samples)]) for i in range(count)]


def _upscaled(photo: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The photo centre-cropped to the aspect of `size`, resized to it, in grey."""
    w, h = photo.size
    target = size[0] / size[1]
    if w / h > target:
        cw, ch = round(h * target), h
    else:
        cw, ch = w, round(w / target)
    left, top = (w - cw) // 2, (h - ch) // 2
    crop = photo.crop((left, top, left + cw, top + ch))
    return crop.resize(size, Image.Resampling.LANCZOS).convert("L")


def make_photos(folder: Path, source: str, folder_images: int) -> dict[str, Any]:
    """Write the test JPEGs (grey, quality 90) under `folder`.

    Returns {"1mp": path, "12mp": path, "folder": path of `folder_images` photos of
    about 1 megapixel, "source": where the photos came from}.
    """
    photos = _source_photos(source, max(folder_images, 1))
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"1mp": folder / "photo-1mp.jpg", "12mp": folder / "photo-12mp.jpg"}
    _upscaled(photos[0], ONE_MP).save(paths["1mp"], quality=90)
    _upscaled(photos[0], TWELVE_MP).save(paths["12mp"], quality=90)
    batch = folder / "batch"
    batch.mkdir(exist_ok=True)
    for i, photo in enumerate(photos[:folder_images]):
        w, h = photo.size
        size = ONE_MP if w >= h else ONE_MP[::-1]
        _upscaled(photo, size).save(batch / f"photo-{i:03d}.jpg", quality=90)
    is_folder = Path(source).is_dir() and any(Path(source).glob("*.jpg"))
    return {**paths, "folder": batch, "source": source if is_folder else "skimage"}


# ---------------------------------------------------------------- end to end


def _latency(
    colorizer: Colorizer, path: Path, out: Path, repeats: int
) -> dict[str, float]:
    """Decode, colorize, encode and write one photo, as the CLI does for each file."""
    cfg = ColorizeConfig(out=str(out), overwrite=True, quiet=True)
    job = Job(path, out / f"{path.stem}.png")

    def once() -> None:
        message = colorize_file(job, cfg, colorizer)
        if message is not None:
            raise RuntimeError(message)

    first = _timed(once)  # includes tracing the network for this shape
    seconds = _median_seconds(once, repeats, warmup=0)
    with Image.open(path) as im:
        w, h = im.size
    return {
        "megapixels": w * h / 1e6,
        "median_ms": seconds["median_s"] * 1000.0,
        "min_ms": seconds["min_s"] * 1000.0,
        "first_ms": first * 1000.0,
        "png_bytes": job.target.stat().st_size,
    }


# Run in a fresh interpreter; the peak is VmHWM (benchmarks.procstat)
_MEMORY_CHILD = """
import json, sys
from pathlib import Path
from benchmarks.procstat import status_kb
from core.colorize import ColorizeConfig, Job, colorize_file
from core.colorizer import Colorizer

colorizer = Colorizer.load("default")
after_load = status_kb()
src, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = ColorizeConfig(out=str(out), overwrite=True, quiet=True)
message = colorize_file(Job(src, out / "memory.png"), cfg, colorizer)
if message is not None:
    raise SystemExit(message)
print(json.dumps({"after_load_kb": after_load, "peak_kb": status_kb()}))
"""


def _peak_memory(path: Path, out: Path) -> dict[str, float]:
    """Peak resident memory of a fresh process that colorizes only `path` (MB)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(path), str(out)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    kb = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "peak_mb": kb["peak_kb"] / 1024.0,
        "after_load_mb": kb["after_load_kb"] / 1024.0,
        "photo_mb": (kb["peak_kb"] - kb["after_load_kb"]) / 1024.0,
    }


def _cli_throughput(
    colorizer: Colorizer, folder: Path, out: Path, repeats: int
) -> dict[str, float]:
    """The CLI's `run` on a folder (pipelined) against `colorize_file` one by one."""
    cfg = ColorizeConfig(out=str(out), overwrite=True, quiet=True)
    plan = plan_batch([str(folder)], out)
    n = len(plan.jobs)
    # trace every network shape of the folder first: throughput, not first calls
    for job in plan.jobs:
        colorize_file(job, cfg, colorizer)
    walls, cpus = [], []
    for _ in range(repeats):
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        done, failed = run(plan, cfg, colorizer)
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu_seconds() - cpu0)
        if (done, failed) != (n, 0):
            raise RuntimeError(f"CLI run: {done} colorized, {failed} failed of {n}")
    one_by_one, one_by_one_cpus = [], []
    for _ in range(repeats):
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        for job in plan.jobs:
            colorize_file(job, cfg, colorizer)
        one_by_one.append(time.perf_counter() - t0)
        one_by_one_cpus.append(_cpu_seconds() - cpu0)
    wall = float(np.median(walls))
    return {
        "images": n,
        "images_per_s": n / wall,
        # CPU seconds per wall second: cores kept busy (other processes take a share)
        "cores_busy": float(np.median(np.array(cpus) / np.array(walls))),
        "cores": _cores(),
        "one_by_one_images_per_s": n / float(np.median(one_by_one)),
        "one_by_one_cores_busy": float(
            np.median(np.array(one_by_one_cpus) / np.array(one_by_one))
        ),
        "speedup_over_one_by_one": float(np.median(one_by_one)) / wall,
    }


# ---------------------------------------------------------------- training


def _first_batch(data: str, size: int, stride: int, batch: int, hints: bool = False):
    pipe = PipelineConfig(
        size=size, output_stride=stride, batch_size=batch, hints=hints
    )
    return next(iter(make_dataset([data], pipe, training=True, seed=0)))


def _train_step(
    name: str,
    spec: ModelSpec,
    batch: tuple[tf.Tensor, ...],
    precision: str = "float32",
) -> Callable[[], None]:
    """One optimizer step of a Lab model on a fixed batch, with the trainer's loss.

    precision: a Keras dtype policy ("float32", "mixed_bfloat16") for the model.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = create_model(name, pretrained=False)
    finally:
        keras.config.set_dtype_policy(previous)
    optimizer = keras.optimizers.AdamW(1e-4, weight_decay=1e-5)
    variables = model.trainable_weights
    optimizer.build(variables)
    class_weights = tf.ones([313], tf.float32)  # the cost does not depend on them

    @tf.function(autograph=False)
    def step(lightness: tf.Tensor, ab: tf.Tensor, *hints: tf.Tensor) -> tf.Tensor:
        x = spec.luma_to_norm(lightness)
        inputs = [x, hints[0][..., :2], hints[0][..., 2:]] if hints else x
        with tf.GradientTape() as tape:
            out = model(inputs, training=True)
            out = tf.cast(out, tf.float32)
            if spec.output == "ab_bins":
                loss = classification_loss(out, ab, class_weights)
            else:
                loss = regression_loss(out, ab, spec.ab_scale)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return lambda: step(*batch).numpy()


def _gan_training(cfg: BenchConfig, plan: _Plan) -> dict[str, Any]:
    """Images/s of training.train_gan's iteration (a D step, then a G step).

    Each iteration takes two minibatches of 64x64 photos, both counted.
    """
    from training.train_gan import GanConfig, GanTrainer, make_gan_dataset

    spec = get_spec("cgan")
    batch = spec.train_defaults.get("batch_size", DEFAULT_TRAIN_BATCH)
    side = spec.input_size
    photos = [
        np.asarray(p.resize((side, side), Image.Resampling.BILINEAR))
        for p in _source_photos(cfg.photos, 2 * batch)
    ]
    gan = GanConfig(batch_size=batch, noise_dim=spec.noise_dim, seed=cfg.seed)
    trainer = GanTrainer(gan)
    data = iter(make_gan_dataset(np.stack(photos), batch, spec.noise_dim, cfg.seed))
    d_batch, g_batch = next(data), next(data)
    seconds = _median_seconds_within(
        lambda: trainer.train_step(d_batch, g_batch),
        plan.train_warmup,
        plan.train_steps,
        TRAIN_BUDGET_S,
    )
    return {
        "model": "cgan",
        "size": side,
        "batch_size": batch,
        "precision": gan.precision,
        "images_per_s": 2 * batch / seconds["median_s"],
        "step_ms": seconds["median_s"] * 1000.0,
    }


def _bench_training(cfg: BenchConfig, plan: _Plan) -> dict[str, Any]:
    """Images/s of training steps, and of the input pipeline alone."""
    goal = (GOAL_TRAIN_SIZE, DEFAULT_TRAIN_BATCH)
    runs: list[tuple[str, str, int, int, str]] = [
        ("default@128", "default", *goal, "float32")
    ]
    if plan.train_models:
        runs.append(("default@128-bf16", "default", *goal, "mixed_bfloat16"))
        for name in list_models():
            spec = get_spec(name)
            if spec.color_space != "lab":
                continue  # the cGAN: its own adversarial step, below
            size = spec.train_defaults.get("size", DEFAULT_TRAIN_SIZE)
            batch = spec.train_defaults.get("batch_size", DEFAULT_TRAIN_BATCH)
            runs.append((name, name, size, batch, "float32"))
    out: dict[str, Any] = {"models": {}, "skipped": []}
    for key, name, size, batch, precision in runs:
        spec = get_spec(name)
        data = _first_batch(cfg.data, size, spec.output_stride, batch, spec.hints)
        step = _train_step(name, spec, data, precision)
        seconds = _median_seconds_within(
            step, plan.train_warmup, plan.train_steps, TRAIN_BUDGET_S
        )
        out["models"][key] = {
            "model": name,
            "size": size,
            "batch_size": batch,
            "precision": precision,
            "images_per_s": batch / seconds["median_s"],
            "step_ms": seconds["median_s"] * 1000.0,
        }
        log.info(
            "trained %s at %d: %.1f images/s", key, size, batch / seconds["median_s"]
        )
    if plan.train_models and "cgan" in list_models():
        out["models"]["cgan"] = _gan_training(cfg, plan)
    out["skipped"] = [
        f"{name}: {'--quick' if cfg.quick else 'no trainer for this model'}"
        for name in list_models()
        if name not in {m["model"] for m in out["models"].values()}
    ]
    pipe = PipelineConfig(size=GOAL_TRAIN_SIZE, batch_size=DEFAULT_TRAIN_BATCH)
    iterator = iter(make_dataset([cfg.data], pipe, training=True, seed=cfg.seed))
    next(iterator)  # starts the reader threads and fills the first buffers
    # the median of a few windows after an untimed one, as for every other figure
    repeats = 3 if plan.train_models else 1
    seconds = _median_seconds(
        lambda: [next(iterator) for _ in range(plan.pipeline_batches)], repeats
    )["median_s"]
    images = plan.pipeline_batches * DEFAULT_TRAIN_BATCH
    pipeline = images / seconds
    goal = out["models"]["default@128"]["images_per_s"]
    out["pipeline"] = {
        "size": GOAL_TRAIN_SIZE,
        "batch_size": DEFAULT_TRAIN_BATCH,
        "images": images,
        "repeats": repeats,
        "images_per_s": pipeline,
        "over_training": pipeline / goal,
    }
    return out


# ---------------------------------------------------------------- the run


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "core", "benchmarks"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    web = results.get("web", {}).get("color", {})  # absent with --no-web
    values = {
        "speedup_batch1": results["models"]["default"].get("speedup_batch1"),
        "latency_1mp_ms": results["end_to_end"]["1mp"]["median_ms"],
        "latency_12mp_ms": results["end_to_end"]["12mp"]["median_ms"],
        "peak_memory_12mp_mb": results["memory"]["peak_mb"],
        "cli_cores_busy": results["cli"]["cores_busy"],
        "web_40mp_s": web.get("median_s"),
        "web_40mp_peak_mb": web.get("server_peak_mb"),
        "video_frames_per_s": results.get("video", {})  # absent with --no-video
        .get("speed", {})
        .get("stable", {})
        .get("frames_per_s"),
        "train_128_images_per_s": results["training"]["models"]["default@128"][
            "images_per_s"
        ],
        "pipeline_over_training": results["training"]["pipeline"]["over_training"],
    }
    return check_goals(values, GOALS)


def run_benchmarks(cfg: BenchConfig, command: str = "") -> dict[str, Any]:
    """Measure everything; returns the results as a JSON-ready dict."""
    plan = _plan(cfg)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "command": command or "python -m benchmarks.run",
            "commit": _commit(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "quick": cfg.quick,
            "cpu": _cpu_name(),
            "cores": _cores(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "config": asdict(cfg),
            "load_at_start": _load(),
            "weights_sha256": {
                name: entry.get("sha256") for name, entry in read_manifest().items()
            },
        }
    }
    loads = {"models": _load()}
    results.update(_bench_models(plan))
    _add_peak_fractions(results)
    log.info("peak %.0f GFLOP/s float32", results["peak"]["float32_gflops"])
    with tempfile.TemporaryDirectory(prefix="colorize-bench-") as tmp:
        root = Path(tmp)
        photos = make_photos(root / "photos", cfg.photos, plan.folder_images)
        results["meta"]["photos"] = photos["source"]
        colorizer = Colorizer.load("default")
        loads["end_to_end"] = _load()
        results["end_to_end"] = {
            "1mp": _latency(
                colorizer, photos["1mp"], root / "out", plan.latency_repeats
            ),
            "12mp": _latency(
                colorizer, photos["12mp"], root / "out", plan.latency_12mp_repeats
            ),
        }
        loads["memory"] = _load()
        results["memory"] = {
            **_peak_memory(photos["12mp"], root / "out"),
            "megapixels": TWELVE_MP[0] * TWELVE_MP[1] / 1e6,
        }
        loads["cli"] = _load()
        results["cli"] = _cli_throughput(
            colorizer, photos["folder"], root / "cli", plan.folder_repeats
        )
        results["levers"] = {}
        if cfg.levers:
            from benchmarks.levers import measure_levers

            loads["levers"] = _load()
            results["levers"] = measure_levers(
                colorizer, photos, plan.lever_repeats, full=not cfg.quick
            )
    if cfg.web:
        loads["web"] = _load()
        results["web"] = run_web(("color",), plan.web_repeats)
    if cfg.video:
        loads["video"] = _load()
        results["video"] = run_video(
            VideoBenchConfig(
                photos=cfg.data,  # shards: the first one's photos make the clip
                models="default",
                repeats=plan.repeats,
                memory=not cfg.quick,
                **({"width": 320, "height": 240, "shots": 2} if cfg.quick else {}),
                seed=cfg.seed,
            )
        )
    loads["training"] = _load()
    results["training"] = _bench_training(cfg, plan)
    loads["end"] = _load()
    results["meta"]["load"] = loads
    results["meta"]["seconds"] = time.perf_counter() - started
    results["levers"].update(_derived_levers(results))
    results["goals"] = _goals(results)
    return results


def _derived_levers(results: dict[str, Any]) -> dict[str, Any]:
    """Levers whose two sides were measured in other sections of this run."""
    default = results["models"]["default"]
    cli = results["cli"]
    levers: dict[str, Any] = {
        "traced_network": {
            "what": "default network, 256x256, batch 1",
            "before": "Keras model called eagerly",
            "after": "tf.function traced once per input shape",
            "before_ms": 1000.0 / default["eager_batch1_images_per_s"],
            "after_ms": default["batch1_ms"],
            "kept": True,
        },
        "cli_pipeline": {
            "what": f"CLI, folder of {cli['images']} photos of 1 MP, per photo",
            "before": "one photo after another",
            "after": "decode ahead and write behind the network (threads)",
            "before_ms": 1000.0 / cli["one_by_one_images_per_s"],
            "after_ms": 1000.0 / cli["images_per_s"],
            "kept": True,
        },
    }
    training = results["training"]["models"]
    if "default@128-bf16" in training:
        levers["bf16_training"] = {
            "what": "default training step, 128x128, batch 16",
            "before": "float32",
            "after": "mixed bfloat16",
            "before_ms": training["default@128"]["step_ms"],
            "after_ms": training["default@128-bf16"]["step_ms"],
            "kept": False,
        }
    for entry in levers.values():
        entry["speedup"] = entry["before_ms"] / entry["after_ms"]
    return levers


def _add_peak_fractions(results: dict[str, Any]) -> None:
    """Each model's GFLOP/s over the measured float32 peak, per batch size."""
    peak = results["peak"]["float32_gflops"]
    for entry in [*results["models"].values(), results["reference"]]:
        for batch in BATCHES:
            key = f"batch{batch}_images_per_s"
            if key in entry:
                entry[f"peak_fraction_batch{batch}"] = (
                    entry["gflops"] * entry[key] / peak
                )


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _format_video(video: dict[str, Any]) -> str:
    row = video["models"]["default"]
    return (
        f"video {video['clip']['frames']} frames at render 256: "
        f"{_fmt(video['speed']['stable']['frames_per_s'])} frames/s stable, "
        f"{_fmt(video['speed']['per_frame']['frames_per_s'])} per frame; flicker "
        f"{_fmt(row['stable']['flicker'], 2)} (per frame "
        f"{_fmt(row['per_frame']['flicker'], 2)}, original "
        f"{_fmt(video['original_flicker'], 2)})"
    )


def format_table(results: dict[str, Any]) -> str:
    """The results as plain-text tables: models, end to end, training, goals."""
    lines = [
        f"load average {results['meta']['load_at_start']}, "
        f"{results['meta']['cores']} cores; peak float32 "
        f"{results['peak']['float32_gflops']:.0f} GFLOP/s, bfloat16 "
        f"{results['peak']['bfloat16_gflops']:.0f} GFLOP/s",
        "",
        f"{'model':<22}{'size':>5}{'GFLOP':>8}{'img/s b1':>10}{'img/s b16':>11}"
        f"{'x ref b1':>10}{'x ref b16':>11}{'% peak b1':>11}",
    ]
    models = {**results["models"], "reference (vgg16-cls w1)": results["reference"]}
    for name, m in models.items():
        fixed = "*" if m["fixed_size"] else " "
        lines.append(
            f"{name:<22}{m['size']:>4}{fixed}{_fmt(m['gflops']):>8}"
            f"{_fmt(m['batch1_images_per_s']):>10}"
            f"{_fmt(m.get('batch16_images_per_s')):>11}"
            f"{_fmt(m.get('speedup_batch1')):>10}{_fmt(m.get('speedup_batch16')):>11}"
            f"{_fmt(100 * m['peak_fraction_batch1']):>11}"
        )
    lines += ["(* fixed input size: measured at its own size)", ""]
    e2e = results["end_to_end"]
    cli = results["cli"]
    lines += [
        f"end to end 1 MP: {_fmt(e2e['1mp']['median_ms'], 0)} ms "
        f"(first call {_fmt(e2e['1mp']['first_ms'], 0)} ms); "
        f"12 MP: {_fmt(e2e['12mp']['median_ms'], 0)} ms; "
        f"peak memory 12 MP: {_fmt(results['memory']['peak_mb'], 0)} MB",
        f"CLI, {cli['images']} photos of 1 MP: "
        f"{_fmt(cli['images_per_s'], 2)} images/s, "
        f"{_fmt(cli['cores_busy'], 2)} of {cli['cores']} cores busy "
        f"(one by one: {_fmt(cli['one_by_one_images_per_s'], 2)} images/s)",
        *([format_web(results["web"])] if results.get("web") else []),
        *([_format_video(results["video"])] if results.get("video") else []),
        "",
        f"{'training':<22}{'size':>5}{'batch':>7}{'img/s':>9}",
    ]
    for key, t in results["training"]["models"].items():
        lines.append(
            f"{key:<22}{t['size']:>5}{t['batch_size']:>7}{_fmt(t['images_per_s']):>9}"
        )
    pipe = results["training"]["pipeline"]
    lines += [
        f"{'input pipeline':<22}{pipe['size']:>5}{pipe['batch_size']:>7}"
        f"{_fmt(pipe['images_per_s']):>9}",
        "",
        f"{'goal':<48}{'target':>10}{'value':>10}  met",
    ]
    for g in results["goals"]:
        sign = ">=" if g["kind"] == "min" else "<="
        lines.append(
            f"{g['goal']:<48}{sign + _fmt(g['target']):>10}{_fmt(g['value']):>10}  "
            f"{'yes' if g['met'] else 'NO'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_args(parser, BenchConfig)
    return run_main(
        parser, argv, lambda args: _run(args, argv), log_format=TIMED_LOG_FORMAT
    )


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    cfg = dataclass_from_args(BenchConfig, args)
    keras.utils.set_random_seed(cfg.seed)
    command = shlex.join(["python", "-m", "benchmarks.run", *(argv or sys.argv[1:])])
    results = run_benchmarks(cfg, command)
    atomic_write_bytes(Path(cfg.out), (json.dumps(results, indent=2) + "\n").encode())
    print(format_table(results))
    print(cfg.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Video colorization measured: stable colours against per-frame colorization and the
original colours, PSNR, frames per second end to end, and peak memory.

    python -m benchmarks.video --out docs/results/video.md   # also writes video.json

Colour test clips are made from real colour photos (the first shard of
../shared/data/val, chosen with --seed among photos of at least 400x300 pixels;
scikit-image's bundled photos when there are not enough, as with val's photos of at
most 384 pixels a side today): one shot per photo, a pan and a zoom, a cut between
shots, at --width x --height and --fps, encoded as H.264 (CRF 10). Their grey
versions (each frame's CIE lightness as a grey level) are colorized by
`Colorizer.colorize_video` at render size --size, with stable colours (the default)
and per frame (`stabilize=False`).

- flicker (`core.video.flicker`): the mean ab difference (CIE Lab) between
  consecutive frames after motion compensation, the flow taken from the original
  grey frames, pairs across a cut left out; for the stable output, the per-frame
  output and the original colour clip, measured at longer side 256;
- PSNR per frame (`core.video.clip_psnr`) of both outputs against the colour frames;
- frames per second end to end (decoding, colorizing, encoding, atomic write), the
  median of --repeats runs after one untimed run (which traces the network);
- the peak resident memory of a child process that colorizes the clip, and a clip 4x
  as long (the same shots, four times).

The record (Markdown and JSON) carries the command, commit, date, load average, the
weights' SHA-256 and the seed; paths are relative to the repository.
`python -m benchmarks.run` runs the same measurement (its `video` section).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.markdown import check_goals, command_line, emit
from benchmarks.performance_doc import repo_relative
from benchmarks.video_clips import (
    gray_frames,
    pan_zoom,
    sample_photos,
    shard_photos,
    write_clip,
)
from core.atomic import atomic_write_bytes
from core.cli import TIMED_LOG_FORMAT, run_main
from core.colorizer import Colorizer
from core.config import add_dataclass_args, dataclass_from_args
from core.errors import InvalidInputError
from core.imageio import cpu_count
from core.video import clip_psnr, flicker, read_frames
from core.weights import read_manifest

__all__ = ["GOALS", "VideoBenchConfig", "format_record", "main", "run_video"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
# (key, what, target, kind): the goals; "max" is met at or under the target
GOALS = (
    ("flicker_vs_per_frame", "flicker / per-frame flicker", 0.5, "max"),
    ("flicker_vs_original", "flicker / original's flicker", 1.2, "max"),
    ("psnr_loss_db", "PSNR loss against per-frame (dB)", 0.2, "max"),
    ("frames_per_s", "frames/s end to end, render 256", 15.0, "min"),
)
_MEMORY_CHILD = """
import sys, json
from benchmarks.procstat import status_kb
from core.colorizer import Colorizer

colorizer = Colorizer.load(sys.argv[3])
colorizer.colorize_video(sys.argv[1], sys.argv[2], int(sys.argv[4]), overwrite=True)
print(json.dumps({"peak_kb": status_kb()}))
"""


@dataclass(frozen=True)
class VideoBenchConfig:
    out: str = field(
        default="",
        metadata={"help": "Markdown record to write (a .json beside it); empty: print"},
    )
    photos: str = field(
        default="../shared/data/val",
        metadata={"help": "folder of .tar shards of colour photos (first shard used)"},
    )
    models: str = field(
        default="default,default-v1",
        metadata={"help": "models measured for flicker and PSNR (speed: the first)"},
    )
    size: int = field(default=256, metadata={"help": "render size (longer side)"})
    width: int = field(default=640, metadata={"help": "frame width of the clips"})
    height: int = field(default=480, metadata={"help": "frame height of the clips"})
    fps: int = field(default=24, metadata={"help": "frame rate of the clips"})
    shots: int = field(default=4, metadata={"help": "shots (photos) per clip"})
    shot_frames: int = field(default=36, metadata={"help": "frames per shot"})
    repeats: int = field(default=3, metadata={"help": "timed runs (median)"})
    memory: bool = field(
        default=True,
        metadata={"help": "measure peak memory, short clip and 4x longer (children)"},
    )
    seed: int = 0
    readme: str = field(
        default="",
        metadata={
            "help": "also rewrite the figures between the video markers of this "
            "README (e.g. README.md)"
        },
    )
    from_record: str = field(
        default="",
        metadata={
            "help": "measure nothing: take the results of this .json record (with "
            "--readme, to refresh the README's figures)"
        },
    )


def _make_clips(cfg: VideoBenchConfig, folder: Path) -> dict[str, Any]:
    """Write color.mp4, grey.mp4 and grey-long.mp4 (4x) into `folder`."""
    photos = shard_photos(cfg.photos, cfg.shots, cfg.seed, min_hw=(300, 400))
    source = f"{cfg.photos} (first shard, seed {cfg.seed})"
    if photos is None or len(photos) < cfg.shots:
        photos, source = sample_photos()[: cfg.shots], "scikit-image's sample photos"
    hw = (cfg.height, cfg.width)

    def frames(repeat: int = 1):
        return pan_zoom(photos * repeat, hw, cfg.shot_frames)

    count = write_clip(folder / "color.mp4", frames(), cfg.fps)
    write_clip(folder / "grey.mp4", gray_frames(frames()), cfg.fps)
    if cfg.memory:
        write_clip(folder / "grey-long.mp4", gray_frames(frames(4)), cfg.fps)
    return {
        "source": repo_relative(source, REPO),
        "frames": count,
        "cuts": [cfg.shot_frames * i for i in range(1, cfg.shots)],
    }


def _peak_mb(clip: Path, out: Path, model: str, size: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(clip), str(out), model, str(size)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_kb"] / 1024.0


def _quality(
    colorizer: Colorizer, folder: Path, cfg: VideoBenchConfig, clips: dict[str, Any]
) -> dict[str, Any]:
    """Flicker and PSNR of the stable and per-frame outputs of one model."""
    originals = folder / "color.mp4"
    row: dict[str, Any] = {}
    for name, stabilize in (("stable", True), ("per_frame", False)):
        out = folder / f"{colorizer.name}-{name}.mp4"
        start = time.perf_counter()
        result = colorizer.colorize_video(
            folder / "grey.mp4", out, cfg.size, stabilize=stabilize, overwrite=True
        )
        seconds = time.perf_counter() - start
        row[name] = {
            "flicker": flicker(
                read_frames(out), read_frames(originals), clips["cuts"], size=256
            ),
            "psnr_db": clip_psnr(read_frames(out), read_frames(originals)),
            "keyframes": result.keyframes,
            "cuts_found": result.cuts,
            "first_run_frames_per_s": result.frames / seconds,
        }
    return row


def run_video(cfg: VideoBenchConfig) -> dict[str, Any]:
    """Measure everything (see the module docstring); a JSON-ready dict."""
    models = [m for m in cfg.models.split(",") if m]
    results: dict[str, Any] = {"models": {}}
    with tempfile.TemporaryDirectory(prefix="colorize-video-bench-") as tmp:
        folder = Path(tmp)
        clips = _make_clips(cfg, folder)
        results["clip"] = clips
        originals = folder / "color.mp4"
        results["original_flicker"] = flicker(
            read_frames(originals), read_frames(originals), clips["cuts"], size=256
        )
        for name in models:
            colorizer = Colorizer.load(name)
            results["models"][name] = _quality(colorizer, folder, cfg, clips)
            if name != models[0]:
                continue
            times: dict[str, list[float]] = {"stable": [], "per_frame": []}
            cpu: dict[str, list[float]] = {"stable": [], "per_frame": []}
            for _ in range(cfg.repeats):
                for mode, stabilize in (("stable", True), ("per_frame", False)):
                    start, cpu_start = time.perf_counter(), time.process_time()
                    colorizer.colorize_video(
                        folder / "grey.mp4",
                        folder / f"timed-{mode}.mp4",
                        cfg.size,
                        stabilize=stabilize,
                        overwrite=True,
                    )
                    times[mode].append(time.perf_counter() - start)
                    cpu[mode].append(time.process_time() - cpu_start)
            cores = cpu_count()
            results["speed"] = {
                mode: {
                    "seconds": values,
                    "frames_per_s": clips["frames"] / statistics.median(values),
                    "cpu_seconds": cpu[mode],
                    # what the cores would give if they were this process's alone:
                    # frames per CPU second, times the cores (an upper estimate)
                    "frames_per_s_cores_free": clips["frames"]
                    * cores
                    / statistics.median(cpu[mode]),
                }
                for mode, values in times.items()
            }
        if cfg.memory:
            out = folder / "memory.mp4"
            results["memory"] = {
                "short_frames": clips["frames"],
                "long_frames": 4 * clips["frames"],
                "short_peak_mb": _peak_mb(
                    folder / "grey.mp4", out, models[0], cfg.size
                ),
                "long_peak_mb": _peak_mb(
                    folder / "grey-long.mp4", out, models[0], cfg.size
                ),
            }
    results["goals"] = _goals(results, models[0])
    return results


def _goals(results: dict[str, Any], model: str) -> list[dict[str, Any]]:
    row = results["models"][model]
    values = {
        "flicker_vs_per_frame": row["stable"]["flicker"] / row["per_frame"]["flicker"],
        "flicker_vs_original": row["stable"]["flicker"] / results["original_flicker"],
        "psnr_loss_db": row["per_frame"]["psnr_db"] - row["stable"]["psnr_db"],
        "frames_per_s": results["speed"]["stable"]["frames_per_s"],
    }
    return check_goals(values, GOALS)


def _meta(cfg: VideoBenchConfig, command: str) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout.strip()
    manifest = read_manifest()
    return {
        "command": command,
        "commit": commit or "unknown",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": cpu_count(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "weights_sha256": {
            m: manifest.get(m, {}).get("sha256") for m in cfg.models.split(",") if m
        },
        "config": asdict(cfg),
    }


def format_record(results: dict[str, Any]) -> str:
    """The Markdown record of `run_video`'s results (with their "meta")."""
    meta, clip, cfg = results["meta"], results["clip"], results["meta"]["config"]
    lines = [
        "# Video: stable colours, speed and memory",
        "",
        f"Generated by `{meta['command']}` at commit {meta['commit']} on "
        f"{meta['date']} ({meta['cores']} CPU cores, load average "
        f"{meta['load_at_start']} at the start; the machine was shared). Weights: "
        + ", ".join(
            f"{m} `{(s or 'none')[:12]}`" for m, s in meta["weights_sha256"].items()
        )
        + f". Seed {cfg['seed']}.",
        "",
        f"Test clip: {clip['frames']} frames of {cfg['width']}x{cfg['height']} at "
        f"{cfg['fps']} frames/s, {cfg['shots']} shots of {cfg['shot_frames']} frames "
        f"(a pan and a zoom over one colour photo each, cuts at frames "
        f"{', '.join(map(str, clip['cuts']))}), photos from {clip['source']}; made "
        f"grey, colorized at render size {cfg['size']}. Flicker: mean ab difference "
        "(CIE Lab) between consecutive frames after motion compensation, the flow "
        "from the original grey frames, at longer side 256, pairs across cuts left "
        "out. PSNR: mean over frames, against the colour frames.",
        "",
        "| model | mode | flicker | PSNR (dB) | network runs | cuts found |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results["models"].items():
        for mode in ("stable", "per_frame"):
            r = row[mode]
            lines.append(
                f"| {name} | {mode.replace('_', '-')} | {r['flicker']:.3f} | "
                f"{r['psnr_db']:.2f} | {r['keyframes']} of {clip['frames']} | "
                f"{r['cuts_found']} |"
            )
    lines.append(
        f"| original colour clip | | {results['original_flicker']:.3f} | | | |"
    )
    speed = results["speed"]
    lines += [
        "",
        f"Speed, end to end (decode, colorize, encode, write), model "
        f"{next(iter(results['models']))}, median of {cfg['repeats']} runs after one "
        f"untimed: stable {speed['stable']['frames_per_s']:.1f} frames/s, per-frame "
        f"{speed['per_frame']['frames_per_s']:.1f} frames/s. The process used "
        f"{speed['stable']['frames_per_s_cores_free'] / meta['cores']:.1f} frames per "
        f"CPU second (stable; per-frame "
        f"{speed['per_frame']['frames_per_s_cores_free'] / meta['cores']:.1f}): with "
        f"its {meta['cores']} cores to itself it could reach at most "
        f"{speed['stable']['frames_per_s_cores_free']:.1f} frames/s (stable) on a "
        "machine without other work, an estimate, not a measurement.",
    ]
    if "memory" in results:
        mem = results["memory"]
        lines += [
            "",
            f"Peak resident memory of a process that loads the model and colorizes "
            f"the clip: {mem['short_peak_mb']:.0f} MB for {mem['short_frames']} "
            f"frames, {mem['long_peak_mb']:.0f} MB for {mem['long_frames']} frames.",
        ]
    lines += ["", *_goal_table(results["goals"])]
    return "\n".join(lines) + "\n"


def _goal_table(goals: list[dict[str, Any]]) -> list[str]:
    """`check_goals`' goals as the lines of a Markdown table."""
    lines = ["| goal | target | value | met |", "| --- | ---: | ---: | --- |"]
    for g in goals:
        sign = ">=" if g["kind"] == "min" else "<="
        lines.append(
            f"| {g['goal']} | {sign} {g['target']:g} | {g['value']:.3f} | "
            f"{'yes' if g['met'] else 'no'} |"
        )
    return lines


README_START = "<!-- video figures: generated by python -m benchmarks.video -->"
README_END = "<!-- end of video figures -->"


def readme_figures(results: dict[str, Any]) -> str:
    """The README's video figures from `run_video`'s results: flicker and PSNR per
    model and mode, and each goal with its measured value (Markdown)."""
    meta, clip, cfg = results["meta"], results["clip"], results["meta"]["config"]
    lines = [
        f"From the generated record [`docs/results/video.md`](docs/results/video.md) "
        f"(commit {meta['commit']}, {clip['frames']} frames of "
        f"{cfg['width']}x{cfg['height']} at {cfg['fps']} frames/s, {cfg['shots']} "
        f"shots, render size {cfg['size']}; load average {meta['load_at_start'][0]} "
        f"on {meta['cores']} cores at the start):",
        "",
        "| | flicker (ab) | PSNR (dB) | network runs |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, row in results["models"].items():
        for mode, label in (("stable", "stable colours"), ("per_frame", "per frame")):
            r = row[mode]
            lines.append(
                f"| `{name}`, {label} | {r['flicker']:.3f} | {r['psnr_db']:.2f} | "
                f"{r['keyframes']} of {clip['frames']} |"
            )
    lines += [
        f"| original colour clip | {results['original_flicker']:.3f} | | |",
        "",
        *_goal_table(results["goals"]),
    ]
    if "memory" in results:
        mem = results["memory"]
        lines += [
            "",
            f"Peak memory: {mem['short_peak_mb']:.0f} MB for {mem['short_frames']} "
            f"frames, {mem['long_peak_mb']:.0f} MB for {mem['long_frames']}.",
        ]
    return "\n".join(lines)


def write_readme_figures(readme: Path, results: dict[str, Any]) -> None:
    """Replace the text between README_START and README_END in `readme` (atomic)."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise InvalidInputError(
            f"{readme}: no video figures block ({README_START} ... {README_END})"
        )
    body = readme_figures(results)
    new = text[: start + len(README_START)] + "\n" + body + "\n" + text[end:]
    atomic_write_bytes(readme, new.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.video",
        description=__doc__.split("\n\n")[0],
    )
    add_dataclass_args(parser, VideoBenchConfig)
    return run_main(
        parser, argv, lambda args: _run(args, argv), log_format=TIMED_LOG_FORMAT
    )


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    cfg = dataclass_from_args(VideoBenchConfig, args)
    if cfg.from_record:
        try:
            results = json.loads(Path(cfg.from_record).read_text())
        except (OSError, ValueError) as err:
            raise InvalidInputError(f"{cfg.from_record}: {err}") from err
    else:
        command = command_line("benchmarks.video", argv)
        meta = _meta(cfg, command)
        results = {"meta": meta, **run_video(cfg)}
        text = repo_relative(format_record(results), REPO)
        emit(text, cfg.out)
        if cfg.out:
            record = repo_relative(json.dumps(results, indent=2, default=str), REPO)
            out = Path(cfg.out).with_suffix(".json")
            atomic_write_bytes(out, (record + "\n").encode())
            print(text, end="")
    if cfg.readme:
        write_readme_figures(Path(cfg.readme), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

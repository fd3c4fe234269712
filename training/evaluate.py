"""Evaluate colorizers on colour photos against the grey baseline.

    python -m training.evaluate --model default [--model NAME ...] \
        --data ../shared/data/test/bsds500-test --size 256 --out reports/default-bsds

For each photo: convert it to grey (its own lightness, a = b = 0), colorize the grey
image with each model through `Colorizer`, and compare with the original
(docs/design.md 5): PSNR, SSIM, mean CIEDE2000, stain rate (the share of pixels with a
confident false colour), colourfulness (signed and DDColor's absolute form, ratio to the
originals, Delta-CF), AuC of the ab-error CDF (plain and class-rebalanced, with the mean
CMF curves), semantic agreement of an ImageNet classifier, EfficientNet-Lite2 (top-1 and
top-5), and realism: the Fréchet distance (FD) and KID between that classifier's pooled
features of the colorized photos and of the originals (`training.realism`; one pass of
the classifier gives both; `--no-semantic` skips it, and with it agreement and realism).
The grey baseline is always included.

A model is `NAME` (shipped weights) or `NAME=WEIGHTS_FILE` (e.g. a training run's
best.weights.h5). Writes `summary.json`, `per_image.csv` and (unless `--no-report`) the
offline HTML report `report.html` with its `plots/` and `images/` into --out, and prints
the summary table. `python -m benchmarks.results_table` turns summary files into the
Markdown results table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image

from core import metrics
from core.atomic import atomic_write_bytes
from core.cli import run_main
from core.colorizer import Colorizer
from core.colorspace import gray_level, rgb_to_lab
from core.config import add_dataclass_args, dataclass_from_args
from core.imageio import decode_rgb
from core.weights import (
    WEIGHTS_DIR,
    file_sha256,
    read_manifest,
)
from training.data import iter_encoded, list_sources
from training.prior import load_prior
from training.realism import (
    KID_SEED,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    frechet_distance,
    kernel_inception_distance,
    kid_subset_size,
)
from training.report import write_html_report, write_meta
from training.semantic import SemanticJudge, agreement

__all__ = [
    "EvalConfig",
    "evaluate",
    "gray_baseline",
    "hint_curve_rows",
    "simulated_hints",
    "summarize_hint_curve",
    "image_metrics",
    "main",
    "realism",
    "summarize",
    "summarize_models",
    "write_report",
    "write_rows_csv",
]

log = logging.getLogger(__name__)

GRAY = "gray"
ORIGINAL = "original"  # grid column of the ground truth
GRID_SIDE = 256  # longer side of the report's grid thumbnails
GRID_JPEG_QUALITY = 92  # with 4:4:4 chroma, so the thumbnails keep the colours judged


@dataclass(frozen=True)
class EvalConfig:
    model: tuple[str, ...] = field(
        default=("default",), metadata={"help": "NAME or NAME=WEIGHTS_FILE, repeatable"}
    )
    data: tuple[str, ...] = field(
        default=("../shared/data/val",), metadata={"help": "folders, shards or globs"}
    )
    size: int = field(default=256, metadata={"help": "network side (longer side)"})
    out: str = field(default="", metadata={"help": "report folder (optional)"})
    prior: str = field(
        default="",
        metadata={"help": "prior .npz for the rebalanced AuC (default: shipped)"},
    )
    limit: int = field(default=0, metadata={"help": "evaluate only the first N photos"})
    temperature: float = field(default=0.38, metadata={"help": "annealed-mean T"})
    semantic: bool = field(
        default=True,
        metadata={
            "help": "top-1/top-5 agreement and realism (FD, KID) of "
            "EfficientNet-Lite2 (slower)"
        },
    )
    report: bool = field(
        default=True, metadata={"help": "write report.html with plots and grids"}
    )
    grid_images: int = field(
        default=12, metadata={"help": "photos shown in the report's grid"}
    )
    hints: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "hint counts K, e.g. 0 1 2 5 10 20 50 100: hint models are also "
            "scored with K random points per photo (fixed seed; each the mean colour "
            "of the original's 5x5 patch there): PSNR, AuC and stain rate per K"
        },
    )


HINT_SEED = 0  # points of photo n come from default_rng((HINT_SEED, n))
HINT_SEQUENCE = 100  # points drawn per photo (more when K is larger)
HINT_PATCH_SIDE = 5  # a simulated hint's colour: the original's mean over this square


def simulated_hints(
    gt: np.ndarray, k: int, n: int, seed: int = HINT_SEED
) -> list[tuple[int, int, tuple[int, int, int]]]:
    """K hints for photo number n as a user who knows the true colours would give them.

    gt: uint8 (H, W, 3) original. The points are the first K of a fixed random
    sequence for (seed, n), so the hints for K include those for any smaller K; each
    point's colour is the original's mean RGB over the 5x5 square around it (clipped
    at the border), rounded to 8 bits. Returns [(x, y, (r, g, b)), ...].
    """
    h, w = gt.shape[:2]
    rng = np.random.default_rng((seed, n))
    points = rng.random((max(k, HINT_SEQUENCE), 2))[:k]  # one sequence for every K
    ys = np.minimum((points[:, 0] * h).astype(int), h - 1)
    xs = np.minimum((points[:, 1] * w).astype(int), w - 1)
    half = HINT_PATCH_SIDE // 2
    hints = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        patch = gt[max(y - half, 0) : y + half + 1, max(x - half, 0) : x + half + 1]
        colour = np.rint(patch.reshape(-1, 3).mean(axis=0)).astype(int)
        hints.append((x, y, tuple(int(c) for c in colour)))
    return hints


def hint_curve_rows(
    colorizer: Colorizer,
    gt: np.ndarray,
    gray: np.ndarray,
    n: int,
    counts: tuple[int, ...],
    size: int,
    temperature: float,
) -> list[dict]:
    """PSNR, AuC and stain rate of one photo colorized with K hints, each K in counts.

    gt, gray: uint8 (H, W, 3) original and its grey rendering; n: the photo's number
    (seeds its points). Returns one {"hints": K, "psnr", "auc", "stain_rate"} per K.
    """
    rows = []
    for k in counts:
        hints = simulated_hints(gt, k, n)
        out = colorizer.colorize(gray, size, hints=hints, temperature=temperature)
        pred = np.asarray(out.convert("RGB"))
        rows.append(
            {
                "hints": int(k),
                "psnr": metrics.psnr(gt, pred),
                "auc": metrics.auc(metrics.ab_error_cmf(gt, pred)),
                "stain_rate": metrics.stain_rate(gt, pred),
            }
        )
    return rows


def summarize_hint_curve(rows: list[dict]) -> dict[str, list[float]]:
    """Means over photos per hint count: {"hints", "psnr", "auc", "stain_rate",
    "images"} as lists in increasing K."""
    counts = sorted({r["hints"] for r in rows})
    out: dict[str, list[float]] = {key: [] for key in ("psnr", "auc", "stain_rate")}
    for k in counts:
        at_k = [r for r in rows if r["hints"] == k]
        for key in out:
            out[key].append(float(np.mean([r[key] for r in at_k])))
    return {"hints": counts, **out, "images": len(rows) // max(len(counts), 1)}


def gray_baseline(rgb: np.ndarray) -> np.ndarray:
    """The grey rendering g(L) of a uint8 RGB image, as uint8 (H, W, 3)."""
    lightness = rgb_to_lab(rgb)[..., 0]
    g = np.round(gray_level(lightness) * 255.0).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def image_metrics(
    gt: np.ndarray, pred: np.ndarray, prior: np.ndarray | None
) -> tuple[dict, dict[str, np.ndarray]]:
    """All per-image figures of one prediction against its ground truth.

    gt, pred: uint8 (H, W, 3) RGB. prior: (313,) bin prior for the rebalanced AuC, or
    None to skip it.
    Returns (row of floats, curves): curves["cmf"] (and "cmf_rebalanced" with a prior)
    float64 (151,) in [0, 1], the CMF at ab-error thresholds 0..150.
    """
    row = {
        "psnr": metrics.psnr(gt, pred),
        "ssim": metrics.ssim(gt, pred) if min(gt.shape[:2]) >= 7 else math.nan,
        "ciede2000": metrics.ciede2000(gt, pred),
        "cf_signed": metrics.colorfulness(pred, signed=True),
        "cf_abs": metrics.colorfulness(pred, signed=False),
        "stain_rate": metrics.stain_rate(gt, pred),
    }
    curves = {"cmf": metrics.ab_error_cmf(gt, pred)}
    row["auc"] = metrics.auc(curves["cmf"])
    if prior is not None:
        curves["cmf_rebalanced"] = metrics.ab_error_cmf(gt, pred, prior)
        row["auc_rebalanced"] = metrics.auc(curves["cmf_rebalanced"])
    return row, curves


def summarize(
    rows: list[dict],
    originals: list[dict],
    curves: list[dict[str, np.ndarray]] | None = None,
) -> dict:
    """Dataset-level figures of one model from its per-image rows.

    rows: one dict per image (keys of `image_metrics`, optionally `top1_agree` and
    `top5_agree` booleans; rows without `stain_rate` are left out of its mean);
    originals: the ground truths' `cf_signed` and `cf_abs`, in the same order; curves:
    each image's CMF curves from `image_metrics`, averaged into `cmf` /
    `cmf_rebalanced` (151 floats each, thresholds 0..150).
    """
    if len(rows) != len(originals):
        raise ValueError(f"{len(rows)} rows but {len(originals)} originals")
    out: dict = {"images": len(rows)}
    for key in ("psnr", "ssim", "ciede2000", "auc", "auc_rebalanced", "stain_rate"):
        vals = [r[key] for r in rows if key in r and not math.isnan(r[key])]
        if vals:
            out[key] = float(np.mean(vals))
    out["psnr_capped"] = sum(r["psnr"] >= metrics.PSNR_CAP for r in rows)
    for form in ("signed", "abs"):
        cf = float(np.mean([r[f"cf_{form}"] for r in rows]))
        cf_gt = float(np.mean([o[f"cf_{form}"] for o in originals]))
        out[f"cf_{form}"] = cf
        out[f"cf_{form}_originals"] = cf_gt
        out[f"cf_{form}_ratio"] = cf / cf_gt if cf_gt > 0 else math.nan
        out[f"delta_cf_{form}"] = abs(cf - cf_gt)
        # named apart from Delta-CF, which compares dataset means (docs/design.md 5.3)
        out[f"delta_cf_{form}_per_image"] = float(
            np.mean(
                [
                    abs(r[f"cf_{form}"] - o[f"cf_{form}"])
                    for r, o in zip(rows, originals, strict=True)
                ]
            )
        )
    for key in ("top1_agree", "top5_agree"):
        flags = [bool(r[key]) for r in rows if key in r]
        if flags:
            out[key] = float(np.mean(flags))
    for key in ("cmf", "cmf_rebalanced"):
        found = [c[key] for c in curves or [] if key in c]
        if found:
            out[key] = [float(v) for v in np.mean(found, axis=0)]
    return out


def summarize_models(
    rows: list[dict],
    originals: list[dict],
    curves: dict[str, list[dict[str, np.ndarray]]],
) -> dict[str, dict]:
    """`summarize` for every model label of `curves` (the grey baseline first), each
    colorizer with its PSNR gain over the grey baseline.

    rows: per-image dicts with a "model" key; curves: label -> per-image CMF curves.
    """
    summary = {
        label: summarize([r for r in rows if r["model"] == label], originals, per_image)
        for label, per_image in curves.items()
    }
    for label in summary:
        if label != GRAY:
            summary[label]["psnr_gain_over_gray"] = (
                summary[label]["psnr"] - summary[GRAY]["psnr"]
            )
    return summary


def realism(
    original: np.ndarray, rendered: np.ndarray, seed: int = KID_SEED
) -> dict[str, float]:
    """FD and KID of one model's renderings against the originals.

    original, rendered: float (N, d) judge features, row i of both from photo i
    (paired, see `training.realism`). Returns {"fd", "kid", "kid_std"} (KID's mean and
    standard deviation over subsets), NaN when there are fewer than 2 photos.
    """
    if len(original) < 2:
        return {"fd": math.nan, "kid": math.nan, "kid_std": math.nan}
    kid, kid_std = kernel_inception_distance(original, rendered, paired=True, seed=seed)
    return {"fd": frechet_distance(original, rendered), "kid": kid, "kid_std": kid_std}


def write_rows_csv(rows: list[dict], path: Path) -> None:
    """Per-image rows as CSV, atomically; columns "image", "model", then sorted."""
    keys = sorted(
        {k for r in rows for k in r},
        key=lambda k: (k != "image", k != "model", k),
    )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def _parse_models(specs: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """(label, registry name, weights file or None) for each --model value."""
    parsed = []
    for s in specs:
        name, _, weights = s.partition("=")
        label = name if not weights else f"{name}@{Path(weights).parent.name or 'file'}"
        parsed.append((label, name, weights or None))
    return parsed


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB downscaled so its longer side is at most GRID_SIDE."""
    im = Image.fromarray(rgb)
    im.thumbnail((GRID_SIDE, GRID_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(im)


def evaluate(
    cfg: EvalConfig,
    *,
    judge: SemanticJudge | None = None,
    command: str | None = None,
) -> dict:
    """Run the evaluation.

    judge: the semantic classifier to use when `cfg.semantic` (default: built here).
    command: the command line to record (default: rebuilt from `cfg`).
    Returns {"config", "models": {label: summary}, "rows": per-image dicts, "grid":
    [{"image": key, "cells": {label: uint8 thumbnail}}] for the first
    `cfg.grid_images` photos, columns grey, each model, original}; with `cfg.semantic`
    also "features": {label or "original": float32 (N, 1280) judge features}, and each
    model's summary holds its FD and KID against the originals.
    """
    if cfg.grid_images < 0:
        raise ValueError(f"--grid-images must be >= 0, got {cfg.grid_images}")
    # read before the run: a long evaluation must not record later commits or edits
    git_state = _git_state()
    models = _parse_models(cfg.model)
    colorizers = {label: Colorizer.load(name, w) for label, name, w in models}
    prior = None
    prior_path = Path(cfg.prior) if cfg.prior else WEIGHTS_DIR / "default.prior.npz"
    if prior_path.exists():
        prior = load_prior(prior_path)["prior"]
    else:
        log.warning("no prior at %s: no rebalanced AuC", prior_path)
    if cfg.semantic and judge is None:
        judge = SemanticJudge()
    labels = [GRAY, *colorizers]
    rows: list[dict] = []
    curves: dict[str, list[dict[str, np.ndarray]]] = {label: [] for label in labels}
    originals: list[dict] = []
    grid: list[dict] = []
    features: dict[str, list[np.ndarray]] = {label: [] for label in [ORIGINAL, *labels]}
    hinted = {label: c for label, c in colorizers.items() if c.takes_hints}
    if cfg.hints and not hinted:
        raise ValueError("--hints: none of the models takes hints (e.g. default)")
    if any(k < 0 for k in cfg.hints):
        raise ValueError(f"--hints counts must be >= 0, got {list(cfg.hints)}")
    hint_rows: dict[str, list[dict]] = {label: [] for label in hinted}
    for n, (key, data) in enumerate(iter_encoded(list_sources(list(cfg.data)))):
        if cfg.limit and n >= cfg.limit:
            break
        gt = decode_rgb(data)
        gray = gray_baseline(gt)
        originals.append(
            {
                "cf_signed": metrics.colorfulness(gt, True),
                "cf_abs": metrics.colorfulness(gt, False),
            }
        )
        preds = {GRAY: gray}
        for label, c in colorizers.items():
            out = c.colorize(gray, cfg.size, temperature=cfg.temperature)
            preds[label] = np.asarray(out.convert("RGB"))
        semantic: dict[str, dict] = {label: {} for label in preds}
        if cfg.semantic:
            top5, feats = judge.top5_and_features([gt, *preds.values()])
            for label, f in zip([ORIGINAL, *preds], feats, strict=True):
                features[label].append(f)
            for label, pred_top5 in zip(preds, top5[1:], strict=True):
                top1_agree, top5_agree = agreement(top5[0], pred_top5)
                semantic[label] = {
                    "gt_top1": int(top5[0][0]),
                    "top1": int(pred_top5[0]),
                    "top1_agree": top1_agree,
                    "top5_agree": top5_agree,
                }
        for label, pred in preds.items():
            row, image_curves = image_metrics(gt, pred, prior)
            rows.append(
                {
                    "image": key,
                    "model": label,
                    **row,
                    "gt_cf_signed": originals[-1]["cf_signed"],
                    "gt_cf_abs": originals[-1]["cf_abs"],
                    **semantic[label],
                }
            )
            curves[label].append(image_curves)
        if cfg.hints:
            for label, c in hinted.items():
                hint_rows[label] += hint_curve_rows(
                    c, gt, gray, n, tuple(cfg.hints), cfg.size, cfg.temperature
                )
        if cfg.report and n < cfg.grid_images:
            cells = {label: _thumbnail(pred) for label, pred in preds.items()}
            grid.append({"image": key, "cells": {**cells, ORIGINAL: _thumbnail(gt)}})
        if (n + 1) % 20 == 0:
            log.info("%d images", n + 1)
    if not originals:
        raise FileNotFoundError(f"no photos in {list(cfg.data)}")
    summary = summarize_models(rows, originals, curves)
    for label, hrows in hint_rows.items():
        if hrows:
            summary[label]["hint_curve"] = summarize_hint_curve(hrows)
    stacked: dict[str, np.ndarray] = {}
    if cfg.semantic:
        stacked = {label: np.stack(f) for label, f in features.items()}
        for label in labels:
            summary[label].update(realism(stacked[ORIGINAL], stacked[label]))
    record = _config_record(
        cfg,
        models,
        prior_path if prior is not None else None,
        command or _command_from_config(cfg),
        git_state,
    )
    if cfg.semantic:
        record["semantic_judge"] = judge.describe()
        record["realism"] = {
            "features": "semantic judge's pooled features, paired by photo",
            "kid_kernel": "(x.y / d + 1)^3",
            "kid_subset_size": kid_subset_size(len(originals), KID_SUBSET_SIZE),
            "kid_subsets": KID_SUBSETS,
            "kid_seed": KID_SEED,
        }
    result = {"config": record, "models": summary, "rows": rows, "grid": grid}
    if stacked:
        result["features"] = stacked
    return result


def _command_from_config(cfg: EvalConfig) -> str:
    """A command line that reproduces `cfg` (fields that differ from the defaults)."""
    args = ["python", "-m", "training.evaluate"]
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if value == f.default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{f.name.replace('_', '-')}")
        elif isinstance(value, tuple):
            args += [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return shlex.join(args)


def _git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True)
    except OSError:
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _git_state() -> dict:
    """The checkout's commit and whether tracked files differ from it."""
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        # uncommitted changes to tracked files when the evaluation started
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _repo_path(path: Path) -> str:
    """`path` relative to the repository when it lies inside it (reports must not
    record the machine they were made on), else as given."""
    root = Path(__file__).resolve().parents[1]
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _config_record(
    cfg: EvalConfig,
    models: list,
    prior_path: Path | None,
    command: str,
    git_state: dict,
) -> dict:
    weights = {}
    manifest = read_manifest()
    for label, name, w in models:
        path = Path(w) if w else WEIGHTS_DIR / manifest.get(name, {}).get("file", "")
        weights[label] = file_sha256(path) if path.is_file() else None
    return {
        "command": command,
        **git_state,
        "data": list(cfg.data),
        "size": cfg.size,
        "limit": cfg.limit,
        "temperature": cfg.temperature,
        "semantic": cfg.semantic,
        "weights_sha256": weights,
        "prior": _repo_path(prior_path) if prior_path else None,
        "prior_sha256": file_sha256(prior_path) if prior_path else None,
        "cmf_thresholds": [
            float(metrics.AUC_THRESHOLDS[0]),
            float(metrics.AUC_THRESHOLDS[-1]),
        ],
    }


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "model"


def _write_grid(grid: list[dict], out: Path) -> list[dict]:
    """Save the grid thumbnails as JPEGs under out/images/; returns their rel. paths."""
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    grid_paths = []
    for n, entry in enumerate(grid):
        cells = {}
        for label, rgb in entry["cells"].items():
            rel = f"images/{n:03d}-{_slug(label)}.jpg"
            buf = io.BytesIO()
            Image.fromarray(rgb).save(
                buf, "JPEG", quality=GRID_JPEG_QUALITY, subsampling=0
            )
            atomic_write_bytes(out / rel, buf.getvalue())
            cells[label] = rel
        grid_paths.append({"image": entry["image"], "cells": cells})
    return grid_paths


def write_report(result: dict, out: Path, html: bool = True) -> Path | None:
    """summary.json, per_image.csv (with its .meta.json) into `out`, atomically, and
    features.npz (float32 (N, 1280) judge features per model label and "original") when
    the judge ran; with `html` also report.html, its plots/ and the grid's images/.

    Returns the path of report.html, or None.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"config": result["config"], "models": result["models"]}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    write_rows_csv(result["rows"], out / "per_image.csv")
    write_meta(out / "per_image.csv", summary, "training.evaluate per-image rows")
    if result.get("features"):
        # the judge's features, to measure FD and KID against other runs' renderings
        buf = io.BytesIO()
        np.savez_compressed(buf, **result["features"])
        atomic_write_bytes(out / "features.npz", buf.getvalue())
        write_meta(out / "features.npz", summary, "semantic judge pooled features")
    if not html:
        return None
    grid_paths = _write_grid(result.get("grid", []), out)
    return write_html_report(out, summary, result["rows"], grid_paths)


def format_table(summary: dict) -> str:
    """A plain-text table of the main figures, one row per model."""
    cols = [
        ("psnr", "PSNR dB"),
        ("stain_rate", "stain"),
        ("kid", "KID x1e3"),
        ("kid_std", "std x1e3"),
        ("fd", "FD"),
        ("top1_agree", "top-1 agr"),
        ("ssim", "SSIM"),
        ("ciede2000", "dE00"),
        ("auc", "AuC"),
        ("auc_rebalanced", "AuC rb"),
        ("cf_signed", "CF"),
        ("cf_signed_ratio", "CF ratio"),
        ("cf_abs", "CF abs"),
        ("top5_agree", "top-5 agr"),
    ]
    lines = ["model".ljust(24) + "".join(h.rjust(10) for _, h in cols)]
    scale = {"kid": 1000.0, "kid_std": 1000.0}
    for label, s in summary.items():
        cells = "".join(
            (f"{scale.get(k, 1.0) * s[k]:10.4f}" if k in s else "         -")
            for k, _ in cols
        )
        lines.append(label.ljust(24) + cells)
    for label, s in summary.items():
        curve = s.get("hint_curve")
        if not curve:
            continue
        lines.append(f"{label} with K random hints:  K  PSNR dB   AuC  stain")
        for i, k in enumerate(curve["hints"]):
            lines.append(
                f"{'':>24}{k:>4}  {curve['psnr'][i]:7.3f}  {curve['auc'][i]:.4f}  "
                f"{curve['stain_rate'][i]:.4f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description=__doc__.split("\n\n")[0],
        conflict_handler="resolve",  # to redefine --model and --data below
    )
    add_dataclass_args(parser, EvalConfig)
    # `--model A --model B` must mean both (a plain nargs="+" keeps the last); an
    # "extend" action would extend its default, so the default is filled in after.
    for f in fields(EvalConfig):
        if f.name in ("model", "data"):
            parser.add_argument(
                f"--{f.name}",
                action="extend",
                nargs="+",
                default=None,
                help=f"{f.metadata['help']} (default: {' '.join(f.default)})",
            )

    def run(args: argparse.Namespace) -> int:
        for name in ("model", "data"):
            if getattr(args, name) is None:
                setattr(args, name, getattr(EvalConfig, name))
        cfg = dataclass_from_args(EvalConfig, args)
        if cfg.grid_images < 0 or cfg.limit < 0:
            parser.error("--grid-images and --limit must be >= 0")
        raw = sys.argv[1:] if argv is None else argv
        command = shlex.join(["python", "-m", "training.evaluate", *raw])
        result = evaluate(cfg, command=command)
        print(format_table(result["models"]))
        if cfg.out:
            html = write_report(result, Path(cfg.out), html=cfg.report)
            print(html or Path(cfg.out) / "summary.json")
        return 0

    # missing or altered weights are user errors; FileNotFoundError: a missing --prior
    return run_main(parser, argv, run, errors=(FileNotFoundError,))


if __name__ == "__main__":
    raise SystemExit(main())

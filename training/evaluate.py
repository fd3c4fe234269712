"""Evaluate colorizers on colour photos against the grey baseline.

    python -m training.evaluate --model default \
        --data ../shared/data/test/bsds500-test --size 256 --out reports/default-bsds

For each photo: convert it to grey (its own lightness, a = b = 0), colorize the grey
image with each model through `Colorizer`, and compare with the original
(COLORIZATION.md 6): PSNR, SSIM, mean CIEDE2000, colourfulness (signed and DDColor's
absolute form), AuC of the ab-error CDF (plain and class-rebalanced). The grey baseline
is always included.

A model is `NAME` (shipped weights) or `NAME=WEIGHTS_FILE` (e.g. a training run's
best.weights.h5). Writes `summary.json` and `per_image.csv` into --out and prints the
summary table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import metrics
from core.atomic import atomic_write_bytes
from core.colorizer import Colorizer
from core.colorspace import gray_level, rgb_to_lab
from core.config import add_dataclass_args, dataclass_from_args
from core.weights import WEIGHTS_DIR, file_sha256, read_manifest
from training.data import iter_encoded, list_sources
from training.prior import load_prior

__all__ = ["EvalConfig", "evaluate", "gray_baseline", "main", "summarize"]

log = logging.getLogger(__name__)

GRAY = "gray"


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


def gray_baseline(rgb: np.ndarray) -> np.ndarray:
    """The grey rendering g(L) of a uint8 RGB image, as uint8 (H, W, 3)."""
    lightness = rgb_to_lab(rgb)[..., 0]
    g = np.round(gray_level(lightness) * 255.0).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def image_metrics(gt: np.ndarray, pred: np.ndarray, prior: np.ndarray | None) -> dict:
    """All per-image figures of one prediction against its ground truth (uint8 RGB)."""
    row = {
        "psnr": metrics.psnr(gt, pred),
        "ssim": metrics.ssim(gt, pred) if min(gt.shape[:2]) >= 7 else math.nan,
        "ciede2000": metrics.ciede2000(gt, pred),
        "cf_signed": metrics.colorfulness(pred, signed=True),
        "cf_abs": metrics.colorfulness(pred, signed=False),
    }
    cmf = metrics.ab_error_cmf(gt, pred)
    row["auc"] = metrics.auc(cmf)
    if prior is not None:
        row["auc_rebalanced"] = metrics.auc(metrics.ab_error_cmf(gt, pred, prior))
    return row


def summarize(rows: list[dict], originals: list[dict]) -> dict:
    """Dataset-level figures of one model from its per-image rows."""
    out: dict = {"images": len(rows)}
    for key in ("psnr", "ssim", "ciede2000", "auc", "auc_rebalanced"):
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
    return out


def _parse_models(specs: tuple[str, ...]) -> list[tuple[str, str, str | None]]:
    """(label, registry name, weights file or None) for each --model value."""
    parsed = []
    for s in specs:
        name, _, weights = s.partition("=")
        label = name if not weights else f"{name}@{Path(weights).parent.name or 'file'}"
        parsed.append((label, name, weights or None))
    return parsed


def evaluate(cfg: EvalConfig) -> dict:
    """Run the evaluation; returns {"config", "models": {label: summary}, "rows"}."""
    models = _parse_models(cfg.model)
    colorizers = {label: Colorizer.load(name, w) for label, name, w in models}
    prior = None
    prior_path = Path(cfg.prior) if cfg.prior else WEIGHTS_DIR / "default.prior.npz"
    if prior_path.exists():
        prior = load_prior(prior_path)["prior"]
    rows: list[dict] = []
    originals: list[dict] = []
    for n, (key, data) in enumerate(iter_encoded(list_sources(list(cfg.data)))):
        if cfg.limit and n >= cfg.limit:
            break
        gt = _decode(data)
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
        for label, pred in preds.items():
            rows.append(
                {"image": key, "model": label, **image_metrics(gt, pred, prior)}
            )
        if (n + 1) % 20 == 0:
            log.info("%d images", n + 1)
    labels = [GRAY, *colorizers]
    summary = {
        label: summarize([r for r in rows if r["model"] == label], originals)
        for label in labels
    }
    for label in colorizers:
        summary[label]["psnr_gain_over_gray"] = (
            summary[label]["psnr"] - summary[GRAY]["psnr"]
        )
    return {"config": _config_record(cfg, models), "models": summary, "rows": rows}


def _config_record(cfg: EvalConfig, models: list) -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    weights = {}
    manifest = read_manifest()
    for label, name, w in models:
        path = Path(w) if w else WEIGHTS_DIR / manifest.get(name, {}).get("file", "")
        weights[label] = file_sha256(path) if path.is_file() else None
    return {
        "command": "python -m training.evaluate " + " ".join(sys.argv[1:]),
        "commit": commit,
        "data": list(cfg.data),
        "size": cfg.size,
        "temperature": cfg.temperature,
        "weights_sha256": weights,
    }


def write_report(result: dict, out: Path) -> None:
    """summary.json and per_image.csv into `out`, atomically."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {"config": result["config"], "models": result["models"]}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    keys = sorted(
        {k for r in result["rows"] for k in r},
        key=lambda k: (k != "image", k != "model", k),
    )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(result["rows"])
    atomic_write_bytes(out / "per_image.csv", buf.getvalue().encode())


def format_table(summary: dict) -> str:
    """A plain-text table of the main figures, one row per model."""
    cols = [
        ("psnr", "PSNR dB"),
        ("ssim", "SSIM"),
        ("ciede2000", "dE00"),
        ("auc", "AuC"),
        ("auc_rebalanced", "AuC rb"),
        ("cf_signed", "CF"),
        ("cf_signed_ratio", "CF ratio"),
        ("cf_abs", "CF abs"),
    ]
    lines = ["model".ljust(24) + "".join(h.rjust(10) for _, h in cols)]
    for label, s in summary.items():
        cells = "".join((f"{s[k]:10.4f}" if k in s else "         -") for k, _ in cols)
        lines.append(label.ljust(24) + cells)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate", description=__doc__.split("\n\n")[0]
    )
    add_dataclass_args(parser, EvalConfig)
    cfg = dataclass_from_args(EvalConfig, parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = evaluate(cfg)
    if cfg.out:
        write_report(result, Path(cfg.out))
    print(format_table(result["models"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

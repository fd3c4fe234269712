"""The paper's question, measured: cGAN vs VGG16 regression vs VGG16 classification.

    python -m training.compare --data ../shared/data/test/bsds500-test --size 256 \
        --out docs/results/paper-comparison --doc docs/paper_comparison.md

Evaluates on the same photos, with the metrics of `training.evaluate` (colourfulness
and its ratio to the originals, AuC plain and rebalanced, PSNR, SSIM, CIEDE2000):
the grey baseline; the cGAN (one sample, and five samples: their mean figures and
their spread); VGG16 regression; VGG16 classification decoded by argmax (what the paper
did) and by annealed mean (T = 0.38) of the rebalanced model; the default model.
Writes `summary.json`, `per_image.csv` and `comparison.png` (sample colorizations side
by side) into --out and the generated Markdown page --doc, whose table also states each
model's training budget from its manifest entry. A model without weights is left out
with a one-line warning. `--weights NAME=FILE` evaluates a run's file instead of the
shipped one.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core import metrics
from core.atomic import atomic_write_bytes
from core.cli import run_main
from core.colorizer import Colorizer
from core.colorspace import rgb_to_lab
from core.imageio import decode_rgb
from core.models import UnknownModelError
from core.quantize import ANNEALED_T
from core.weights import (
    WEIGHTS_DIR,
    MissingWeightsError,
    WeightsChecksumError,
    file_sha256,
    read_manifest,
)
from training.data import iter_encoded, list_sources
from training.evaluate import (
    GRAY,
    gray_baseline,
    image_metrics,
    summarize_models,
    write_rows_csv,
)
from training.prior import load_prior

__all__ = ["VARIANTS", "Variant", "compare", "main", "markdown"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One column of the comparison: a model decoded one way."""

    label: str
    model: str
    temperature: float = ANNEALED_T
    samples: int = 1  # > 1: that many seeds, figures averaged, spread measured
    what: str = ""


VARIANTS = (
    Variant("cgan (1 sample)", "cgan", what="cGAN in YUV, seed 0"),
    Variant("cgan (5 samples)", "cgan", samples=5, what="mean over seeds 0-4"),
    Variant("vgg16-reg", "vgg16-reg", what="VGG16, ab regression (MSE)"),
    Variant(
        "vgg16-cls argmax",
        "vgg16-cls",
        temperature=0.0,
        what="VGG16, 313 bins, rebalanced, argmax",
    ),
    Variant(
        "vgg16-cls annealed",
        "vgg16-cls",
        what=f"VGG16, 313 bins, rebalanced, annealed mean T={ANNEALED_T}",
    ),
    Variant("default", "default", what="U-Net on EfficientNet-Lite0 (ours)"),
)

FIG_SIDE = 160  # height of one panel in comparison.png


def _load(variants, weights: dict[str, str]) -> dict[str, Colorizer]:
    """One Colorizer per model name; models without weights are left out."""
    loaded: dict[str, Colorizer] = {}
    for name in dict.fromkeys(v.model for v in variants):
        try:
            loaded[name] = Colorizer.load(name, weights.get(name))
        except (
            UnknownModelError,
            MissingWeightsError,
            WeightsChecksumError,
            FileNotFoundError,
        ) as err:
            print(f"warning: {name} left out: {err}", file=sys.stderr)
    return loaded


def _spread(preds: list[np.ndarray]) -> float:
    """Mean over pixels of the per-pixel std of ab across samples (CIE units)."""
    ab = np.stack([rgb_to_lab(p)[..., 1:] for p in preds])
    return float(np.mean(np.sqrt(np.sum(np.var(ab, axis=0), axis=-1))))


def compare(
    data: list[str],
    size: int = 256,
    weights: dict[str, str] | None = None,
    limit: int = 0,
    figure_images: int = 6,
    variants: tuple[Variant, ...] = VARIANTS,
) -> dict:
    """Evaluate every variant; returns {"models", "rows", "figure", "variants"}.

    data: folders or .tar shards of colour photos. figure: rows of uint8 panels for
    the first `figure_images` photos (grey, each variant's first sample, original).
    """
    weights = weights or {}
    colorizers = _load(variants, weights)
    variants = tuple(v for v in variants if v.model in colorizers)
    prior_path = WEIGHTS_DIR / "default.prior.npz"
    prior = load_prior(prior_path)["prior"] if prior_path.exists() else None
    labels = [GRAY, *(v.label for v in variants)]
    rows: list[dict] = []
    curves: dict[str, list] = {label: [] for label in labels}
    spreads: dict[str, list[float]] = {v.label: [] for v in variants if v.samples > 1}
    originals: list[dict] = []
    figure: list[dict] = []
    for n, (key, blob) in enumerate(iter_encoded(list_sources(data))):
        if limit and n >= limit:
            break
        gt = decode_rgb(blob)
        gray = gray_baseline(gt)
        originals.append(
            {
                "cf_signed": metrics.colorfulness(gt, signed=True),
                "cf_abs": metrics.colorfulness(gt, signed=False),
            }
        )
        panels = {GRAY: gray}
        # one colorization and one set of metrics per (model, temperature, seed): the
        # one-sample cGAN is the first of the five
        cache: dict[tuple, tuple[np.ndarray, tuple]] = {}
        results = [(GRAY, [(gray, image_metrics(gt, gray, prior))])]
        for v in variants:
            outs = []
            for seed in range(v.samples):
                key = (v.model, v.temperature, seed)
                if key not in cache:
                    pred = np.asarray(
                        colorizers[v.model].colorize(
                            gray, size, temperature=v.temperature, seed=seed
                        )
                    )
                    cache[key] = (pred, image_metrics(gt, pred, prior))
                outs.append(cache[key])
            results.append((v.label, outs))
        for label, outs in results:
            preds = [p for p, _ in outs]
            per_sample = [m for _, m in outs]
            row = {
                k: float(np.mean([r[k] for r, _ in per_sample]))
                for k in per_sample[0][0]
            }
            curve = {
                k: np.mean([c[k] for _, c in per_sample], axis=0)
                for k in per_sample[0][1]
            }
            if len(preds) > 1:
                row["sample_spread_ab"] = _spread(preds)
                row["psnr_std_over_samples"] = float(
                    np.std([r["psnr"] for r, _ in per_sample])
                )
                spreads[label].append(row["sample_spread_ab"])
            rows.append({"image": key, "model": label, **row})
            curves[label].append(curve)
            panels.setdefault(label, preds[0])
        if n < figure_images:
            figure.append({"image": key, "panels": {**panels, "original": gt}})
        if (n + 1) % 20 == 0:
            log.info("%d images", n + 1)
    if not originals:
        raise FileNotFoundError(f"no photos in {data}")
    models = summarize_models(rows, originals, curves)
    for label in spreads:
        models[label]["sample_spread_ab"] = float(np.mean(spreads[label]))
        models[label]["psnr_std_over_samples"] = float(
            np.mean([r["psnr_std_over_samples"] for r in rows if r["model"] == label])
        )
    return {
        "models": models,
        "rows": rows,
        "figure": figure,
        "variants": [v.__dict__ for v in variants],
        "weights": {
            name: _weights_record(name, weights.get(name)) for name in colorizers
        },
    }


def _weights_record(name: str, override: str | None) -> dict:
    """The file used and, for shipped weights, the manifest's training record."""
    if override:
        return {"file": override, "sha256": file_sha256(Path(override))}
    entry = read_manifest().get(name, {})
    return {
        "file": entry.get("file"),
        "sha256": entry.get("sha256"),
        "training": entry.get("training", {}),
    }


def _budget(record: dict) -> str:
    t = record.get("training", {})
    seconds = t.get("train_seconds")
    if not seconds:
        return "-"
    what = f"{seconds / 60:.0f} min wall on 2 shared cores"
    if "steps" in t:
        what += f", {t['steps']} steps"
    if "batch_size" in t:
        what += f" of {t['batch_size']}"
    return what


def figure_png(figure: list[dict]) -> bytes:
    """The sample grid: one row per photo, columns grey | variants | original."""
    if not figure:
        return b""
    cols = list(figure[0]["panels"])
    widths = []
    for entry in figure:
        h, w = entry["panels"]["original"].shape[:2]
        widths.append(round(w * FIG_SIDE / h))
    col_w = max(widths)
    head = 18
    canvas = Image.new(
        "RGB", (len(cols) * (col_w + 4), head + len(figure) * (FIG_SIDE + 4)), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(cols):
        draw.text((j * (col_w + 4) + 2, 3), label, fill="black")
    for i, entry in enumerate(figure):
        for j, label in enumerate(cols):
            im = Image.fromarray(entry["panels"][label]).resize(
                (widths[i], FIG_SIDE), Image.Resampling.LANCZOS
            )
            canvas.paste(im, (j * (col_w + 4), head + i * (FIG_SIDE + 4)))
    buf = io.BytesIO()
    canvas.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _fmt(v: float | None, digits: int = 3) -> str:
    return (
        "-"
        if v is None or (isinstance(v, float) and math.isnan(v))
        else (f"{v:.{digits}f}")
    )


def markdown(result: dict, command: str, figure_rel: str) -> str:
    """The generated page: table, findings computed from the numbers, figure."""
    m = result["models"]
    budgets = {
        v["label"]: _budget(result["weights"].get(v["model"], {}))
        for v in result["variants"]
    }
    lines = [
        "# The paper's models compared",
        "",
        "Generated by `training.compare` from measured data; do not edit by hand.",
        "",
        f"Command: `{command}`",
        "",
        "| model | PSNR dB | gain over grey | SSIM | AuC | AuC rebal. | CF | CF ratio "
        "| dE00 | spread (ab) | training budget |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, s in m.items():
        lines.append(
            f"| {label} | {_fmt(s['psnr'], 2)}"
            f" | {_fmt(s.get('psnr_gain_over_gray'), 2)}"
            f" | {_fmt(s.get('ssim'), 4)} | {_fmt(s['auc'], 4)}"
            f" | {_fmt(s.get('auc_rebalanced'), 4)} | {_fmt(s['cf_signed'], 1)}"
            f" | {_fmt(s['cf_signed_ratio'])} | {_fmt(s['ciede2000'], 2)}"
            f" | {_fmt(s.get('sample_spread_ab'), 2)} | {budgets.get(label, '-')} |"
        )
    lines += ["", *_findings(m), "", f"![sample colorizations]({figure_rel})", ""]
    lines += [
        "Columns: PSNR on RGB; AuC of the ab-error CDF over 0..150 (plain and "
        "class-rebalanced); CF = Hasler-Suesstrunk colourfulness (signed form) and its "
        "ratio to the originals' mean; spread = mean per-pixel standard deviation of "
        "ab across the cGAN's five samples (seeds 0-4). Every model sees the same "
        "grey rendering of each photo; the cGAN works at its fixed 64x64 and its UV is "
        "upsampled onto the full-resolution luma.",
        "",
    ]
    return "\n".join(lines)


def _findings(m: dict) -> list[str]:
    """Sentences computed from the table (each only when its rows exist)."""
    out = []
    reg, arg, ann = (
        m.get("vgg16-reg"),
        m.get("vgg16-cls argmax"),
        m.get("vgg16-cls annealed"),
    )
    if reg and arg:
        better = "regression" if reg["psnr"] > arg["psnr"] else "classification/argmax"
        out.append(
            f"- The paper's ranking (regression better than classification with "
            f"argmax): by PSNR {better} is better here ({reg['psnr']:.2f} vs "
            f"{arg['psnr']:.2f} dB; AuC {reg['auc']:.4f} vs {arg['auc']:.4f}; CF ratio "
            f"{reg['cf_signed_ratio']:.3f} vs {arg['cf_signed_ratio']:.3f})."
        )
    if reg and ann:
        out.append(
            f"- Annealed mean on the rebalanced classifier vs regression: PSNR "
            f"{ann['psnr']:.2f} vs {reg['psnr']:.2f} dB, AuC {ann['auc']:.4f} vs "
            f"{reg['auc']:.4f}, CF ratio {ann['cf_signed_ratio']:.3f} vs "
            f"{reg['cf_signed_ratio']:.3f}: "
            + (
                "the classifier is more colourful"
                if ann["cf_signed_ratio"] > reg["cf_signed_ratio"]
                else "regression stays more colourful"
            )
            + (
                " and also wins on PSNR."
                if ann["psnr"] > reg["psnr"]
                else ", while regression keeps the better PSNR (its averaged, greyer "
                "colours are what PSNR rewards)."
            )
        )
    if arg and ann:
        out.append(
            f"- Argmax vs annealed mean on the same classifier: PSNR {arg['psnr']:.2f}"
            f" -> {ann['psnr']:.2f} dB, CF ratio {arg['cf_signed_ratio']:.3f} -> "
            f"{ann['cf_signed_ratio']:.3f}."
        )
    gan = m.get("cgan (5 samples)")
    if gan and "sample_spread_ab" in gan:
        out.append(
            f"- The cGAN's five samples differ by {gan['sample_spread_ab']:.2f} ab "
            f"units per pixel on average (PSNR varies by "
            f"{gan['psnr_std_over_samples']:.3f} dB across samples)."
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", nargs="+", default=["../shared/data/test/bsds500-test"]
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("reports/paper-comparison"))
    parser.add_argument("--doc", type=Path, help="generated Markdown page to write")
    parser.add_argument("--limit", type=int, default=0, help="first N photos only")
    parser.add_argument("--figure-images", type=int, default=6)
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="evaluate this weights file for model NAME (repeatable)",
    )

    def run(args: argparse.Namespace) -> int:
        weights = {}
        for item in args.weights:
            name, sep, path = item.partition("=")
            if not sep:
                parser.error(f"--weights {item!r} is not NAME=FILE")
            weights[name] = path
        raw = sys.argv[1:] if argv is None else argv
        command = shlex.join(["python", "-m", "training.compare", *raw])
        result = compare(args.data, args.size, weights, args.limit, args.figure_images)
        _write(result, command, args.out, args.doc)
        return 0

    return run_main(parser, argv, run, errors=(FileNotFoundError,))


def _write(result: dict, command: str, out: Path, doc: Path | None) -> None:
    """Write the comparison's files and print its table."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {k: result[k] for k in ("models", "variants", "weights")}
    summary["command"] = command
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    write_rows_csv(result["rows"], out / "per_image.csv")
    atomic_write_bytes(out / "comparison.png", figure_png(result["figure"]))
    if doc:
        rel = Path(os.path.relpath(out / "comparison.png", doc.parent))
        atomic_write_bytes(doc, markdown(result, command, rel.as_posix()).encode())
        print(doc)
    for label, s in result["models"].items():
        print(
            f"{label:22s} PSNR {s['psnr']:.2f}  AuC {s['auc']:.4f}  "
            f"CF ratio {s['cf_signed_ratio']:.3f}  SSIM {s.get('ssim', math.nan):.4f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())

"""The evaluation's HTML report: one self-contained page, readable offline.

Written by `python -m training.evaluate --out DIR` (unless `--no-report`) as
`DIR/report.html`, beside `summary.json` and `per_image.csv`. It shows the run's record
(command, commit, data, size, weights SHA-256), the summary table (every model, the grey
baseline and the originals), the AuC curves and colourfulness histograms (PNG files
under `DIR/plots/`, with `.meta.json` sidecars, docs/design.md 7.6) and a grid of the
first photos (grey | each model | original, JPEG files under `DIR/images/`). Every
reference is a relative path; the page loads no script, style sheet or font.
"""

from __future__ import annotations

import html
import io
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from core.atomic import atomic_write_bytes
from core.metrics import AUC_THRESHOLDS

__all__ = [
    "SUMMARY_FIELDS",
    "SummaryField",
    "format_value",
    "format_with_std",
    "plot_auc_curves",
    "plot_colorfulness",
    "write_html_report",
    "write_meta",
]

log = logging.getLogger(__name__)

GRAY = "gray"
ORIGINAL = "original"
PLOT_DPI = 100


@dataclass(frozen=True)
class SummaryField:
    """One summary figure: its summary.json key, label and display format."""

    key: str
    label: str
    kind: str  # "float2", "float3", "float4", "percent", "count", "gain", "kid"
    std_key: str | None = None  # the key of its standard deviation, shown as "± std"


# The summary figures in display order (docs/design.md 5).
SUMMARY_FIELDS: tuple[SummaryField, ...] = (
    SummaryField("images", "photos", "count"),
    SummaryField("psnr", "PSNR, RGB (dB)", "float2"),
    SummaryField("psnr_capped", "photos with PSNR capped at 100 dB", "count"),
    SummaryField(
        "psnr_gain_over_gray", "PSNR gain over the grey baseline (dB)", "gain"
    ),
    SummaryField(
        "stain_rate",
        "stain rate: pixels with chroma > 20 and ab error > 30 (%)",
        "percent",
    ),
    SummaryField(
        "kid",
        "KID x 1000 (± std over subsets), EfficientNet-Lite2 features",
        "kid",
        std_key="kid_std",
    ),
    SummaryField("fd", "Fréchet distance, EfficientNet-Lite2 features", "float3"),
    SummaryField("top1_agree", "top-1 agreement, EfficientNet-Lite2 (%)", "percent"),
    SummaryField("ssim", "SSIM", "float4"),
    SummaryField("ciede2000", "mean CIEDE2000 (dE00)", "float2"),
    SummaryField("auc", "AuC of the ab-error CMF, 0..150, plain (%)", "percent"),
    SummaryField("auc_rebalanced", "AuC, class-rebalanced (%)", "percent"),
    SummaryField(
        "cf_signed", "colourfulness, signed form (Hasler-Suesstrunk)", "float2"
    ),
    SummaryField(
        "cf_signed_ratio", "colourfulness ratio to originals, signed", "float3"
    ),
    SummaryField(
        "delta_cf_signed", "Delta-CF, signed (|mean CF - mean CF_gt|)", "float2"
    ),
    SummaryField(
        "delta_cf_signed_per_image",
        "per-image mean |CF - CF_gt|, signed",
        "float2",
    ),
    SummaryField("cf_abs", "colourfulness, absolute-value form (DDColor)", "float2"),
    SummaryField("cf_abs_ratio", "colourfulness ratio to originals, abs", "float3"),
    SummaryField("delta_cf_abs", "Delta-CF, abs (|mean CF - mean CF_gt|)", "float2"),
    SummaryField(
        "delta_cf_abs_per_image", "per-image mean |CF - CF_gt|, abs", "float2"
    ),
    SummaryField("top5_agree", "top-5 agreement, EfficientNet-Lite2 (%)", "percent"),
)

_FORMATS: dict[str, Callable[[float], str]] = {
    "float2": lambda v: f"{v:.2f}",
    "float3": lambda v: f"{v:.3f}",
    "float4": lambda v: f"{v:.4f}",
    "percent": lambda v: f"{100 * v:.2f}",
    "count": lambda v: f"{int(v)}",
    "gain": lambda v: f"{v:+.2f}",
    "kid": lambda v: f"{1000 * v:.2f}",  # KID x 10^3, as usually reported
}

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; text-align: left; }
code { font-size: 0.9em; word-break: break-all; }
.grid td { vertical-align: top; text-align: center; font-size: 0.8em; }
.grid img { display: block; max-width: 256px; height: auto; margin: auto; }
figure img { max-width: 100%; height: auto; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
"""


def format_value(value: object, kind: str) -> str:
    """A summary value as displayed: fixed decimals, percentages times 100."""
    if value is None or isinstance(value, str | list | dict):
        return "-"
    v = float(value)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf"
    return _FORMATS[kind](v)


def format_with_std(value: object, std: object, kind: str) -> str:
    """`format_value` of a value followed by " ± " and its standard deviation in the
    same format; the value alone when the deviation is missing, "-" without a value."""
    text = format_value(value, kind)
    spread = format_value(std, kind)
    if text == "-" or spread == "-":
        return text
    return f"{text} ± {spread}"


def _meta(summary: dict, made_from: str) -> dict:
    """A generated file's record (docs/design.md 7.6) from the evaluation's config."""
    config = summary.get("config", {})
    meta = {
        "command": config.get("command", ""),
        "commit": config.get("commit", ""),
        "dirty": config.get("dirty"),
        "data": config.get("data"),
        "size": config.get("size"),
        "weights_sha256": config.get("weights_sha256", {}),
        "made_from": made_from,
    }
    if "semantic_judge" in config:
        meta["semantic_judge_sha256"] = config["semantic_judge"].get("weights_sha256")
    return meta


def write_meta(path: Path, summary: dict, made_from: str) -> Path:
    """Write `<path>.meta.json`: command, commit and weights SHA-256 of `path`."""
    meta_path = path.with_name(path.name + ".meta.json")
    data = json.dumps(_meta(summary, made_from), indent=2).encode()
    atomic_write_bytes(meta_path, data)
    return meta_path


def _save_png(fig: Figure, path: Path, summary: dict, made_from: str) -> Path:
    buf = io.BytesIO()
    # no Software tag: the same figures give the same bytes
    fig.savefig(buf, format="png", dpi=PLOT_DPI, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    write_meta(path, summary, made_from)
    return path


def _model_labels(summary: dict) -> list[str]:
    """Model labels, grey baseline first."""
    labels = list(summary["models"])
    return sorted(labels, key=lambda label: label != GRAY)


def plot_auc_curves(summary: dict, path: Path) -> Path | None:
    """CMF of the per-pixel ab error vs threshold, each model and grey; PNG at `path`.

    Returns the path, or None when the summary holds no `cmf` curves.
    """
    kinds = [
        (k, title)
        for k, title in (("cmf", "plain"), ("cmf_rebalanced", "class-rebalanced"))
        if any(k in s for s in summary["models"].values())
    ]
    if not kinds:
        return None
    fig = Figure(figsize=(5.5 * len(kinds), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (key, title) in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        auc_key = "auc" if key == "cmf" else "auc_rebalanced"
        for label in _model_labels(summary):
            s = summary["models"][label]
            if key not in s:
                continue
            style = "--" if label == GRAY else "-"
            auc = format_value(s.get(auc_key), "percent")
            ax.plot(
                AUC_THRESHOLDS[: len(s[key])],
                s[key],
                style,
                label=f"{label} (AuC {auc} %)",
            )
        ax.set_xlim(AUC_THRESHOLDS[0], AUC_THRESHOLDS[-1])
        ax.set_ylim(0, 1.0)
        ax.set_xlabel("threshold on the ab error ||ab_pred - ab_gt||")
        ax.set_ylabel("fraction of pixels within threshold (CMF)")
        ax.set_title(f"AuC curves, {title}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    return _save_png(fig, path, summary, "summary.json models.<label>.cmf")


def plot_colorfulness(summary: dict, rows: list[dict], path: Path) -> Path | None:
    """Histograms of per-image colourfulness: originals vs each model; PNG at `path`.

    rows: per-image rows with `cf_signed`, `cf_abs` and the originals' `gt_cf_signed`,
    `gt_cf_abs`. The grey baseline (0 everywhere) is left out. Returns the path, or
    None when there is nothing to plot.
    """
    labels = [label for label in _model_labels(summary) if label != GRAY]
    if not rows:
        return None
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (form, name) in enumerate(
        (("signed", "signed form (Hasler-Suesstrunk)"), ("abs", "abs form (DDColor)"))
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        originals: dict[str, float] = {}
        for r in rows:
            if f"gt_cf_{form}" in r:
                originals.setdefault(str(r["image"]), float(r[f"gt_cf_{form}"]))
        series = [(f"originals ({len(originals)})", list(originals.values()))]
        for label in labels:
            vals = [float(r[f"cf_{form}"]) for r in rows if r["model"] == label]
            series.append((label, vals))
        everything = [v for _, vals in series for v in vals]
        if not everything:
            continue
        bins = np.linspace(0.0, max(max(everything), 1.0), 31)
        for j, (label, vals) in enumerate(series):
            ax.hist(
                vals,
                bins=bins,
                histtype="step" if j else "stepfilled",
                alpha=1.0 if j else 0.35,
                linewidth=1.5,
                label=f"{label}, mean {np.mean(vals):.1f}" if vals else label,
            )
        ax.set_xlabel(f"colourfulness per image, {name}")
        ax.set_ylabel("photos")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"Colourfulness, {name}")
        ax.legend(fontsize="small")
    return _save_png(fig, path, summary, "per_image.csv cf_* and gt_cf_*")


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _src(rel: str) -> str:
    return _esc(quote(rel))


def _config_html(config: dict) -> str:
    items = [
        ("command", config.get("command", "")),
        ("commit", config.get("commit", "")),
        ("uncommitted changes", config.get("dirty", "")),
        ("data", " ".join(map(str, config.get("data", [])))),
        ("size (network's longer side)", config.get("size", "")),
        ("photos limit", config.get("limit", "")),
        ("annealed-mean temperature", config.get("temperature", "")),
        ("prior (rebalanced AuC)", config.get("prior") or "none"),
        ("prior SHA-256", config.get("prior_sha256") or "-"),
    ]
    for label, sha in (config.get("weights_sha256") or {}).items():
        items.append((f"weights SHA-256, {label}", sha or "unknown"))
    judge = config.get("semantic_judge")
    if judge:
        what = f"{judge.get('model')} ({judge.get('package')})"
        items.append(("semantic judge", what))
        items.append(("semantic judge weights SHA-256", judge.get("weights_sha256")))
    else:
        items.append(("semantic judge", "not run (--no-semantic)"))
    realism = config.get("realism")
    if realism:
        items.append(
            (
                "KID subsets",
                f"{realism.get('kid_subsets')} subsets of "
                f"{realism.get('kid_subset_size')} photos (seed "
                f"{realism.get('kid_seed')}), kernel {realism.get('kid_kernel')}, "
                f"{realism.get('features')}",
            )
        )
    body = "".join(
        f"<tr><th>{_esc(k)}</th><td><code>{_esc(v)}</code></td></tr>" for k, v in items
    )
    return f"<table>{body}</table>"


def _originals_cell(field: SummaryField, models: dict) -> str:
    """The originals' column: their colourfulness, and agreement by definition."""
    any_model = next(iter(models.values()), {})
    key = field.key
    if key == "images":
        return format_value(any_model.get("images"), "count")
    for form in ("signed", "abs"):
        if key == f"cf_{form}":
            return format_value(any_model.get(f"cf_{form}_originals"), field.kind)
        if key == f"cf_{form}_ratio":
            return format_value(1.0, field.kind)
        if key in (f"delta_cf_{form}", f"delta_cf_{form}_per_image"):
            return format_value(0.0, field.kind)
    if key in ("top1_agree", "top5_agree") and key in any_model:
        return "100 (by definition)"
    if key in ("stain_rate", "kid", "fd") and key in any_model:
        return "0 (by definition)"
    return "-"


def _summary_html(summary: dict) -> str:
    models = summary["models"]
    labels = _model_labels(summary)
    head = "".join(
        f"<th>{_esc(label + (' (baseline)' if label == GRAY else ''))}</th>"
        for label in labels
    )
    lines = [f"<tr><th>figure</th>{head}<th>originals</th></tr>"]
    for field in SUMMARY_FIELDS:
        if not any(field.key in models[label] for label in labels):
            continue
        values = [
            format_with_std(
                models[label].get(field.key),
                models[label].get(field.std_key) if field.std_key else None,
                field.kind,
            )
            for label in labels
        ]
        cells = "".join(f'<td class="num">{_esc(v)}</td>' for v in values)
        orig = _esc(_originals_cell(field, models))
        lines.append(
            f'<tr><th>{_esc(field.label)}</th>{cells}<td class="num">{orig}</td></tr>'
        )
    return f"<table>{''.join(lines)}</table>"


def _caption(row: dict | None) -> str:
    if row is None:
        return ""
    parts = [
        f"PSNR {format_value(row.get('psnr'), 'float2')} dB",
        f"AuC {format_value(row.get('auc'), 'percent')} %",
        f"CF {format_value(row.get('cf_signed'), 'float2')}",
    ]
    if "stain_rate" in row:
        parts.append(f"stains {format_value(row.get('stain_rate'), 'percent')} %")
    if "top1_agree" in row:
        top1 = "yes" if _truthy(row["top1_agree"]) else "no"
        top5 = "yes" if _truthy(row["top5_agree"]) else "no"
        parts.append(f"top-1 agrees: {top1}, top-5: {top5}")
    return "<br>".join(_esc(p) for p in parts)


def _truthy(value: object) -> bool:
    return value in (True, 1, "True", "true", "1")


def _grid_html(grid_paths: list[dict], rows: list[dict]) -> str:
    if not grid_paths:
        return "<p>No grid (--grid-images 0).</p>"
    by_key: dict[tuple[str, str], dict] = {}
    for r in rows:
        by_key.setdefault((str(r["image"]), str(r["model"])), r)
    columns = list(grid_paths[0]["cells"])
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    lines = [f"<tr><th>photo</th>{head}</tr>"]
    for entry in grid_paths:
        key = str(entry["image"])
        cells = []
        for col in columns:
            rel = entry["cells"].get(col)
            if rel is None:
                cells.append("<td>-</td>")
                continue
            caption = "" if col == ORIGINAL else _caption(by_key.get((key, col)))
            cells.append(
                f'<td><img src="{_src(rel)}" alt="{_esc(f"{key}, {col}")}">'
                f"{caption}</td>"
            )
        lines.append(f"<tr><th>{_esc(key)}</th>{''.join(cells)}</tr>")
    return f'<table class="grid">{"".join(lines)}</table>'


def plot_hint_curves(summary: dict, path: Path) -> Path | None:
    """PSNR, AuC and stain rate against the number of simulated hints, per hint
    model (`training.evaluate --hints`); PNG at `path`, or None without such curves."""
    curves = {
        label: s["hint_curve"]
        for label, s in summary["models"].items()
        if s.get("hint_curve")
    }
    if not curves:
        return None
    panels = (("psnr", "PSNR (dB)"), ("auc", "AuC"), ("stain_rate", "stain rate"))
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, curve in curves.items():
            # K = 0 sits at x = 0.5 on the log axis
            xs = [k if k else 0.5 for k in curve["hints"]]
            ax.plot(xs, curve[key], "o-", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("random hints per photo (0 shown at 0.5)")
        ax.set_ylabel(title)
        ax.set_title(f"{title} against hints")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _save_png(fig, path, summary, "summary.json models.<label>.hint_curve")


def write_html_report(
    out_dir: str | Path, summary: dict, rows: list[dict], grid_paths: list[dict]
) -> Path:
    """Write out_dir/report.html and its plots; returns the page's path.

    summary: the content of summary.json ({"config", "models"}); rows: the per-image
    rows of per_image.csv; grid_paths: for the first photos, {"image": key, "cells":
    {column label: path relative to out_dir}} with columns grey, each model, original.
    """
    out_dir = Path(out_dir)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    auc_png = plot_auc_curves(summary, plots_dir / "auc_curves.png")
    if auc_png is not None:
        plots.append(
            (
                auc_png,
                "AuC curves: the fraction of pixels whose ab error is within each "
                "threshold (0..150), mean over photos; the AuC is the area under each "
                "curve divided by 150.",
            )
        )
    hint_png = plot_hint_curves(summary, plots_dir / "hint_curves.png")
    if hint_png is not None:
        plots.append(
            (
                hint_png,
                "Hint models with K random hints per photo (the original's mean colour "
                "over a 5x5 square at each point; the points for K include those for "
                "smaller K): means over photos.",
            )
        )
    cf_png = plot_colorfulness(summary, rows, plots_dir / "colorfulness.png")
    if cf_png is not None:
        plots.append(
            (
                cf_png,
                "Per-image colourfulness of the originals and of each model, both "
                "forms (the grey baseline scores 0 everywhere and is left out).",
            )
        )
    config = summary.get("config", {})
    plots_html = "".join(
        f'<figure><img src="{_src(p.relative_to(out_dir).as_posix())}" '
        f'alt="{_esc(p.stem)}"><figcaption class="note">{_esc(text)}</figcaption>'
        "</figure>"
        for p, text in plots
    )
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Colorization evaluation: {_esc(", ".join(summary["models"]))}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Colorization evaluation</h1>
<p class="note">Generated by <code>{_esc(config.get("command", ""))}</code>; nothing on
this page is typed by hand. Each photo is turned grey (its own lightness, a = b = 0),
colorized by each model and compared with the original (docs/design.md section 5).</p>
<h2>Run</h2>
{_config_html(config)}
<h2>Summary</h2>
<p class="note">Means over photos, except KID and FD, which compare the set of
colorized photos with the set of originals. Stain rate: the share of pixels with a
confident false colour, predicted chroma C*ab above 20 and ab error above 30 (CIE Lab,
D65); grey scores 0. Realism: KID (kernel inception distance, unbiased, times 1000, with
its standard deviation over random subsets of photos) and the Fréchet distance between
the EfficientNet-Lite2 judge's pooled features of the colorized photos and of the
originals; lower is closer to the originals. Colourfulness (CF), shown but no longer a
target (it rewards colour whether right or wrong), in two forms: the signed form of
Hasler and Suesstrunk and the absolute-value form of DDColor; the ratio is mean CF over
the originals' mean CF, and Delta-CF the absolute difference of the two means. Semantic
agreement: the share of photos whose EfficientNet-Lite2 top-1 class on the original is
also the top-1 class (top-1) or among the top 5 (top-5) on the colorized photo. A change
is kept when, on val/, it lowers KID and the stain rate, loses at most 0.1 dB of PSNR,
and keeps top-1 agreement within 2 points of grey's or better (docs/overview.md).</p>
{_summary_html(summary)}
<h2>Plots</h2>
{plots_html or "<p>No plots.</p>"}
<h2>Photos</h2>
<p class="note">The first {len(grid_paths)} photos, downscaled: grey input, each model,
original. Under each: that photo's PSNR, AuC (plain), signed colourfulness, stain rate
and semantic agreement.</p>
{_grid_html(grid_paths, rows)}
</body>
</html>
"""
    path = out_dir / "report.html"
    atomic_write_bytes(path, page.encode())
    log.info("wrote %s", path)
    return path

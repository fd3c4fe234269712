"""docs/performance.md, generated from saved benchmark results (never typed by hand).

    python -m benchmarks.performance_doc [--before docs/results/perf/before.json] \
        [--after docs/results/perf/after.json] [--out docs/performance.md]

Both JSON files are written by `python -m benchmarks.run --out ...`: `before` on the
code before issue 7, `after` on the current code. The page has generated tables (goals,
models, end to end, training, levers) and a hand-written reading from
docs/results/perf/template.md, in which `{{after.cli.images_per_s|.2f}}` stands for a
number of the results (a dotted path into {"before": ..., "after": ...} and a Python
format spec), so even the prose quotes measured numbers only.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import atomic_write_bytes
from core.cli import run_main
from core.config import add_dataclass_args, dataclass_from_args
from core.errors import InvalidInputError

__all__ = [
    "DocConfig",
    "fill_template",
    "main",
    "performance_markdown",
    "repo_relative",
]

log = logging.getLogger(__name__)

PERF_DIR = Path("docs/results/perf")
# (summary key, label, display scale, digits, largest allowed drop in summary units)
QUALITY: tuple[tuple[str, str, float, int, float], ...] = (
    ("psnr", "PSNR (dB)", 1.0, 3, 0.2),
    ("ssim", "SSIM", 1.0, 4, 0.0),
    ("auc", "AuC (%)", 100.0, 3, 0.005),
    ("auc_rebalanced", "AuC rebalanced (%)", 100.0, 3, 0.0),
    ("ciede2000", "dE00", 1.0, 3, 0.0),
    ("cf_signed", "colourfulness (signed)", 1.0, 3, 0.0),
)
_PLACEHOLDER = re.compile(r"\{\{\s*([\w.@-]+)\s*(?:\|\s*([^}]*?))?\s*\}\}")


@dataclass(frozen=True)
class DocConfig:
    before: str = field(
        default=str(PERF_DIR / "before.json"),
        metadata={"help": "benchmark JSON of the code before the changes"},
    )
    after: str = field(
        default=str(PERF_DIR / "after.json"),
        metadata={"help": "benchmark JSON of the current code"},
    )
    quality_before: str = field(
        default=str(PERF_DIR / "quality-before.summary.json"),
        metadata={"help": "training.evaluate summary.json of the code before"},
    )
    quality_after: str = field(
        default=str(PERF_DIR / "quality-after.summary.json"),
        metadata={"help": "training.evaluate summary.json of the current code"},
    )
    template: str = field(
        default=str(PERF_DIR / "template.md"),
        metadata={"help": "hand-written reading with {{path|format}} placeholders"},
    )
    out: str = field(
        default="docs/performance.md", metadata={"help": "Markdown file written"}
    )


def _lookup(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path; a number indexes a list (`meta.load.cli.0`)."""
    value: Any = data
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(f"no {path!r} in the results (missing {part!r})")
    return value


def fill_template(text: str, data: dict[str, Any]) -> str:
    """Replace each `{{dotted.path|format}}` with that value of `data`, formatted.

    Raises KeyError naming the path when a placeholder has no value.
    """

    def replace(match: re.Match[str]) -> str:
        value = _lookup(data, match.group(1))
        spec = match.group(2) or ""
        return format(value, spec)

    return _PLACEHOLDER.sub(replace, text)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]], text: int = 1) -> list[str]:
    """A Markdown table: the first `text` columns left-aligned, numbers right."""
    align = ["---"] * text + ["---:"] * (len(header) - text)
    return [_row(header), _row(align), *(_row(r) for r in rows)]


def _meta_line(label: str, r: dict[str, Any]) -> str:
    m = r["meta"]
    load = m.get("load", {}).get("models", m.get("load_at_start"))
    return (
        f"- {label}: `{m['command']}` at commit `{m['commit']}`, {m['date']}, "
        f"{m['cores']} cores ({m['cpu']}), load average at the start {load}, "
        f"TensorFlow {m['tensorflow']}, photos from {m.get('photos', '?')}"
    )


def _goals(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old = {g["key"]: g["value"] for g in before["goals"]}
    rows = []
    for g in after["goals"]:
        sign = ">=" if g["kind"] == "min" else "<="
        digits = 2 if g["key"] in ("cli_cores_busy", "pipeline_over_training") else 1
        rows.append(
            [
                g["goal"],
                f"{sign} {_num(g['target'], digits)}",
                _num(old.get(g["key"]), digits),
                _num(g["value"], digits),
                "yes" if g["met"] else "**no**",
            ]
        )
    return _table(["goal", "target", "before", "after", "met"], rows)


def _models(r: dict[str, Any]) -> list[str]:
    rows = []
    models = {**r["models"], "reference: vgg16-cls, width 1.0": r["reference"]}
    for name, m in models.items():
        size = f"{m['size']}{' (fixed)' if m['fixed_size'] else ''}"
        rows.append(
            [
                name,
                size,
                f"{m['params'] / 1e6:.2f} M",
                _num(m["gflops"]),
                _num(m["batch1_images_per_s"]),
                _num(m.get("batch16_images_per_s")),
                _num(m.get("speedup_batch1")),
                _num(m.get("speedup_batch16")),
                _num(100 * m["peak_fraction_batch1"]),
                _num(100 * m["peak_fraction_batch16"])
                if "peak_fraction_batch16" in m
                else "-",
            ]
        )
    return _table(
        [
            "model",
            "size",
            "parameters",
            "GFLOPs",
            "img/s, batch 1",
            "img/s, batch 16",
            "x reference, b1",
            "x reference, b16",
            "% of peak, b1",
            "% of peak, b16",
        ],
        rows,
    )


def _end_to_end(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    def row(what: str, path: str, digits: int = 0) -> list[str]:
        b, a = _lookup(before, path), _lookup(after, path)
        return [what, _num(b, digits), _num(a, digits), f"{b / a:.1f}x"]

    rows = [
        row("1 MP JPEG to PNG, median (ms)", "end_to_end.1mp.median_ms"),
        row("1 MP, first call (ms; traces the network)", "end_to_end.1mp.first_ms"),
        row("12 MP JPEG to PNG, median (ms)", "end_to_end.12mp.median_ms"),
        row("12 MP, peak resident memory (MB)", "memory.peak_mb"),
        row("memory after loading the model (MB)", "memory.after_load_mb"),
        row("1 MP PNG size (kB)", "end_to_end.1mp.png_bytes", 0),
    ]
    rows[-1][1:3] = [
        _num(before["end_to_end"]["1mp"]["png_bytes"] / 1e3, 0),
        _num(after["end_to_end"]["1mp"]["png_bytes"] / 1e3, 0),
    ]
    rows[-1][3] = "-"
    for path, what in (
        ("cli.images_per_s", "CLI on a folder (images/s)"),
        ("cli.cores_busy", "CLI: CPU cores busy (CPU s / wall s)"),
    ):
        b, a = _lookup(before, path), _lookup(after, path)
        rows.append([what, _num(b, 2), _num(a, 2), f"{a / b:.1f}x"])
    return _table(["", "before", "after", "gain"], rows)


def _training(r: dict[str, Any]) -> list[str]:
    rows = [
        [key, t["model"], str(t["size"]), str(t["batch_size"]), t.get("precision", "")]
        + [_num(t["images_per_s"])]
        for key, t in r["training"]["models"].items()
    ]
    pipe = r["training"]["pipeline"]
    rows.append(
        [
            "input pipeline alone",
            "training.data",
            str(pipe["size"]),
            str(pipe["batch_size"]),
            "",
            _num(pipe["images_per_s"]),
        ]
    )
    table = _table(
        ["run", "model", "size", "batch", "precision", "img/s"], rows, text=2
    )
    if "cgan" in r["training"]["models"]:
        table += [
            "",
            "cgan: one iteration of `training.train_gan` (a discriminator step, then a "
            "generator step, on two minibatches; both counted).",
        ]
    skipped = r["training"].get("skipped", [])
    if skipped:
        table += ["", "Not measured: " + "; ".join(skipped) + "."]
    return table


def _levers(r: dict[str, Any]) -> list[str]:
    rows = []
    for key, lever in r["levers"].items():
        if "before_ms" not in lever:
            continue
        extra = ""
        if "before_bytes" in lever:
            extra = (
                f" ({lever['before_bytes'] / 1e3:,.0f} kB -> "
                f"{lever['after_bytes'] / 1e3:,.0f} kB)"
            )
        rows.append(
            [
                f"`{key}`",
                lever["what"],
                lever["before"],
                lever["after"] + extra,
                _num(lever["before_ms"]),
                _num(lever["after_ms"]),
                f"{lever['speedup']:.2f}x",
                "kept" if lever["kept"] else "not kept",
            ]
        )
    table = _table(
        [
            "lever",
            "measured on",
            "before",
            "after",
            "before (ms)",
            "after (ms)",
            "speed-up",
            "",
        ],
        rows,
        text=4,
    )
    settings = r["levers"].get("network_settings")
    if settings:
        table += [
            "",
            f"TensorFlow settings, {settings['what']} (fresh process each):",
            "",
        ]
        table += _table(
            ["setting", "ms"],
            [[k, _num(v["median_ms"])] for k, v in settings["settings"].items()],
        )
    return table


def _quality(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The default model's evaluation figures before and after, with the allowance."""
    rows = []
    for key, label, scale, digits, allowed in QUALITY:
        b = before["models"]["default"][key] * scale
        a = after["models"]["default"][key] * scale
        rows.append(
            [
                label,
                f"{b:.{digits}f}",
                f"{a:.{digits}f}",
                f"{a - b:+.{digits}f}",
                f"{allowed * scale:.{digits}f}" if allowed else "-",
            ]
        )
    cfg = after["config"]
    return [
        f"`{cfg['command']}` (before: `{before['config']['command']}`), "
        f"weights `{cfg['weights_sha256']['default'][:12]}`; "
        f"{after['models']['default'].get('images', '?')} photos.",
        "",
        *_table(["default model", "before", "after", "change", "allowed drop"], rows),
    ]


def performance_markdown(
    before: dict[str, Any],
    after: dict[str, Any],
    reading: str,
    command: str,
    quality: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> str:
    """The whole page from two benchmark results and the filled-in reading.

    quality: training.evaluate summaries (before, after) of the default model.
    """
    peak = after["peak"]
    lines = [
        "# Performance on a plain CPU",
        "",
        f"Generated by `{command}` from `docs/results/perf/before.json` and "
        "`docs/results/perf/after.json`; the reading below comes from "
        "`docs/results/perf/template.md`. Do not edit by hand: re-run "
        "`python -m benchmarks.run --out docs/results/perf/after.json`, then this "
        "command.",
        "",
        _meta_line("before", before),
        _meta_line("after", after),
        "",
        "Every figure is the median of several runs in one process; ratios within "
        "a run hold on this shared machine, absolute numbers move with its load.",
        "",
        "## Goals",
        "",
        *_goals(before, after),
        "",
        "## Models (after)",
        "",
        f"Render size 256 (models with a fixed input size at their own). Peak of "
        f"this machine in the same rounds: {peak['float32_gflops']:,.0f} GFLOP/s "
        f"float32, {peak['bfloat16_gflops']:,.0f} GFLOP/s bfloat16 (a "
        f"{peak['matmul_n']}x{peak['matmul_n']} matrix product in TensorFlow). "
        "GFLOPs from TensorFlow's profiler; untrained weights.",
        "",
        *_models(after),
        "",
        "## End to end and the command line",
        "",
        *_end_to_end(before, after),
        "",
        *(["## Quality", "", *_quality(*quality), ""] if quality else []),
        "## Training (after)",
        "",
        *_training(after),
        "",
        "## Levers",
        "",
        "Each lever against its alternative, both measured in the `after` run.",
        "",
        *_levers(after),
        "",
        reading.strip(),
        "",
    ]
    return "\n".join(lines)


REPO = Path(__file__).resolve().parents[1]


def repo_relative(text: str, repo: Path = REPO) -> str:
    """`text` with absolute paths inside the repository, or beside it, written relative
    to it (`/x/repo/docs` -> `docs`, `/x/shared/data` -> `../shared/data`), and scratch
    paths in the temporary folder as `$TMPDIR/...`, so that the page does not record
    the machine it was made on."""
    text = text.replace(f"{repo}/", "")
    text = text.replace(f"{repo.parent}/", "../")
    return re.sub(r"(?<![\w.])/tmp/", "$TMPDIR/", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.performance_doc",
        description=__doc__.split("\n\n")[0],
    )
    add_dataclass_args(parser, DocConfig)
    return run_main(parser, argv, _run, level=logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(DocConfig, args)
    try:
        before = json.loads(Path(cfg.before).read_text())
        after = json.loads(Path(cfg.after).read_text())
        template = Path(cfg.template).read_text()
        quality = None
        if Path(cfg.quality_before).exists() and Path(cfg.quality_after).exists():
            quality = (
                json.loads(Path(cfg.quality_before).read_text()),
                json.loads(Path(cfg.quality_after).read_text()),
            )
        data = {"before": before, "after": after}
        if quality:
            data.update(quality_before=quality[0], quality_after=quality[1])
        reading = fill_template(template, data)
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise InvalidInputError(str(err)) from err
    command = "python -m benchmarks.performance_doc"
    markdown = repo_relative(
        performance_markdown(before, after, reading, command, quality)
    )
    atomic_write_bytes(Path(cfg.out), markdown.encode())
    print(cfg.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

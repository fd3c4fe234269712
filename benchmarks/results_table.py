"""The Markdown results table, generated from evaluation reports (never typed by hand).

    python -m benchmarks.results_table reports/default-bsds/summary.json \
        [reports/other/summary.json ...] --out docs/results.md

Reads each `summary.json` written by `python -m training.evaluate` and writes one table
with a row per model and report (the grey baseline included): PSNR, stain rate, KID
(± its standard deviation over subsets), Fréchet distance and semantic top-1 agreement
(the figures of the decision rule, docs/overview.md), then SSIM, dE00, AuC (plain and
class-rebalanced), colourfulness (signed form, its ratio to the originals,
absolute-value form), Delta-CF and top-5 agreement. Figures a summary lacks (older
reports have no stain rate, KID or FD) show as "-". Under the table, for
each report: the command that produced it, its commit, data, size and the weights'
SHA-256. Every number comes from the summary files. Without --out the Markdown is
printed. `--rename OLD=NEW` shows a model evaluated under a name it no longer has under
today's name (e.g. `--rename default-v2=default --rename default=default-v1` after the
second default model replaced the first); the page says which names were changed.
`--rename OLD@SHA=NEW` renames OLD only in reports whose OLD weights' SHA-256 starts
with SHA: once a name has been shipped with several weights (e.g. the first default's,
now `default-v1`, and later ones of the second), only the first's reports change name.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path

from benchmarks.markdown import command_line, emit
from core.cli import run_main
from core.weights import read_manifest
from training.report import format_value, format_with_std

__all__ = [
    "COLUMNS",
    "STD_KEYS",
    "TableConfig",
    "main",
    "parse_renames",
    "results_markdown",
]

log = logging.getLogger(__name__)

GRAY = "gray"

# (summary.json key, column header, display format of training.report.format_value)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("psnr", "PSNR (dB)", "float2"),
    ("stain_rate", "stain rate (%)", "percent"),
    ("kid", "KID x1000 (± std)", "kid"),
    ("fd", "FD", "float3"),
    ("top1_agree", "top-1 agr. (%)", "percent"),
    ("ssim", "SSIM", "float4"),
    ("ciede2000", "dE00", "float2"),
    ("auc", "AuC (%)", "percent"),
    ("auc_rebalanced", "AuC rebal. (%)", "percent"),
    ("cf_signed", "CF signed", "float2"),
    ("cf_signed_ratio", "CF ratio (signed)", "float3"),
    ("cf_abs", "CF abs", "float2"),
    ("delta_cf_signed", "Delta-CF (signed)", "float2"),
    ("delta_cf_abs", "Delta-CF (abs)", "float2"),
    ("top5_agree", "top-5 agr. (%)", "percent"),
)
# columns shown with their standard deviation: key -> key of the deviation
STD_KEYS = {"kid": "kid_std"}


@dataclass(frozen=True)
class TableConfig:
    summaries: tuple[str, ...] = field(
        default=(), metadata={"help": "summary.json files of training.evaluate"}
    )
    out: str = field(default="", metadata={"help": "Markdown file (default: print)"})
    rename: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "OLD=NEW: show model OLD of the reports as NEW (repeatable; "
            "all applied at once, so names can be swapped); OLD@SHA=NEW: only in "
            "reports whose OLD weights' SHA-256 starts with SHA"
        },
    )


def parse_renames(items: tuple[str, ...] | list[str]) -> dict[str, tuple[str, str]]:
    """("OLD=NEW" or "OLD@SHA=NEW", ...) -> {OLD: (SHA or "", NEW)}; ValueError for a
    malformed item or a model renamed twice."""
    renames: dict[str, tuple[str, str]] = {}
    for item in items:
        key, sep, new = item.partition("=")
        old, at, sha = key.partition("@")
        if not sep or not old or not new or (at and not sha):
            raise ValueError(f"--rename expects OLD=NEW or OLD@SHA=NEW, got {item!r}")
        if old in renames:
            raise ValueError(f"--rename: {old!r} is renamed twice")
        renames[old] = (sha, new)
    return renames


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _report_name(path: Path) -> str:
    """reports/NAME/summary.json -> NAME; docs/results/NAME.summary.json -> NAME."""
    if path.name == "summary.json":
        return path.parent.name or path.stem
    return path.name.removesuffix(".json").removesuffix(".summary")


def _report_names(
    summary: dict, renames: dict[str, tuple[str, str]], shipped: dict[str, str]
) -> dict[str, str]:
    """{model label in a report: name shown} for the labels `renames` changes: a
    label keeps its name when its weights are the ones shipped under that very name
    now (a report made after the rename), or, for OLD@SHA, when its weights' SHA-256
    does not start with SHA. shipped: {model name: SHA-256 of its shipped weights}."""
    shas = summary["config"].get("weights_sha256") or {}
    names = {}
    for old, (prefix, new) in renames.items():
        sha = shas.get(old, "")
        if prefix:
            names[old] = new if sha.startswith(prefix) else old
        else:
            names[old] = old if sha and sha == shipped.get(old) else new
    return names


def _hint_curves(reports: list[tuple[Path, dict, dict[str, str]]]) -> list[str]:
    """Tables of the hint models' figures with K random hints per photo
    (`training.evaluate --hints`), one row per K; none when no report has them."""
    lines: list[str] = []
    for path, summary, names in reports:
        for label, s in summary["models"].items():
            curve = s.get("hint_curve")
            if not curve:
                continue
            auto = s.get("psnr")
            lines += [
                f"### {_cell(_report_name(path))}: "
                f"{_cell(names.get(label, label))} with K random hints",
                "",
                "Each hint: a random point, the original's mean colour over the 5x5 "
                "square there; K = 0 is the automatic row above.",
                "",
                "| K | PSNR (dB) | gain over automatic (dB) | AuC (%) "
                "| stain rate (%) |",
                "| ---: | ---: | ---: | ---: | ---: |",
            ]
            for i, k in enumerate(curve["hints"]):
                gain = curve["psnr"][i] - auto if auto is not None else None
                lines.append(
                    f"| {k} | {format_value(curve['psnr'][i], 'float2')} | "
                    f"{'-' if gain is None else f'{gain:+.2f}'} | "
                    f"{format_value(curve['auc'][i], 'percent')} | "
                    f"{format_value(curve['stain_rate'][i], 'percent')} |"
                )
            lines.append("")
    return lines


def results_markdown(
    paths: list[Path],
    command: str,
    renames: dict[str, tuple[str, str]] | None = None,
) -> str:
    """The Markdown page: header, one table over all reports, then their records.

    renames: {name in the reports: (SHA-256 prefix or "", name shown)}, for models
    renamed since (`parse_renames`).
    """
    renames = renames or {}
    shipped = (
        {name: entry.get("sha256") for name, entry in read_manifest().items()}
        if renames
        else {}
    )
    reports = []
    for path in paths:
        try:
            summary = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read evaluation summary {path}: {err}") from err
        if "models" not in summary or "config" not in summary:
            raise ValueError(
                f"{path} is not a summary.json of training.evaluate "
                "(no 'models' or 'config')"
            )
        reports.append((path, summary, _report_names(summary, renames, shipped)))

    lines = [
        "# Evaluation results",
        "",
        f"Generated by `{command}` from the evaluation reports listed below; do not "
        "edit by hand, re-run the command. Every number comes from their "
        "`summary.json` (docs/design.md section 5). Stain rate: share of pixels "
        "with predicted chroma > 20 and ab error > 30 (Lab, D65). KID (x1000, ± its "
        "standard deviation over subsets of photos) and FD: distance between the "
        "EfficientNet-Lite2 judge's pooled features of the colorized photos and of "
        "the originals (lower is closer). Stain rate, AuC and "
        "agreement in %. CF: colourfulness, signed form (Hasler-Suesstrunk) and "
        "absolute-value form (DDColor); CF ratio: mean CF over the originals' mean "
        "(signed form); Delta-CF: |mean CF - mean CF of the originals|. Agreement: "
        "EfficientNet-Lite2 ImageNet top-1 class of the original found as top-1 / in "
        "the top 5 of the colorized photo (the originals: 100 % by definition). "
        "`gray` is the grey baseline.",
        "",
    ]
    if renames:
        changed = ", ".join(
            f"`{old}` (weights {sha}...) as `{new}`" if sha else f"`{old}` as `{new}`"
            for old, (sha, new) in renames.items()
        )
        lines += [
            "Models are shown under today's names; in the reports (and their "
            f"commands below) they had their names of then: {changed}; a report "
            "whose weights are those shipped under the name now keeps it. The "
            "weights' SHA-256 under each report tells which file was measured.",
            "",
        ]
    header = ["report", "model", "photos", *(h for _, h, _ in COLUMNS)]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |")
    for path, summary, names in reports:
        models = summary["models"]
        for label in sorted(models, key=lambda label: label != GRAY):
            s = models[label]
            cells = [
                _report_name(path),
                names.get(label, label),
                format_value(s.get("images"), "count"),
                *(
                    format_with_std(s.get(key), s.get(STD_KEYS.get(key, "")), kind)
                    for key, _, kind in COLUMNS
                ),
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    lines += _hint_curves(reports)
    lines.append("## Sources")
    lines.append("")
    for path, summary, names in reports:
        config = summary["config"]
        lines.append(f"### {_cell(_report_name(path))}")
        lines.append("")
        lines.append(f"- summary: `{path}`")
        lines.append(f"- command: `{config.get('command', '')}`")
        dirty = " (with uncommitted changes)" if config.get("dirty") else ""
        lines.append(f"- commit: `{config.get('commit', '') or 'unknown'}`{dirty}")
        lines.append(f"- data: `{' '.join(map(str, config.get('data', [])))}`")
        lines.append(f"- size: {config.get('size', '')}")
        for label, sha in (config.get("weights_sha256") or {}).items():
            shown = names.get(label, label)
            lines.append(f"- weights SHA-256, {shown}: `{sha or 'unknown'}`")
        if config.get("prior_sha256"):
            lines.append(
                f"- prior SHA-256 (rebalanced AuC): `{config['prior_sha256']}`"
            )
        judge = config.get("semantic_judge")
        if judge:
            lines.append(
                f"- semantic judge: {judge.get('model')} ({judge.get('package')}), "
                f"weights SHA-256 `{judge.get('weights_sha256')}`"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.results_table",
        description=__doc__.split("\n\n")[0],
    )
    # the summaries are positional, so the options are written here, not derived
    helps = {f.name: f.metadata["help"] for f in fields(TableConfig)}
    parser.add_argument("summaries", nargs="+", help=helps["summaries"])
    parser.add_argument("--out", default=TableConfig.out, help=helps["out"])
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help=helps["rename"],
    )
    return run_main(parser, argv, lambda args: _run(args, argv), errors=(ValueError,))


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    cfg = TableConfig(
        summaries=tuple(args.summaries), out=args.out, rename=tuple(args.rename)
    )
    command = command_line("benchmarks.results_table", argv)
    renames = parse_renames(cfg.rename)
    text = results_markdown([Path(p) for p in cfg.summaries], command, renames)
    emit(text, cfg.out)
    if cfg.out:
        print(cfg.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

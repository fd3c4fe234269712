"""The default model's quality levers on val/, as a Markdown table from measured files.

    python -m benchmarks.calibration_table "shipped=docs/results/levers/shipped.json" \
        "mirror TTA=docs/results/levers/tta-val.json" --out docs/quality_levers.md

Each LABEL=PATH names a `calibration.json` written by `python -m training.calibrate
--out` (one row per alpha: PSNR gain over the grey baseline, colourfulness ratio to
the originals, AuC, on the validation photos). Alphas are shown as the total
correction: a run on the shipped weights, which already have the manifest's
`prior_correction.alpha` folded into their last bias, adds that alpha. The row that
`training.calibrate` chose is marked in each group (records made with --semantic: the
decision rule, lowest KID among the alphas whose top-1 agreement is within 2 points of
grey's; older records: best PSNR with CF ratio >= its --cf-min). When two or more
groups have the judge's figures, the page also names the row the decision rule picks
among all of theirs (e.g. over temperatures, one group each). The first group is the
reference: every row also shows its PSNR
gain minus the reference's at the same colourfulness ratio, interpolated linearly
between the reference's rows (the levers are compared at equal colour, since more
colour costs PSNR). Every number comes from the files; without --out the Markdown is
printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
from pathlib import Path

import numpy as np

from benchmarks.markdown import command_line, emit
from core.cli import run_main
from core.errors import InvalidInputError
from core.quantize import ANNEALED_T
from core.weights import WEIGHTS_DIR, read_manifest
from training.calibrate import choose_row

__all__ = ["load_group", "main", "reference_psnr", "table_markdown"]


def _option(command: str, name: str) -> str | None:
    words = shlex.split(command)
    if name in words and words.index(name) + 1 < len(words):
        return words[words.index(name) + 1]
    return None


def folded_alpha(weights: str | None, manifest: dict | None = None) -> float:
    """The alpha already folded into `weights`: the manifest's for shipped files."""
    if not weights:
        return 0.0
    manifest = read_manifest() if manifest is None else manifest
    for entry in manifest.values():
        shipped = (WEIGHTS_DIR / entry.get("file", "")).resolve()
        if Path(weights).resolve() == shipped:
            return float(entry.get("prior_correction", {}).get("alpha", 0.0))
    return 0.0


def load_group(label: str, path: Path, manifest: dict | None = None) -> dict:
    """One lever's rows, with total alphas and the chosen row marked."""
    record = json.loads(path.read_text())
    command = record.get("command", "")
    weights = _option(command, "--weights")
    offset = folded_alpha(weights, manifest)
    chosen = record.get("chosen_alpha")
    rows = [
        {
            **row,
            "total_alpha": round(offset + row["alpha"], 6),
            "chosen": row["alpha"] == chosen,
        }
        for row in record["rows"]
    ]
    return {
        "label": label,
        "path": str(path),
        "command": command,
        "weights": weights or "-",
        # records made before calibrate took --temperature used the default
        "temperature": record.get("temperature", ANNEALED_T),
        "tta": bool(record.get("tta", False)),
        # records made before calibrate took --saturation used none
        "saturation": float(record.get("saturation", 1.0)),
        "cf_min": record.get("cf_min"),
        "rows": sorted(rows, key=lambda r: r["total_alpha"]),
    }


def reference_psnr(cf_ratio: float, reference: list[dict]) -> float | None:
    """The reference's PSNR gain at this CF ratio, linearly interpolated.

    reference: rows with "cf_signed_ratio" and "psnr_gain_over_gray". None when the
    ratio lies outside the reference's range (no extrapolation).
    """
    points = sorted((r["cf_signed_ratio"], r["psnr_gain_over_gray"]) for r in reference)
    if not points or not points[0][0] <= cf_ratio <= points[-1][0]:
        return None
    cfs, gains = zip(*points, strict=True)
    return float(np.interp(cf_ratio, cfs, gains))


def _versus(row: dict, reference: list[dict]) -> str:
    ref = reference_psnr(row["cf_signed_ratio"], reference)
    if ref is None:
        return "-"
    # + 0.0 turns a rounded -0.0 into 0.0: a lever equal to the reference reads +0.000
    return f"{round(row['psnr_gain_over_gray'] - ref, 3) + 0.0:+.3f}"


def _fixed(value: float | None, scale: float, digits: int) -> str:
    return "-" if value is None else f"{scale * value:.{digits}f}"


def _percent(fraction: float | None) -> str:
    return _fixed(fraction, 100, 1)


def _rule_choice(groups: list[dict]) -> list[str]:
    """A paragraph naming the decision rule's row among all groups' rows with the
    judge's figures, when two or more groups have them (else nothing)."""
    judged = [g for g in groups if g["rows"] and all("kid" in r for r in g["rows"])]
    if len(judged) < 2:
        return []
    rows = [r for g in judged for r in g["rows"]]
    best = choose_row(rows)
    group = next(g for g in judged if any(r is best for r in g["rows"]))
    return [
        "",
        f"Over all {len(rows)} rows with the judge's figures, the decision rule "
        f"(`training.calibrate.choose_row`) picks **{group['label']}: T "
        f"{group['temperature']:.2f}, alpha {best['total_alpha']:.2f}** (KID x1000 "
        f"{1000 * best['kid']:.3f}, stain {100 * best['stain_rate']:.3f} %, PSNR gain "
        f"{best['psnr_gain_over_gray']:+.3f} dB, top-1 "
        f"{_percent(best['top1_agreement'])} %).",
    ]


def table_markdown(groups: list[dict], command: str) -> str:
    """The page: one table, then each group's source command."""
    lines = [
        "# Quality levers of the default model on val/",
        "",
        f"Generated by `{command}` from `training.calibrate` records; do not edit by "
        "hand. Validation photos (`../shared/data/val`), size 256. alpha: how much of "
        "the class rebalancing is undone at inference (0: as trained); the marked row "
        "is the one `training.calibrate` chose in that record (with the judge: the "
        "decision rule, the lowest KID among alphas whose top-1 agreement is within 2 "
        "points of grey's, then the lowest stain rate; without: the best PSNR gain "
        "with CF ratio >= cf_min). Stain: share of pixels with chroma > 20 and ab "
        "error > "
        "30. KID x1000 on the judge's features (lower is closer to the originals). "
        "T: annealed-mean temperature; TTA: output averaged over the photo "
        "and its mirror image; sat.: factor on the decoded ab (the app's saturation "
        "slider). Top-1: how often the EfficientNet-Lite2 judge gives "
        "the colorized photo the original's ImageNet class (records made with "
        "`--semantic`; the grey baseline's figure is under Sources). vs ref.: PSNR "
        "gain minus that of the first lever (the reference) at the same CF ratio, "
        "interpolated linearly between its rows; '-' outside its range.",
        "",
        "| lever | T | TTA | sat. | alpha | PSNR gain over grey (dB) | CF ratio | AuC "
        "| top-1 (%) | stain (%) | KID x1000 | vs ref. (dB) | chosen |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | --- |",
    ]
    reference = groups[0]["rows"] if groups else []
    for g in groups:
        t = f"{g['temperature']:.2f}"
        for r in g["rows"]:
            lines.append(
                f"| {g['label']} | {t} | {'yes' if g['tta'] else 'no'} "
                f"| {g['saturation']:.2f} | {r['total_alpha']:.2f} "
                f"| {r['psnr_gain_over_gray']:+.3f} "
                f"| {r['cf_signed_ratio']:.3f} | {r['auc']:.4f} "
                f"| {_percent(r.get('top1_agreement'))} "
                f"| {_fixed(r.get('stain_rate'), 100, 3)} "
                f"| {_fixed(r.get('kid'), 1000, 3)} | {_versus(r, reference)} "
                f"| {'yes' if r['chosen'] else ''} |"
            )
    lines += _rule_choice(groups)
    lines += ["", "## Sources", ""]
    for g in groups:
        first = g["rows"][0] if g["rows"] else {}
        gray = (
            f", grey baseline top-1 {_percent(first['gray_top1_agreement'])} %"
            if "gray_top1_agreement" in first
            else ""
        )
        lines.append(
            f"- {g['label']}: `{g['path']}`, weights `{g['weights']}`, "
            f"{first.get('images', 0)} photos{gray}; command: `{g['command']}`"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.calibration_table",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "groups", nargs="+", metavar="LABEL=PATH", help="a calibration.json"
    )
    parser.add_argument("--out", default="", help="Markdown file (default: print)")
    return run_main(parser, argv, lambda args: _run(args, argv), level=logging.WARNING)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    groups = []
    for item in args.groups:
        label, sep, path = item.partition("=")
        if not sep or not label or not Path(path).is_file():
            raise InvalidInputError(f"{item}: expected LABEL=PATH of a file")
        try:
            groups.append(load_group(label, Path(path)))
        except (ValueError, KeyError) as err:
            raise InvalidInputError(
                f"{path}: not a calibration record ({err})"
            ) from err
    command = command_line("benchmarks.calibration_table", argv)
    emit(table_markdown(groups, command), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

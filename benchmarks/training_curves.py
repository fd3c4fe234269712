"""A training run's curves against crops seen, from its own records.

    python -m benchmarks.training_curves --run runs/v2 --batch-size 16 \
        --out docs/results/default-training

Several --run folders are one training continued: each later run started from the
earlier one's weights (`training.train --init-weights`), so its steps are counted on
after the earlier runs' last step, and its epochs numbered on.

Reads RUN/steps.csv (loss per step) and RUN/metrics.csv (train and validation loss per
epoch), and writes OUT-curves.png (the training loss, a moving mean over 50 steps,
and the validation loss at each epoch's end, against the crops seen = steps x batch)
and OUT-metrics.csv (the epoch rows with a `crops` column). Validation figures from
`training.evaluate` summaries given with --eval CROPS=SUMMARY.json (KID, PSNR, stain
rate of the model in that summary) are drawn in a second panel.

`--branch CROPS=RUN` adds a continuation that was tried and not kept: a run started
from the chain's weights at CROPS crops (e.g. from the shipped file), whose validation
loss is drawn as a dashed line from there, and whose epochs go to OUT-branches.csv;
the chain's own curve and OUT-metrics.csv leave it out.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from pathlib import Path

import numpy as np

from core.atomic import atomic_write_bytes
from core.cli import run_main

__all__ = ["branch_rows", "chained_rows", "main", "read_rows", "write_curves"]

SMOOTH = 50  # steps in the moving mean of the training loss


def read_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a CSV file of numbers, as floats."""
    with Path(path).open(newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _eval_points(items: list[str]) -> list[tuple[float, dict]]:
    points = []
    for item in items:
        crops, _, path = item.partition("=")
        summary = json.loads(Path(path).read_text())["models"]
        label = next(k for k in summary if k != "gray")
        points.append((float(crops), summary[label]))
    return sorted(points, key=lambda p: p[0])


def chained_rows(
    runs: list[Path],
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """steps.csv and metrics.csv rows of runs continued one from the other, with the
    steps (and epochs) of each later run counted on after the earlier runs' last."""
    steps: list[dict[str, float]] = []
    epochs: list[dict[str, float]] = []
    step0 = epoch0 = 0.0
    for run in runs:
        run_steps = read_rows(run / "steps.csv")
        run_epochs = read_rows(run / "metrics.csv")
        steps += [{**r, "step": r["step"] + step0} for r in run_steps]
        epochs += [
            {**r, "step": r["step"] + step0, "epoch": r["epoch"] + epoch0}
            for r in run_epochs
        ]
        step0 = max([step0] + [r["step"] for r in steps])
        epoch0 = max([epoch0] + [r["epoch"] for r in epochs])
    return steps, epochs


def branch_rows(
    item: str, batch_size: int
) -> tuple[str, float, list[dict[str, float]]]:
    """The epochs of a branch given as CROPS=RUN: (the run folder's name, CROPS, its
    metrics.csv rows with `crops` counted on from CROPS)."""
    crops, sep, path = item.partition("=")
    if not sep:
        raise ValueError(f"--branch {item}: expected CROPS=RUN")
    run = Path(path)
    rows = read_rows(run / "metrics.csv")
    start = float(crops)
    rows = [{**r, "crops": start + r["step"] * batch_size} for r in rows]
    return run.name, start, rows


def write_curves(
    run: Path | list[Path],
    batch_size: int,
    out: str,
    evals: list[str] | None = None,
    branches: list[str] | None = None,
) -> tuple[Path, ...]:
    """Write OUT-curves.png and OUT-metrics.csv of one run, or of runs continued one
    from the other (`chained_rows`), and OUT-branches.csv when `branches` (CROPS=RUN,
    `branch_rows`) are given; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps, epochs = chained_rows(run if isinstance(run, list) else [run])
    points = _eval_points(evals or [])
    fig = plt.figure(figsize=(11 if points else 6, 4.5 if points else 4))
    # with evaluations: the losses on the left, one small panel a figure on the right
    grid = fig.add_gridspec(3, 2, width_ratios=(3, 2)) if points else None
    ax = fig.add_subplot(grid[:, 0] if points else 111)
    loss = np.array([r["loss"] for r in steps])
    crops = np.array([r["step"] for r in steps]) * batch_size
    if len(loss) >= SMOOTH:
        mean = np.convolve(loss, np.ones(SMOOTH) / SMOOTH, mode="valid")
        ax.plot(crops[SMOOTH - 1 :], mean, label=f"train loss ({SMOOTH}-step mean)")
    ax.set_xlabel("crops seen")
    ax.set_ylabel("training loss (hinted crops included)")
    ax.grid(alpha=0.3)
    # the validation loss moves in the third decimal late in training: its own axis
    val_ax = ax.twinx()
    val_ax.plot(
        [r["step"] * batch_size for r in epochs],
        [r["val_loss"] for r in epochs],
        "o-",
        color="tab:orange",
        label="validation loss (no hints)",
    )
    tried = [branch_rows(item, batch_size) for item in branches or []]
    colours = ("tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")
    for i, (name, start, rows) in enumerate(tried):
        before = [r for r in epochs if r["step"] * batch_size <= start]
        xs = [start] if before else []
        ys = [before[-1]["val_loss"]] if before else []
        val_ax.plot(
            xs + [r["crops"] for r in rows],
            ys + [r["val_loss"] for r in rows],
            "x--",
            color=colours[i % len(colours)],
            label=f"validation loss, {name} (not kept)",
        )
    val_ax.set_ylabel("validation loss")
    lines = ax.get_legend_handles_labels()
    val_lines = val_ax.get_legend_handles_labels()
    ax.legend(lines[0] + val_lines[0], lines[1] + val_lines[1], fontsize=8)
    if points:
        xs = [p[0] for p in points]
        # each on its own axis: they differ in the second decimal, PSNR is about 23
        panels = (
            ("kid", 1000.0, "KID x 1000"),
            ("stain_rate", 100.0, "stain rate %"),
            ("psnr", 1.0, "PSNR dB"),
        )
        for row, (key, scale, label) in enumerate(panels):
            panel = fig.add_subplot(grid[row, 1])
            panel.plot(xs, [scale * p[1][key] for p in points], "o-", color=f"C{row}")
            panel.set_ylabel(label, fontsize=8)
            panel.tick_params(labelsize=8)
            panel.ticklabel_format(axis="y", useOffset=False)
            panel.grid(alpha=0.3)
            if row < len(panels) - 1:
                panel.tick_params(labelbottom=False)
        panel.set_xlabel("crops seen (validation photos, automatic)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    png = Path(f"{out}-curves.png")
    atomic_write_bytes(png, buf.getvalue())
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["epoch", "step", "crops", "train_loss", "val_loss"])
    for r in epochs:
        writer.writerow(
            [
                int(r["epoch"]),
                int(r["step"]),
                int(r["step"]) * batch_size,
                f"{r['train_loss']:.4f}",
                f"{r['val_loss']:.4f}",
            ]
        )
    table = Path(f"{out}-metrics.csv")
    atomic_write_bytes(table, text.getvalue().encode())
    if not tried:
        return png, table
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["run", "epoch", "step", "crops", "train_loss", "val_loss"])
    for name, _, rows in tried:
        for r in rows:
            writer.writerow(
                [
                    name,
                    int(r["epoch"]),
                    int(r["step"]),
                    int(r["crops"]),
                    f"{r['train_loss']:.4f}",
                    f"{r['val_loss']:.4f}",
                ]
            )
    branch_table = Path(f"{out}-branches.csv")
    atomic_write_bytes(branch_table, text.getvalue().encode())
    return png, table, branch_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.training_curves",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--run",
        type=Path,
        nargs="+",
        required=True,
        help="training run folder; several: each continued from the one before",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", required=True, help="path prefix of the two files")
    parser.add_argument(
        "--eval", nargs="*", default=[], help="CROPS=summary.json of training.evaluate"
    )
    parser.add_argument(
        "--branch",
        nargs="*",
        default=[],
        help="CROPS=RUN: a continuation tried from the chain's weights at CROPS "
        "crops and not kept (drawn dashed; OUT-branches.csv)",
    )
    return run_main(
        parser, argv, _run, level=logging.WARNING, errors=(ValueError, OSError)
    )


def _run(args: argparse.Namespace) -> int:
    paths = write_curves(args.run, args.batch_size, args.out, args.eval, args.branch)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

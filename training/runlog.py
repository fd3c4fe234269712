"""The run log of `training.train` in its run folder: `metrics.csv` (one row an
epoch: epoch, step, train_loss, val_loss, seconds), `steps.csv` (one row a step:
step, epoch, loss, lr) and `curves.png`. Only the chief writes them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from core.atomic import atomic_write_bytes

__all__ = [
    "STEP_FIELDS",
    "RunLog",
    "append_steps",
    "plot_curves",
    "plot_rows",
    "read_rows",
    "trim_steps",
    "write_metrics",
]

STEP_FIELDS = ("step", "epoch", "loss", "lr")


class RunLog:
    """The rows of one run: the epochs so far, and the steps not yet written.

    Made at the step a run starts or resumes from: rows logged after that step (by a
    run killed before its next checkpoint) are dropped, so the files read as those of
    an uninterrupted run.
    """

    def __init__(self, out: Path, chief: bool, epoch: int, step: int) -> None:
        self.out, self.chief = Path(out), chief
        self.rows = [
            r for r in read_rows(self.out / "metrics.csv") if r["epoch"] <= epoch
        ]
        # this epoch's steps logged before the resume, so the epoch's mean is unchanged
        self.logged = trim_steps(self.out / "steps.csv", step) if chief else []
        self.pending: list[dict] = []

    def losses_after(self, step: int) -> list[float]:
        """Losses logged before the resume for the steps after `step`."""
        return [r["loss"] for r in self.logged if r["step"] > step]

    def add_step(self, step: int, epoch: int, loss: float, lr: float) -> None:
        """Keep one step's row until the next `flush_steps`."""
        self.pending.append({"step": step, "epoch": epoch, "loss": loss, "lr": lr})

    def flush_steps(self) -> None:
        """Append the kept step rows to steps.csv (before the checkpoint they
        precede)."""
        if self.chief:
            append_steps(self.pending, self.out / "steps.csv")
        self.pending = []

    def end_epoch(self, row: dict) -> None:
        """Add an epoch's row; write steps.csv, metrics.csv and curves.png."""
        self.rows.append(row)
        self.flush_steps()
        self.logged = []
        if self.chief:
            write_metrics(self.rows, self.out / "metrics.csv")
            plot_curves(self.rows, self.out / "curves.png")


def plot_curves(rows: list[dict], path: Path) -> None:
    """Train and validation loss against epoch, as a PNG written atomically."""
    lines = [
        ("train_loss", "train", {"fmt": "o-"}),
        ("val_loss", "validation", {"fmt": "s-"}),
    ]
    plot_rows(rows, "epoch", lines, "loss", path, width=6)


def plot_rows(
    rows: list[dict],
    x: str,
    lines: list[tuple[str, str, dict]],
    ylabel: str,
    path: Path,
    width: float = 6,
) -> None:
    """Columns of `rows` against column `x`, as a PNG (width x 4 inches, 100 dpi)
    written atomically. lines: (column, legend label, {"fmt": ..., or Matplotlib
    keyword arguments such as "color"})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, 4), dpi=100)
    xs = [r[x] for r in rows]
    for column, label, style in lines:
        style = dict(style)
        fmt = style.pop("fmt", None)
        args = (xs, [r[column] for r in rows]) + ((fmt,) if fmt else ())
        ax.plot(*args, label=label, **style)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_metrics(rows: list[dict], path: Path) -> None:
    """Write `rows` (dicts with the same keys) as a CSV file, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def read_rows(path: Path) -> list[dict]:
    """The rows of metrics.csv or steps.csv (epoch and step int, the rest float);
    [] when there is no file."""
    if not path.exists():
        return []
    with path.open() as f:
        return [
            {k: (int(v) if k in ("epoch", "step") else float(v)) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


def append_steps(rows: list[dict], path: Path) -> None:
    """Append per-step rows to steps.csv (before the checkpoint they precede)."""
    if not rows:
        return
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=STEP_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()


def trim_steps(path: Path, step: int) -> list[dict]:
    """Drop rows past `step` (logged after the checkpoint resumed from); the rest."""
    rows = read_rows(path)
    kept = [r for r in rows if r["step"] <= step]
    if len(kept) != len(rows):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=STEP_FIELDS)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_bytes(path, buf.getvalue().encode())
    return kept

"""benchmarks.training_curves: one run, and runs continued one from the other."""

import csv
from pathlib import Path

from benchmarks.training_curves import chained_rows, main


def _write_run(folder: Path, steps: int, epoch_steps: int, loss: float) -> Path:
    folder.mkdir()
    with (folder / "steps.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "epoch", "loss", "lr"])
        for s in range(1, steps + 1):
            w.writerow([s, (s - 1) // epoch_steps + 1, loss - 0.001 * s, 1e-4])
    with (folder / "metrics.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "train_loss", "val_loss", "seconds"])
        for e in range(1, steps // epoch_steps + 1):
            w.writerow([e, e * epoch_steps, loss, loss - 0.5, 1.0])
    return folder


def test_a_continued_run_counts_its_steps_on_after_the_first(tmp_path) -> None:
    first = _write_run(tmp_path / "a", steps=60, epoch_steps=20, loss=4.0)
    second = _write_run(tmp_path / "b", steps=40, epoch_steps=20, loss=3.0)
    steps, epochs = chained_rows([first, second])
    assert [r["step"] for r in steps] == list(range(1, 101))
    assert [(r["epoch"], r["step"]) for r in epochs] == [
        (1, 20),
        (2, 40),
        (3, 60),
        (4, 80),
        (5, 100),
    ]
    assert epochs[3]["val_loss"] == 2.5
    out = tmp_path / "docs" / "curves"
    out.parent.mkdir()
    assert main(["--run", str(first), str(second), "--out", str(out)]) == 0
    assert (tmp_path / "docs" / "curves-curves.png").stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "docs" / "curves-metrics.csv").open()))
    assert [int(r["crops"]) for r in rows] == [320, 640, 960, 1280, 1600]


def test_a_branch_not_kept_is_drawn_from_its_start_and_listed_apart(
    tmp_path, capsys
) -> None:
    first = _write_run(tmp_path / "a", steps=60, epoch_steps=20, loss=4.0)
    tried = _write_run(tmp_path / "tried", steps=40, epoch_steps=20, loss=3.8)
    out = tmp_path / "curves"
    args = ["--run", str(first), "--out", str(out), "--branch", f"640={tried}"]
    assert main(args) == 0
    chain = list(csv.DictReader((tmp_path / "curves-metrics.csv").open()))
    assert [int(r["crops"]) for r in chain] == [320, 640, 960]
    rows = list(csv.DictReader((tmp_path / "curves-branches.csv").open()))
    assert [(r["run"], int(r["crops"])) for r in rows] == [
        ("tried", 960),
        ("tried", 1280),
    ]
    assert float(rows[0]["val_loss"]) == 3.3
    assert (tmp_path / "curves-curves.png").stat().st_size > 1000
    assert main(["--run", str(first), "--out", str(out), "--branch", "oops"]) == 2
    assert "expected CROPS=RUN" in capsys.readouterr().err

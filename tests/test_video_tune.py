"""benchmarks.video_tune: its choice rule, and a tiny run on shards made here."""

import json

import pytest

from benchmarks import video_tune
from tests.samples import sample_shards


def _row(ratio: float, loss: float, psnr: float, runs: int) -> dict:
    return {
        "flicker_ratio": ratio,
        "psnr_loss_db": loss,
        "psnr_db": psnr,
        "keyframes": runs,
    }


def test_choice_keeps_the_goals_then_the_best_psnr_then_fewer_runs() -> None:
    rows = [
        _row(0.6, 0.0, 30.0, 10),  # flickers too much
        _row(0.4, 0.3, 29.0, 10),  # loses too much PSNR
        _row(0.5, 0.2, 25.0, 20),
        _row(0.45, 0.1, 25.0, 12),
        _row(0.3, -0.1, 24.0, 8),
    ]
    assert video_tune.choose(rows) is rows[3]
    assert video_tune.choose(rows[:2]) is None


@pytest.mark.slow
def test_tiny_sweep_writes_its_table_and_record(tmp_path) -> None:
    shards = sample_shards(tmp_path, ("astronaut", "coffee"), ".jpg")
    out = tmp_path / "tune.md"
    args = ["--photos", str(shards), "--shots", "2", "--shot-frames", "6"]
    args += ["--width", "96", "--height", "64", "--size", "64", "--blends", "0.2"]
    args += ["--intervals", "3", "--out", str(out)]
    assert video_tune.main(args) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["per_frame"]["keyframes"] == 12
    (row,) = record["rows"]
    assert row["keyframe_interval"] == 3 and 0 < row["keyframes"] < 12
    assert row["flicker"] >= 0 and row["psnr_db"] > 0
    assert "| 3 | 0.2 |" in out.read_text()

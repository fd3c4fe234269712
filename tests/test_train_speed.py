"""benchmarks.train_speed: the shipped-step baseline computes the same loss as
today's, and a tiny run gives a positive figure for every row (never a speed check)."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import train_speed
from core.colorspace import rgb_to_lab
from core.quantize import NUM_BINS
from tests.samples import sample_shards
from training.losses import classification_loss


def test_shipped_loss_has_todays_values() -> None:
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (3, 4, 7, 3), dtype=np.uint8)
    ab = tf.constant(rgb_to_lab(rgb)[..., 1:], tf.float32)
    logits = tf.constant(rng.normal(0, 2, (3, 4, 7, NUM_BINS)), tf.float32)
    weights = tf.constant(rng.uniform(0.5, 3.0, NUM_BINS), tf.float32)
    old = train_speed.shipped_classification_loss(logits, ab, weights)
    new = classification_loss(logits, ab, weights)
    assert float(old) == pytest.approx(float(new), rel=1e-5)


@pytest.mark.slow
def test_tiny_run_writes_a_row_per_model(tmp_path) -> None:
    shards = sample_shards(tmp_path, ("astronaut", "coffee"))
    out = tmp_path / "speed.md"
    args = ["--models", "default", "--data", str(shards), "--size", "64"]
    args += ["--batch-size", "2", "--rounds", "1", "--steps", "1", "--shipped-step"]
    args += ["--frozen-encoder", "default", "--frozen-to", "4", "default"]
    assert train_speed.main([*args, "--out", str(out)]) == 0
    rows = [r for r in out.read_text().splitlines() if r.startswith("| default")]
    labels = [train_speed.SHIPPED, "default", "default" + train_speed.FROZEN]
    labels.append("default (encoder frozen to stride 4)")
    assert [r.split("|")[1].strip() for r in rows] == labels
    assert rows[0].rstrip().endswith("| 1.00x |")
    for row in rows:
        assert float(row.split("|")[4]) > 0


def test_row_labels_name_their_training_settings() -> None:
    assert train_speed.row_model(train_speed.SHIPPED) == ("default-v1", True, {})
    frozen = train_speed.row_model("default" + train_speed.FROZEN)
    assert frozen == ("default", False, {"encoder_lr_factor": 0.0})
    label = train_speed.frozen_to_label("default-v1", 0)
    assert label == "default-v1 (encoder frozen to stride 0)"
    assert train_speed.row_model(label) == (
        "default-v1",
        False,
        {"encoder_frozen_stride": 0},
    )
    with pytest.raises(SystemExit):
        train_speed.main(["--frozen-to", "default", "--data", "."])

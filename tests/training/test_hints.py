"""Simulated user hints (training/hints.py) and training a hint model on them."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from core.colorspace import rgb_to_lab
from training.data import PipelineConfig, make_dataset
from training.hints import HintConfig, simulate_hints
from training.train_config import TrainConfig
from training.trainer import Trainer


@pytest.fixture(scope="module")
def ab() -> tf.Tensor:
    """The true ab of a 96 x 96 crop of skimage's astronaut, float32 (96, 96, 2)."""
    rgb = skimage.data.astronaut()[::4, ::4][:96, :96] / 255.0
    return tf.constant(rgb_to_lab(rgb)[..., 1:], tf.float32)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Four colour PNGs from scikit-image."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skimage.data, name)()[::4, ::4]).save(
            folder / f"{name}.png"
        )
    return folder


def _seed(i: int) -> tf.Tensor:
    return tf.constant([0, i], tf.int64)


@pytest.mark.slow
def test_hints_follow_the_simulated_user(ab) -> None:
    n = 300
    empty, areas = 0, []
    for i in range(n):
        h = simulate_hints(ab, _seed(i)).numpy()
        assert h.shape == (96, 96, 3)
        mask = h[..., 2]
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert np.all(h[..., :2][mask == 0] == 0)
        if mask.sum() == 0:
            empty += 1
        else:
            areas.append(mask.sum())
    # half of the crops get no hint (binomial, 300 draws: 4 sigma is 0.115)
    assert abs(empty / n - 0.5) < 0.115
    # a geometric number of 1..9 px squares: mean area 8 x 31.7 px before overlaps
    assert 60 < np.mean(areas) < 400
    again = simulate_hints(ab, _seed(7)).numpy()
    assert np.array_equal(again, simulate_hints(ab, _seed(7)).numpy())


def test_a_single_patch_carries_its_mean_true_ab(ab) -> None:
    cfg = HintConfig(p_none=0.0, p_geometric=1.0)  # always exactly one point
    true = ab.numpy()
    for i in range(20):
        h = simulate_hints(ab, _seed(i), cfg=cfg).numpy()
        ys, xs = np.nonzero(h[..., 2])
        side = ys.max() - ys.min() + 1
        assert 1 <= side <= 9 and len(ys) == side * side
        patch = true[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        np.testing.assert_allclose(
            h[ys[0], xs[0], :2] * 110.0, patch.mean(axis=(0, 1)), atol=1e-3
        )


@pytest.mark.slow
def test_a_hint_model_trains_on_the_pipelines_hints(photo_dir) -> None:
    pipe = PipelineConfig(size=64, output_stride=4, batch_size=4, hints=True)
    batch = next(iter(make_dataset([str(photo_dir)], pipe, training=True)))
    lightness, target, hints = batch
    assert lightness.shape == (4, 64, 64, 1) and target.shape == (4, 16, 16, 2)
    assert hints.shape == (4, 64, 64, 3)
    val = next(iter(make_dataset([str(photo_dir)], pipe, training=False)))
    assert len(val) == 3 and float(tf.reduce_sum(val[2])) == 0.0
    cfg = TrainConfig(model="default", pretrained=False, size=64, batch_size=4)
    trainer = Trainer(cfg, 10, np.ones(313))
    inject = trainer.model.get_layer("hint16_inject").kernel.numpy().copy()
    first = float(trainer.train_step(*batch))
    assert np.isfinite(first)
    for _ in range(3):
        trainer.train_step(*batch)
    # the zero-initialised injections learn from the hints
    assert (
        np.abs(trainer.model.get_layer("hint16_inject").kernel.numpy() - inject).max()
        > 0
    )
    assert np.isfinite(float(trainer.eval_step(lightness, target)))


@pytest.mark.slow
def test_training_leaves_the_untrained_hint_vote_out_unless_asked(photo_dir) -> None:
    pipe = PipelineConfig(size=64, output_stride=4, batch_size=4, hints=True)
    lightness, target, hints = next(
        iter(make_dataset([str(photo_dir)], pipe, training=True, seed=1))
    )
    assert float(tf.reduce_sum(hints[..., 2])) > 0  # some crops carry hints
    cfg = TrainConfig(model="default", pretrained=False, size=64, batch_size=4)
    plain = Trainer(cfg, 10, np.ones(313))
    voting = Trainer(
        TrainConfig(**{**cfg.__dict__, "hint_spread": True}), 10, np.ones(313)
    )
    assert plain.model.get_layer("hint_evidence").spread == 0.0
    assert voting.model.get_layer("hint_evidence").spread > 0.0
    voting.model.set_weights(plain.model.get_weights())
    # the same weights: with hints the vote changes the logits, without it does not
    inputs = plain.model_inputs(lightness, hints)
    out_plain = plain.model(inputs, training=False).numpy()
    out_voting = voting.model(inputs, training=False).numpy()
    assert np.abs(out_plain - out_voting).max() > 1.0
    no_hints = plain.model_inputs(lightness, None)
    np.testing.assert_allclose(
        plain.model(no_hints, training=False).numpy(),
        voting.model(no_hints, training=False).numpy(),
        atol=1e-5,
    )

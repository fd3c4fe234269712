"""The perceptual term on real photos: zero for the truth, more for worse renderings."""

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from skimage.transform import resize

from core.colorspace import rgb_to_lab
from core.quantize import NUM_BINS, decode_logits
from training.perceptual import PerceptualTerm, decode_annealed_tf, decode_corrected_tf
from training.train_config import TrainConfig
from training.trainer import Trainer

SIZE = 64


@pytest.fixture(scope="module")
def batch() -> tuple[tf.Tensor, tf.Tensor]:
    """Lightness (2, 64, 64, 1) and stride-2 ab (2, 32, 32, 2) of two sample photos."""
    labs = []
    for name in ("chelsea", "coffee"):
        rgb = resize(getattr(skimage.data, name)(), (SIZE, SIZE), anti_aliasing=True)
        labs.append(rgb_to_lab(rgb.astype(np.float32)))
    lab = tf.constant(np.stack(labs), tf.float32)
    ab = tf.nn.avg_pool2d(lab[..., 1:], 2, 2, "VALID")
    return lab[..., :1], ab


@pytest.fixture(scope="module")
def term() -> PerceptualTerm:
    return PerceptualTerm()


def test_annealed_mean_matches_the_numpy_decoder(rng) -> None:
    logits = rng.normal(0.0, 3.0, (4, 5, NUM_BINS)).astype(np.float32)
    np.testing.assert_allclose(
        decode_annealed_tf(tf.constant(logits)).numpy(),
        decode_logits(logits),
        atol=1e-3,
    )


def test_the_truth_scores_zero_and_worse_renderings_score_more(term, batch) -> None:
    lightness, ab = batch
    exact = term(lightness, ab, ab).numpy()
    faded = term(lightness, 0.5 * ab, ab).numpy()
    grey = term(lightness, tf.zeros_like(ab), ab).numpy()
    assert exact.shape == (2,)
    np.testing.assert_allclose(exact, 0.0, atol=1e-5)
    assert np.all(faded > 1e-3)
    assert np.all(grey > faded)


def test_gradients_reach_the_logits(term, batch, rng) -> None:
    lightness, ab = batch
    logits = tf.Variable(
        rng.normal(0.0, 1.0, (*ab.shape[:3], NUM_BINS)), dtype=tf.float32
    )
    with tf.GradientTape() as tape:
        pred_ab = decode_corrected_tf(logits, np.ones(NUM_BINS, np.float32), 0.0)
        loss = tf.reduce_mean(term(lightness, pred_ab, ab))
    grad = tape.gradient(loss, logits).numpy()
    assert np.all(np.isfinite(grad))
    assert np.abs(grad).max() > 0


def test_the_prior_correction_changes_the_decoded_photo(batch, rng) -> None:
    lightness, ab = batch
    weights = rng.uniform(0.2, 5.0, NUM_BINS).astype(np.float32)
    logits = tf.constant(rng.normal(0.0, 1.0, (*ab.shape[:3], NUM_BINS)), tf.float32)
    plain = decode_corrected_tf(logits, weights, 0.0).numpy()
    corrected = decode_corrected_tf(logits, weights, 0.5).numpy()
    shifted = logits - 0.5 * np.log(weights)
    np.testing.assert_allclose(corrected, decode_logits(shifted.numpy()), atol=1e-3)
    assert np.abs(plain - corrected).max() > 1.0


@pytest.mark.slow
def test_trainer_adds_the_term_only_when_asked(batch) -> None:
    lightness, ab = batch
    cfg = TrainConfig(
        model="default-v1", size=SIZE, batch_size=2, lr=1e-4, pretrained=False
    )
    plain = Trainer(cfg, 10, np.ones(NUM_BINS))
    with_term = Trainer(
        TrainConfig(**{**cfg.__dict__, "perceptual": 2.0}), 10, np.ones(NUM_BINS)
    )
    assert plain.perceptual is None and with_term.perceptual is not None
    with_term.model.set_weights(plain.model.get_weights())
    out = plain.model(lightness / 100.0, training=False)
    pixel = float(plain.loss(out, ab, lightness))
    assert float(with_term.loss(out, ab)) == pytest.approx(pixel, rel=1e-6)
    extra = float(
        tf.reduce_mean(with_term.perceptual(lightness, with_term.decoded_ab(out), ab))
    )
    assert extra > 0
    assert float(with_term.loss(out, ab, lightness)) == pytest.approx(
        pixel + 2.0 * extra, rel=1e-5
    )
    before = [w.numpy().copy() for w in with_term.dec_vars[-2:]]
    loss = float(with_term.train_step(lightness, ab))
    assert np.isfinite(loss)
    assert any(
        not np.allclose(b, w.numpy())
        for b, w in zip(before, with_term.dec_vars[-2:], strict=True)
    )

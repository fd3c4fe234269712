"""Training-mode batch normalisation through the fused kernel: as Keras computes it."""

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from core.models import create_model
from training.fused_bn import fuse_batch_norms


def _net(seed: int) -> keras.Model:
    """conv -> BN (trained) -> ReLU -> conv -> BN (frozen, inference mode)."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(8, 3, padding="same")(x)
    y = keras.layers.BatchNormalization(momentum=0.9)(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(4, 3, padding="same")(y)
    frozen = keras.layers.BatchNormalization(name="frozen")
    y = frozen(y)
    net = keras.Model(x, y)
    frozen.moving_mean.assign(np.linspace(-1, 1, 4))
    frozen.moving_variance.assign(np.linspace(0.5, 2, 4))
    frozen.trainable = False
    return net


def _step(net: keras.Model, x: np.ndarray) -> tuple:
    """Output, gradients (float64 copies) and non-trainable weights after one
    training-mode pass of `net` on x."""
    x = tf.constant(x, net.weights[0].dtype)
    with tf.GradientTape() as tape:
        y = net(x, training=True)
        loss = tf.reduce_sum(tf.sin(y))
    grads = tape.gradient(loss, net.trainable_weights)
    stats = [v.numpy() for v in net.non_trainable_weights]
    return y.numpy(), [g.numpy().astype(np.float64) for g in grads], stats


@pytest.mark.parametrize("shape", [(2, 3, 3), (4, 32, 48)], ids=["18-pixel", "photo"])
def test_fused_training_step_equals_keras(shape) -> None:
    batch, h, w = shape
    photo = skimage.data.astronaut()[::8, ::8][:h, :w] / 255.0
    x = np.stack([np.roll(photo, 3 * i, axis=1) for i in range(batch)])
    plain, fused = _net(1), _net(1)
    assert fuse_batch_norms(fused) == 2
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        exact = _net(1)  # the same network in float64: the reference
    finally:
        keras.config.set_dtype_policy(previous)
    for a, b in zip(exact.weights, plain.weights, strict=True):
        a.assign(b.numpy().astype(np.float64))
    y0, g0, s0 = _step(plain, x)
    y1, g1, s1 = _step(fused, x)
    _, g64, _ = _step(exact, x)
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-5)
    # gradients through a batch normalisation cancel heavily: float32 rounding alone
    # moves them by about 1e-6 of their scale, so each is compared with the float64
    # result, against the error of Keras's own float32 computation
    scale = max(np.abs(g).max() for g in g64)
    for exact_g, keras_g, fused_g in zip(g64, g0, g1, strict=True):
        keras_error = np.abs(keras_g - exact_g).max()
        assert np.abs(fused_g - exact_g).max() <= 3 * keras_error + 1e-6 * scale
    # the moving averages: biased batch variance, as Keras (18 pixels: a 6 % gap)
    for a, b in zip(s0, s1, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # inference mode is Keras's own code (on moving averages equal up to rounding)
    np.testing.assert_allclose(
        fused(x, training=False), plain(x, training=False), rtol=1e-5, atol=1e-5
    )


@pytest.mark.slow
def test_default_model_keeps_its_saved_form(tmp_path) -> None:
    net = create_model("default", pretrained=False)
    before = tmp_path / "before.weights.h5"
    net.save_weights(before)
    bns = [
        la
        for la in net._flatten_layers(include_self=False, recursive=True)
        if isinstance(la, keras.layers.BatchNormalization)
    ]
    assert fuse_batch_norms(net) == len(bns) > 8
    assert fuse_batch_norms(net) == 0  # once only
    after = tmp_path / "after.weights.h5"
    net.save_weights(after)
    again = create_model("default", pretrained=False)
    again.load_weights(after)
    for a, b in zip(net.weights, again.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("fused", [True, False])
def test_trainer_fuses_unless_told_not_to(fused) -> None:
    import functools

    from training.train_config import TrainConfig
    from training.trainer import Trainer

    cfg = TrainConfig(
        model="default-v1", pretrained=False, size=64, fused_batch_norm=fused
    )
    trainer = Trainer(cfg, total_steps=10, class_weights=np.ones(313))
    decoder_bn = trainer.model.get_layer("up1_a_bn")
    assert isinstance(decoder_bn.call, functools.partial) == fused

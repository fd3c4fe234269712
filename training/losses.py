"""The pixel losses of the Lab models (docs/design.md 4.2), in float32: rebalanced
cross-entropy for 313-bin models, mean squared error on normalised ab for regression
models."""

from __future__ import annotations

import tensorflow as tf

from core.quantize import soft_encode_tf

__all__ = ["classification_loss", "regression_loss"]


def classification_loss(
    logits: tf.Tensor,
    ab: tf.Tensor,
    class_weights: tf.Tensor,
    *,
    per_example: bool = False,
) -> tf.Tensor:
    """Rebalanced cross-entropy against soft-encoded ab (docs/design.md 4.2).

    logits: float32 (B, h, w, 313); ab: float32 (B, h, w, 2) in CIE units;
    class_weights: float32 (313,). Returns the mean over the B*h*w pixels, or
    float32 (B,) means over each example's pixels when per_example.
    """
    target = soft_encode_tf(ab)
    v = tf.gather(class_weights, tf.argmax(target, axis=-1))
    ce = -tf.reduce_sum(target * tf.nn.log_softmax(logits, axis=-1), axis=-1)
    return tf.reduce_mean(v * ce, axis=(1, 2) if per_example else None)


def regression_loss(
    ab_norm_pred: tf.Tensor,
    ab: tf.Tensor,
    ab_scale: float,
    *,
    per_example: bool = False,
) -> tf.Tensor:
    """Mean squared error on ab / ab_scale (docs/design.md 4.2).

    Returns the mean over the B*h*w pixels, or float32 (B,) when per_example.
    """
    error = tf.reduce_sum(tf.square(ab_norm_pred - ab / ab_scale), -1)
    return tf.reduce_mean(error, axis=(1, 2) if per_example else None)

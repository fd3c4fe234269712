"""The pixel losses of the Lab models (docs/design.md 4.2), in float32: rebalanced
cross-entropy for 313-bin models, mean squared error on normalised ab for regression
models."""

from __future__ import annotations

import tensorflow as tf

from core.quantize import soft_encode_sparse_tf

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

    The target has 5 non-zero weights per pixel, so the cross-entropy
    -sum_q z_q log softmax(logits)_q is computed as logsumexp(logits) - sum_k w_k
    logits[idx_k] (the weights sum to 1), without the dense (B, h, w, 313) target;
    each pixel is weighted by the rebalancing weight of its nearest bin.
    """
    idx, w = soft_encode_sparse_tf(ab)
    v = tf.gather(class_weights, idx[..., 0])
    picked = tf.gather(logits, idx, batch_dims=logits.shape.rank - 1)
    ce = tf.reduce_logsumexp(logits, axis=-1) - tf.reduce_sum(w * picked, axis=-1)
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

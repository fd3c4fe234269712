"""Batch normalisation in training mode through TensorFlow's fused kernel
(docs/design.md 4.2, speed).

Keras 3 computes a training-mode `BatchNormalization` as separate moments, multiply
and add operations, several passes over the activations each way; TensorFlow's
`FusedBatchNormV3` does the forward pass in one kernel and the backward pass in
another, about 3x faster on a CPU for the decoder's stride-2 layers. The values are
the same up to rounding: the normalisation uses the batch's biased variance, and the
moving averages are updated exactly as Keras updates them (the fused kernel returns
the unbiased variance, which is scaled back). Layers in inference mode (the frozen
encoder's) keep Keras's code: the fused kernel is no faster there. Training only:
nothing in `core` uses this.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

__all__ = ["fuse_batch_norms"]


def _fusable(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, keras.layers.BatchNormalization)
        and layer.axis in (-1, 3)
        and not layer.renorm
        and layer.center
        and layer.scale
        and layer.dtype_policy.compute_dtype == "float32"
    )


def _fused_call(layer, keras_call, inputs, training=None, mask=None):
    """`layer`'s call: the fused kernel for 4-D float32 inputs of a trainable layer in
    training mode, Keras's own call (`keras_call`) otherwise."""
    if (
        not training
        or not layer.trainable
        or mask is not None
        or len(inputs.shape) != 4
        or inputs.dtype != tf.float32
    ):
        return keras_call(inputs, training=training, mask=mask)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        inputs,
        layer.gamma.value,
        layer.beta.value,
        epsilon=layer.epsilon,
        is_training=True,
    )
    # the kernel returns the unbiased variance; Keras averages the biased one
    count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
    variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
    momentum = layer.momentum
    layer.moving_mean.assign(layer.moving_mean * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(
        layer.moving_variance * momentum + variance * (1.0 - momentum)
    )
    return y


def fuse_batch_norms(model: keras.Model) -> int:
    """Route the training-mode passes of `model`'s float32, channels-last batch
    normalisations (nested models included) through the fused kernel.

    Changes only how the layers compute, not their weights or saved form (the
    layers keep their class). Returns the number of layers changed.
    """
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if _fusable(layer) and not isinstance(layer.call, functools.partial):
            layer.call = functools.partial(_fused_call, layer, layer.call)
            count += 1
    return count

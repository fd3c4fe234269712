"""Freeze the first stages of a model's encoder (`--encoder-frozen-stride`).

The encoder's early, high-resolution stages compute generic edge and texture features;
they move little in fine-tuning at the encoder's reduced learning rate, yet their
backward passes (depthwise filter gradients at strides 2 and 4) are among the step's
most expensive operations. Freezing them skips those passes: no gradient reaches a
layer that has no trainable weight downstream of it (docs/design.md 3.2).
"""

from __future__ import annotations

import keras

from core.errors import InvalidInputError

__all__ = ["encoder_strides", "freeze_encoder_to"]


def encoder_strides(encoder: keras.Model) -> list[int]:
    """Output strides of the encoder's outputs, in order: [2, 4, 8, 16, 32] for the
    U-Net's EfficientNet-Lite encoder (one output per stride, finest first)."""
    return [2 ** (k + 1) for k in range(len(encoder.outputs))]


def freeze_encoder_to(encoder: keras.Model, stride: int) -> list[str]:
    """Make every layer of `encoder` that its stride-`stride` output depends on
    non-trainable; returns the frozen layers' names, in the encoder's order.

    stride: one of `encoder_strides(encoder)`, or 0 to freeze nothing. The layers
    after that output (and the decoder) keep training. Raises InvalidInputError for
    another stride.
    """
    if stride == 0:
        return []
    strides = encoder_strides(encoder)
    if stride not in strides:
        raise InvalidInputError(
            f"--encoder-frozen-stride {stride}: expected 0 or one of {strides}"
        )
    # a model of the encoder's input and that output holds exactly its ancestors
    upto = keras.Model(encoder.inputs, encoder.outputs[strides.index(stride)])
    names = {layer.name for layer in upto.layers}
    frozen = [layer for layer in encoder.layers if layer.name in names]
    for layer in frozen:
        layer.trainable = False
    return [layer.name for layer in frozen]

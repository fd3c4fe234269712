"""An adversarial training term: a critic that tells decoded chroma from real chroma.

The cross-entropy over ab bins (docs/design.md 4.2) rewards the most likely colour of
each pixel on its own, and the annealed mean then averages the rest away: photos come
out paler than real ones. This term adds a conditional patch critic (after the
discriminators of pix2pix, Isola et al. 2017, and of Cao et al. 2017): it sees the
lightness with either the true chroma or the chroma the user would see (the logits
decoded by annealed mean after the inference-time prior correction, as in
`training.perceptual`), and scores overlapping patches as real or decoded.

- critic: four convolutions on (L/50 - 1, a/110, b/110) at the model's output
  resolution (lightness pooled down to it), two of stride 2, LeakyReLU 0.2, no
  normalisation; one logit per patch;
- losses, hinge form (Lim and Ye 2017): the critic minimises
  mean(relu(1 - D(real))) + mean(relu(1 + D(decoded))); the colorizer adds
  weight x -mean(D(decoded)) to its own loss.

The critic is trained by its own Adam (beta_1 0.5) on the same batches, one update per
colorizer step, and is checkpointed with the run so that a resume is exact.

    term = AdversarialTerm()
    generator, critic = term(lightness, pred_ab, ab)            # float32 (B,) each
"""

from __future__ import annotations

import keras
import tensorflow as tf

from core.models.registry import AB_SCALE

__all__ = ["AdversarialTerm", "build_critic"]


def build_critic(width: int = 64) -> keras.Model:
    """Patch critic: float32 (B, h, w, 3) (L/50 - 1, a/110, b/110) -> (B, h/4, w/4, 1).

    Each output is an unbounded logit (positive: real) of a patch 26 output pixels
    wide.
    """
    inputs = keras.Input((None, None, 3), name="critic_input")
    x = inputs
    for i, (filters, kernel, stride) in enumerate(
        ((width, 4, 2), (2 * width, 4, 2), (4 * width, 3, 1))
    ):
        x = keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same", name=f"critic_conv{i}"
        )(x)
        x = keras.layers.LeakyReLU(0.2, name=f"critic_act{i}")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="critic_logit")(x)
    return keras.Model(inputs, x, name="critic")


class AdversarialTerm:
    """The critic, its optimizer and the two hinge losses of one batch.

    learning_rate: the critic's Adam rate; width: its first layer's filters.
    Create it inside the strategy scope that holds the colorizer.
    """

    def __init__(self, *, learning_rate: float = 2e-4, width: int = 64) -> None:
        self.net = build_critic(width)
        self.optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5)
        self.optimizer.build(self.net.trainable_weights)

    @property
    def variables(self) -> list:
        """The critic's trainable variables (the order of its gradients)."""
        return self.net.trainable_weights

    def scores(
        self, lightness: tf.Tensor, pred_ab: tf.Tensor, ab: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Patch logits, float32 (B, h/4, w/4, 1), of the decoded and of the true
        chroma (pred_ab and ab: (B, h, w, 2), CIE units) with lightness (B, S, S, 1)
        in [0, 100]."""
        small = tf.image.resize(lightness, tf.shape(ab)[1:3], method="area")
        small = small / 50.0 - 1.0

        def score(chroma: tf.Tensor) -> tf.Tensor:
            x = tf.concat([small, tf.cast(chroma, tf.float32) / AB_SCALE], -1)
            return tf.cast(self.net(x, training=True), tf.float32)

        return score(pred_ab), score(ab)

    def __call__(
        self, lightness: tf.Tensor, pred_ab: tf.Tensor, ab: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The colorizer's and the critic's loss of each example, float32 (B,) each.

        generator: minus the mean patch logit of the decoded chroma; critic:
        mean(relu(1 - real)) + mean(relu(1 + decoded)). One critic pass scores the
        decoded chroma for both: take the generator's gradients for the colorizer's
        variables only and the critic's for the critic's only.
        """
        fake, real = self.scores(lightness, pred_ab, ab)
        axes = (1, 2, 3)
        generator = -tf.reduce_mean(fake, axis=axes)
        critic = tf.reduce_mean(tf.nn.relu(1.0 - real), axis=axes) + tf.reduce_mean(
            tf.nn.relu(1.0 + fake), axis=axes
        )
        return generator, critic

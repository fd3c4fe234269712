"""The paper's conditional GAN in YUV, after Cao et al. 2017 (docs/design.md 3.5).

Generator (registered as "cgan"): inputs `y`, float32 (B, 64, 64, 1), the luma as
2Y - 1 in [-1, 1], and `z`, float32 (B, 100) noise in [-1, 1]. Output: normalised
chroma uv = (U / U_MAX, V / V_MAX), float32 (B, 64, 64, 2) in [-1, 1] (tanh). Each z
gives another plausible colorization of the same y.

Discriminator (not registered; only training uses it): the image [y, u, v], float32
(B, 64, 64, 3) in [-1, 1], to one logit per image, float32 (B, 1). The sigmoid
D(x) = sigmoid(logit) is applied by the losses (`from_logits`) and the accuracy.

Both follow docs/design.md 3.5.2 and 3.5.3 exactly (901,000 + 706 and
4,316,545 + 1,792 parameters). Initialisation and BatchNorm settings are those of Cao's
code, which builds on DCGAN-tensorflow.
"""

from __future__ import annotations

import keras
from keras import layers

from core.models.registry import ModelSpec, register_model

__all__ = [
    "DISCRIMINATOR_WIDTHS",
    "GENERATOR_BLOCKS",
    "INPUT_SIZE",
    "NOISE_DIM",
    "build_discriminator",
    "build_generator",
]

INPUT_SIZE = 64  # the paper's (and Cao's) image side; the network is fixed to it
NOISE_DIM = 100  # s_z, paper Table 1
# (kernel, filters) of generator blocks 1-5, each Conv-BN-ReLU then concat [., y, Z]
GENERATOR_BLOCKS = ((7, 128), (5, 64), (5, 64), (5, 64), (5, 32))
DISCRIMINATOR_WIDTHS = (64, 128, 256, 512)  # d1-d4, 5x5 stride-2 convolutions
_KERNEL = 5  # Cao's default kernel size (last generator conv and the discriminator)
_LEAK = 0.2  # LeakyReLU slope of the discriminator
# DCGAN-tensorflow's batch_norm (which Cao's code uses): momentum 0.9, epsilon 1e-5.
# The faster moving averages also matter here: the paper stops at 1,000 iterations.
_BN = {"momentum": 0.9, "epsilon": 1e-5}


def _init() -> keras.initializers.Initializer:
    """N(0, 0.02) weights, as in DCGAN and Cao's code (a fresh instance per layer)."""
    return keras.initializers.RandomNormal(stddev=0.02)


def build_generator(
    spec: ModelSpec, *, pretrained: bool = False, noise_dim: int | None = None
) -> keras.Model:
    """Build the cGAN generator G(y, z) (docs/design.md 3.5.2).

    spec: the "cgan" spec (input_size 64; noise_dim 100).
    pretrained: ignored: nothing in the cGAN starts from pretrained weights (accepted
        because every caller of `create_model` may pass it).
    noise_dim: length of z (default: spec.noise_dim). Weights made with another length
        do not load into the registered model.
    Returns a Keras model: [y float32 (B, 64, 64, 1) in [-1, 1], z float32
    (B, noise_dim) in [-1, 1]] -> uv float32 (B, 64, 64, 2) in [-1, 1].
    """
    size = spec.input_size
    noise_dim = spec.noise_dim if noise_dim is None else int(noise_dim)
    y = keras.Input((size, size, 1), name="y")
    z = keras.Input((noise_dim,), name="z")
    # Cao's code maps z to a noise image Z the size of y with one dense layer
    noise = layers.Dense(size * size, kernel_initializer=_init(), name="noise_dense")(z)
    noise = layers.Reshape((size, size, 1), name="noise_map")(noise)
    noise = layers.BatchNormalization(**_BN, name="noise_bn")(noise)
    noise = layers.ReLU(name="noise_relu")(noise)
    x = layers.Concatenate(name="input_concat")([y, noise])
    for i, (kernel, filters) in enumerate(GENERATOR_BLOCKS, start=1):
        x = layers.Conv2D(
            filters,
            kernel,
            padding="same",
            kernel_initializer=_init(),
            name=f"block{i}_conv",
        )(x)
        x = layers.BatchNormalization(**_BN, name=f"block{i}_bn")(x)
        x = layers.ReLU(name=f"block{i}_relu")(x)
        # multi-layer condition and noise: every block sees y and Z again
        x = layers.Concatenate(name=f"block{i}_concat")([x, y, noise])
    last = len(GENERATOR_BLOCKS) + 1
    x = layers.Conv2D(
        2, _KERNEL, padding="same", kernel_initializer=_init(), name=f"block{last}_conv"
    )(x)
    uv = layers.Activation("tanh", name="uv_norm")(x)
    return keras.Model([y, z], uv, name="cgan_generator")


def build_discriminator() -> keras.Model:
    """Build the cGAN discriminator D (docs/design.md 3.5.3).

    Returns a Keras model: [y, u, v] float32 (B, 64, 64, 3), all normalised to
    [-1, 1] -> logit float32 (B, 1); D = sigmoid(logit) is the probability of "real".
    """
    image = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="yuv_norm")
    x = image
    for i, filters in enumerate(DISCRIMINATOR_WIDTHS, start=1):
        x = layers.Conv2D(
            filters,
            _KERNEL,
            strides=2,
            padding="same",
            kernel_initializer=_init(),
            name=f"d{i}_conv",
        )(x)
        if i > 1:  # no BN on the first layer, as in DCGAN and Cao's code
            x = layers.BatchNormalization(**_BN, name=f"d{i}_bn")(x)
        x = layers.LeakyReLU(_LEAK, name=f"d{i}_lrelu")(x)
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, kernel_initializer=_init(), name="logit")(x)
    return keras.Model(image, logit, name="cgan_discriminator")


register_model(
    ModelSpec(
        name="cgan",
        color_space="yuv",
        input_size=INPUT_SIZE,
        size_multiple=INPUT_SIZE,
        fixed_size=True,
        output="uv",
        output_stride=1,
        noise_dim=NOISE_DIM,
        weights="cgan.weights.h5",
        description="conditional GAN in YUV (Cao et al. 2017), 64x64, one colorization "
        "per seed",
        # paper Table 1
        train_defaults={"lr": 5e-5, "batch_size": 64, "noise_dim": NOISE_DIM},
    )
)(build_generator)

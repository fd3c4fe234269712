"""Zhang et al.'s modified VGG16 colorizer, regression and classification heads
(docs/design.md 3.4).

Input: normalised lightness L / 100, float32 (B, H, W, 1) in [0, 1], H and W multiples
of 8. The body is Zhang's `colorization_deploy_v2`: VGG16 without pooling (stride-2
convolutions instead), dilated conv5 and conv6, BatchNorm after blocks 1-7 and a
transposed convolution back up to stride 4. Output at stride 4: 313 ab-bin logits
("vgg16-cls") or ab / 128 in [-1, 1] ("vgg16-reg").

Optionally conv1-conv4 start from, and keep, the ImageNet kernels of Keras'
VGG16, read from a local copy of its no-top weights file (docs/design.md 3.4.4).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers, ops

from core.colorspace import gray_level_ops
from core.errors import InvalidInputError, MissingInputError
from core.models.registry import ModelSpec, register_model
from core.quantize import NUM_BINS

__all__ = [
    "CAFFE_MEANS",
    "VGG_WEIGHTS_FILE",
    "GrayToVggInput",
    "build_vgg16",
    "default_vgg_weights_path",
    "scaled_width",
]

VGG_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
CAFFE_MEANS = (103.939, 116.779, 123.68)  # VGG's BGR means on a 0-255 scale
AB_SCALE = 128.0  # the paper's regression target is ab / 128 (docs/design.md 3.4.2)

# (block, convs, width, stride of the last conv, dilation): docs/design.md 3.4.1
_BLOCKS: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 2, 64, 2, 1),
    (2, 2, 128, 2, 1),
    (3, 3, 256, 2, 1),
    (4, 3, 512, 1, 1),
    (5, 3, 512, 1, 2),
    (6, 3, 512, 1, 2),
    (7, 3, 512, 1, 1),
)
_CONV8_WIDTH = 256


def scaled_width(channels: int, width: float) -> int:
    """Body width under the width multiplier: max(8, 8 * round(channels * width / 8)).

    channels: the full-width channel count (64 ... 512); width: multiplier > 0.
    """
    return max(8, 8 * round(channels * width / 8))


def default_vgg_weights_path() -> Path:
    """Where Keras caches the VGG16 no-top file: ~/.keras/models/<VGG_WEIGHTS_FILE>."""
    return Path.home() / ".keras" / "models" / VGG_WEIGHTS_FILE


@keras.saving.register_keras_serializable(package="colorization")
class GrayToVggInput(layers.Layer):
    """L / 100 in [0, 1] -> VGG's Caffe input 255 g(L) - mean, in 3 channels.

    Input float32 (B, H, W, 1) in [0, 1]; output float32 (B, H, W, 3) in about
    [-124, 152]: the grey photograph g(L) (docs/design.md 1.4) on a 0-255 scale
    minus CAFFE_MEANS (the channels are equal, so the channel order does not matter).
    """

    def call(self, l_norm):
        gray = gray_level_ops(l_norm)
        means = ops.convert_to_tensor(CAFFE_MEANS, dtype=gray.dtype)
        return 255.0 * gray - means

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


def _read_imagenet_kernels(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Kernels and biases of block1_conv1 ... block4_conv3 from a Keras legacy HDF5.

    Returns {our layer name: (float32 (3, 3, C_in, C_out), float32 (C_out,))}, checked
    against the full-width shapes (C_in = 3 for conv1_1).
    """
    if not path.is_file():
        raise MissingInputError(
            f"VGG16 ImageNet weights not found at {path}: place Keras' "
            f"{VGG_WEIGHTS_FILE} there (it cannot be downloaded at run time) or pass "
            "vgg_weights=PATH"
        )
    expected_in = 3
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        if "layer_names" not in f.attrs:
            raise InvalidInputError(
                f"{path} is not a Keras legacy HDF5 weights file (no 'layer_names' "
                f"attribute); expected Keras' {VGG_WEIGHTS_FILE}"
            )
        names = {_decode(n) for n in f.attrs["layer_names"]}
        for block, convs, channels, *_ in _BLOCKS[:4]:
            for i in range(1, convs + 1):
                ours, theirs = f"conv{block}_{i}", f"block{block}_conv{i}"
                if theirs not in names:
                    raise InvalidInputError(f"{path} has no layer {theirs!r}")
                group = f[theirs]
                weights = [
                    np.asarray(group[_decode(n)], dtype=np.float32)
                    for n in group.attrs["weight_names"]
                ]
                kernels = [w for w in weights if w.ndim == 4]
                biases = [w for w in weights if w.ndim == 1]
                want = ((3, 3, expected_in, channels), (channels,))
                got = tuple(w.shape for w in kernels + biases)
                if len(weights) != 2 or got != want:
                    raise InvalidInputError(
                        f"{path}: layer {theirs!r} has weights of shapes "
                        f"{[w.shape for w in weights]}, expected kernel {want[0]} and "
                        f"bias {want[1]}; is this Keras' {VGG_WEIGHTS_FILE}?"
                    )
                arrays[ours] = (kernels[0], biases[0])
                expected_in = channels
    return arrays


def _decode(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def build_vgg16(
    spec: ModelSpec,
    *,
    width: float = 1.0,
    pretrained: bool = False,
    vgg_weights: str = "",
    imagenet_input: bool = False,
) -> keras.Model:
    """Build Zhang et al.'s modified VGG16 (docs/design.md 3.4).

    width: multiplier on every body width (docs/design.md 3.4.3); heads keep 313 or 2.
    pretrained: start conv1-conv4 from Keras' ImageNet VGG16 weights, read from
        `default_vgg_weights_path()` unless `vgg_weights` names the file; those ten
        convolutions are then frozen (their BatchNorm layers still train). Needs
        width 1.0.
    vgg_weights: path of the no-top VGG16 weights file; implies `pretrained`.
    imagenet_input: build the 3-channel Caffe-mean input of docs/design.md 3.4.4 without
        loading any weights (to load weights trained from the ImageNet
        initialisation); implied by `pretrained` and `vgg_weights`.
    Returns a Keras model: float32 (B, H, W, 1) L / 100 in [0, 1], H and W multiples
    of 8 -> (B, H/4, W/4, 313) logits or (B, H/4, W/4, 2) ab / 128 in [-1, 1].
    """
    if width <= 0:
        raise InvalidInputError(f"width must be > 0, got {width}")
    pretrained = pretrained or bool(vgg_weights)
    imagenet_input = imagenet_input or pretrained
    if imagenet_input and width != 1.0:
        raise InvalidInputError(
            f"the ImageNet VGG16 input and weights need width=1.0, got width={width}"
        )
    imagenet: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if pretrained:
        path = Path(vgg_weights).expanduser() if vgg_weights else None
        imagenet = _read_imagenet_kernels(path or default_vgg_weights_path())

    l_norm = keras.Input((None, None, 1), name="l_norm")
    x = GrayToVggInput(name="to_vgg_input")(l_norm) if imagenet_input else l_norm
    for block, convs, channels, stride, dilation in _BLOCKS:
        for i in range(1, convs + 1):
            x = layers.Conv2D(
                scaled_width(channels, width),
                3,
                strides=stride if i == convs else 1,
                dilation_rate=dilation,
                padding="same",
                activation="relu",
                name=f"conv{block}_{i}",
            )(x)
        # Zhang puts BN after the ReLU of each block's last conv
        x = layers.BatchNormalization(name=f"conv{block}_bn")(x)
    conv8 = scaled_width(_CONV8_WIDTH, width)
    x = layers.Conv2DTranspose(
        conv8, 4, strides=2, padding="same", activation="relu", name="conv8_up"
    )(x)
    for i in (2, 3):
        x = layers.Conv2D(
            conv8, 3, padding="same", activation="relu", name=f"conv8_{i}"
        )(x)
    if spec.output == "ab_bins":
        out = layers.Conv2D(NUM_BINS, 1, name="logits")(x)
    else:
        out = layers.Conv2D(2, 1, activation="tanh", name="ab_norm")(x)
    model = keras.Model(l_norm, out, name=spec.name.replace("-", "_"))

    for name, (kernel, bias) in imagenet.items():
        layer = model.get_layer(name)
        layer.set_weights([kernel, bias])
        layer.trainable = False
    return model


_PAPER = "Zhang et al. 2016 modified VGG16 (no pooling, dilated conv5-6)"

register_model(
    ModelSpec(
        name="vgg16-reg",
        color_space="lab",
        input_size=224,
        size_multiple=8,
        output="ab",
        output_stride=4,
        ab_scale=AB_SCALE,
        weights="vgg16-reg.weights.h5",
        description=f"{_PAPER}, ab regression (tanh, ab / 128), the paper's baseline",
        defaults={"width": 0.25},
        train_defaults={"lr": 1e-4, "batch_size": 64, "size": 224},
    )
)(build_vgg16)

register_model(
    ModelSpec(
        name="vgg16-cls",
        color_space="lab",
        input_size=224,
        size_multiple=8,
        output="ab_bins",
        output_stride=4,
        weights="vgg16-cls.weights.h5",
        description=f"{_PAPER}, 313 ab bins with class rebalancing",
        defaults={"width": 0.25},
        train_defaults={"lr": 3e-5, "batch_size": 64, "size": 224},
    )
)(build_vgg16)

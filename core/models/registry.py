"""The model registry: a name -> (spec, builder) table filled at import.

`create_model(name)` and `list_models()` are the only ways in (timm style). Each model
declares a frozen `ModelSpec` that tells the Colorizer its colour space, input size and
ranges, and where its shipped weights are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import keras
import numpy as np

from core.colorspace import U_MAX, V_MAX
from core.errors import UserError

__all__ = [
    "AB_SCALE",
    "LIGHTNESS_SCALE",
    "UV_SCALE",
    "ModelSpec",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "list_models",
    "register_model",
]

# The normalisation of the models' inputs and outputs (docs/design.md 1.4, 1.5), the
# defaults of ModelSpec's scales: Lab models see L / 100 in [0, 1]; ab / 110 covers
# the sRGB ab range in [-1, 1] (regression heads, hint inputs); YUV models see 2Y - 1
# and predict (U / U_MAX, V / V_MAX), both in [-1, 1].
LIGHTNESS_SCALE = 100.0
AB_SCALE = 110.0
UV_SCALE = np.array([U_MAX, V_MAX], dtype=np.float32)

# a numpy array or a TensorFlow tensor: the normalisation works on either
ArrayT = TypeVar("ArrayT")


@dataclass(frozen=True)
class ModelSpec:
    """How a model's inputs are prepared and its outputs read.

    color_space: "lab" (input lightness, output ab) or "yuv" (input Y, output UV).
    input_size: default square side the network sees (multiple of `size_multiple`).
    output: "ab_bins" (313 logits per pixel), "ab" (ab / ab_scale in [-1, 1]) or
        "uv" (normalised UV in [-1, 1]).
    output_stride: input side / output side.
    lightness_scale, ab_scale: the Lab normalisation, L / lightness_scale and
        ab / ab_scale (`luma_to_norm`, `chroma_to_norm`, `norm_to_chroma`).
    weights: file name under core/weights/ (its SHA-256 is in the manifest there).
    fixed_size: the network only takes input_size x input_size (aspect not kept).
    noise_dim: > 0 for sampling models (the cGAN): the model takes `[y, z]` with
        z float32 (B, noise_dim) in [-1, 1]; each seed gives another colorization.
    train_defaults: the trainer's defaults for this model where the command line is
        silent (e.g. the paper's {"lr": 1e-4, "batch_size": 64, "size": 224}).
    hints: the model also takes user hints (docs/design.md, hints): `[l, hint_ab,
        hint_mask]` with hint_ab float32 (B, H, W, 2) = ab / ab_scale of the hinted
        pixels (0 elsewhere) and hint_mask float32 (B, H, W, 1), 1 where hinted.
    """

    name: str
    color_space: str = "lab"
    input_size: int = 256
    size_multiple: int = 32
    output: str = "ab_bins"
    output_stride: int = 2
    lightness_scale: float = LIGHTNESS_SCALE
    ab_scale: float = AB_SCALE
    weights: str = ""
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    fixed_size: bool = False
    noise_dim: int = 0
    train_defaults: dict[str, Any] = field(default_factory=dict)
    hints: bool = False

    @property
    def samples(self) -> bool:
        """True for models that draw a different colorization per seed."""
        return self.noise_dim > 0

    def luma_to_norm(self, luma: ArrayT) -> ArrayT:
        """The network's luma input: float32 (...) L in [0, 100] -> L /
        lightness_scale in [0, 1] (Lab), or Y in [0, 1] -> 2Y - 1 in [-1, 1] (YUV).
        numpy arrays or tensors, same shape and dtype."""
        if self.color_space == "yuv":
            return luma * 2.0 - 1.0
        return luma / self.lightness_scale

    def chroma_to_norm(self, chroma: ArrayT) -> ArrayT:
        """float32 (..., 2) ab in CIE units -> ab / ab_scale (Lab), or U, V ->
        (U / U_MAX, V / V_MAX) (YUV); about [-1, 1]. The regression target and hint
        input."""
        if self.color_space == "yuv":
            return chroma / UV_SCALE
        return chroma / self.ab_scale

    def norm_to_chroma(self, chroma_norm: ArrayT) -> ArrayT:
        """Undo `chroma_to_norm`: float32 (..., 2) in [-1, 1] -> ab in CIE units or
        U, V in scikit-image units."""
        if self.color_space == "yuv":
            return chroma_norm * UV_SCALE
        return chroma_norm * self.ab_scale


class UnknownModelError(UserError, KeyError):
    """Raised for a model name that is not registered; lists the known names."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown model {self.name!r}; known models: {', '.join(list_models())}"


Builder = Callable[..., keras.Model]
_REGISTRY: dict[str, tuple[ModelSpec, Builder]] = {}


def register_model(spec: ModelSpec) -> Callable[[Builder], Builder]:
    """Decorator that adds a builder `fn(spec, **overrides) -> keras.Model`."""

    def wrap(fn: Builder) -> Builder:
        if spec.name in _REGISTRY:
            raise ValueError(f"model {spec.name!r} registered twice")
        _REGISTRY[spec.name] = (spec, fn)
        return fn

    return wrap


def list_models() -> list[str]:
    """Registered model names, the default model first."""
    return sorted(_REGISTRY, key=lambda n: (n != "default", n))


def get_spec(name: str) -> ModelSpec:
    """The `ModelSpec` of a registered model."""
    if name not in _REGISTRY:
        raise UnknownModelError(name)
    return _REGISTRY[name][0]


def create_model(name: str, **overrides: Any) -> keras.Model:
    """Build a registered model with fresh weights (no shipped weights loaded).

    overrides: builder options (e.g. `pretrained=False` for the encoder, `width`).
    Shipped weights are loaded by `core.weights.load_weights` / `Colorizer.load`.
    """
    spec, fn = _REGISTRY.get(name, (None, None))
    if fn is None or spec is None:
        raise UnknownModelError(name)
    return fn(spec, **{**spec.defaults, **overrides})

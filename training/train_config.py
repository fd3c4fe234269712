"""The trainer's configuration: `TrainConfig` (its fields are `python -m
training.train`'s options), the model defaults that fill it, and builder options."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInputError
from core.models import get_spec

__all__ = [
    "FALLBACK_DEFAULTS",
    "PRECISIONS",
    "TrainConfig",
    "parse_model_options",
    "resolve_config",
]

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# used where neither the command line nor the model's ModelSpec.train_defaults say
FALLBACK_DEFAULTS: dict[str, Any] = {
    "lr": 5e-4,
    "batch_size": 16,
    "size": 160,
    "encoder_lr_factor": 0.1,
    "encoder_frozen_stride": 0,
}


@dataclass(frozen=True)
class TrainConfig:
    model: str = field(default="default", metadata={"help": "registered model name"})
    data: tuple[str, ...] = field(
        default=("../shared/data/train",), metadata={"help": "training folders/shards"}
    )
    val: tuple[str, ...] = field(
        default=("../shared/data/val",), metadata={"help": "validation folders/shards"}
    )
    out: str = field(default="runs/default", metadata={"help": "run folder"})
    size: int | None = field(
        default=None,
        metadata={"help": "training crop side (default: the model's, else 160)"},
    )
    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "global batch, split between replicas (default: the model's, "
            "else 16)"
        },
    )
    epochs: int = 15
    steps_per_epoch: int = field(
        default=0, metadata={"help": "0: one pass over the training images"}
    )
    lr: float | None = field(
        default=None,
        metadata={
            "help": "decoder learning rate, AdamW, for the global batch (default: "
            "the model's, else 5e-4)"
        },
    )
    encoder_lr_factor: float | None = field(
        default=None,
        metadata={
            "help": "encoder learning rate = lr x this; 0 freezes the encoder (no "
            "gradient through it: a faster step) (default: the model's, else 0.1)"
        },
    )
    encoder_frozen_stride: int | None = field(
        default=None,
        metadata={
            "help": "freeze the encoder up to its output at this stride (2, 4, 8, "
            "16 or 32; 0: none): no gradient through those stages, a faster step "
            "(default: the model's, else 0)"
        },
    )
    warmup_steps: int = 200
    weight_decay: float = 1e-5
    prior: str = field(
        default="", metadata={"help": "prior .npz (training.prior); computed if empty"}
    )
    pretrained: bool = field(
        default=True, metadata={"help": "initialise the encoder from ImageNet"}
    )
    init_weights: str = field(
        default="",
        metadata={
            "help": "[NAME=]FILE: start from these .weights.h5 of model NAME "
            "(default: --model; another model's layers are copied where names "
            "and shapes match) (fine-tuning, e.g. at a new --size: new optimizer "
            "and schedule; a shipped file's prior correction is undone); unused "
            "when --out resumes"
        },
    )
    init_encoder: str = field(
        default="",
        metadata={
            "help": "[NAME=]FILE: copy the encoder of these .weights.h5 of model "
            "NAME (default: --model) and start the decoder fresh, e.g. --model "
            "default-wide --init-encoder "
            "default-v1=core/weights/default-v1.weights.h5; "
            "unused when --out resumes"
        },
    )
    perceptual: float = field(
        default=0.0,
        metadata={
            "help": "weight of the perceptual term (training.perceptual: frozen "
            "ImageNet Lite0 features and classes of the decoded photo); 0: off"
        },
    )
    perceptual_alpha: float = field(
        default=0.45,
        metadata={
            "help": "prior correction applied before decoding for the perceptual "
            "and adversarial terms (the alpha the export will fold in)"
        },
    )
    adversarial: float = field(
        default=0.0,
        metadata={
            "help": "weight of the adversarial term (training.adversarial: a patch "
            "critic of the decoded chroma, trained alongside); 0: off"
        },
    )
    ema: float = field(
        default=0.0,
        metadata={
            "help": "decay of an exponential moving average of the weights, e.g. "
            "0.999 (0: off); validation and best.weights.h5 then use the average"
        },
    )
    checkpoint_every: int = field(default=250, metadata={"help": "steps"})
    val_batches: int = field(default=0, metadata={"help": "0: the whole val set"})
    model_options: tuple[str, ...] = field(
        default=(),
        metadata={"help": "builder options KEY=VALUE, e.g. width=0.25"},
    )
    strategy: str = field(
        default="auto",
        metadata={"help": "auto, default, mirrored or multiworker (TF_CONFIG)"},
    )
    precision: str = field(
        default="float32", metadata={"help": "float32, mixed_bfloat16 or mixed_float16"}
    )
    jit_compile: bool = field(
        default=False, metadata={"help": "compile the step with XLA (measure first)"}
    )
    fused_batch_norm: bool = field(
        default=True,
        metadata={
            "help": "training-mode batch normalisation through TensorFlow's fused "
            "kernel (same values, faster; --no-fused-batch-norm: Keras's own)"
        },
    )
    shuffle: bool = field(
        default=True,
        metadata={"help": "shuffle shards and photos (--no-shuffle: file order)"},
    )
    hint_spread: bool = field(
        default=False,
        metadata={
            "help": "keep the hints' untrained vote around them (HintEvidence's "
            "spread, always on at inference) in training too; off by default, so "
            "the network learns to spread hints itself (docs/design.md 4.4)"
        },
    )
    seed: int = 0


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill `lr`, `batch_size`, `size`, `encoder_lr_factor` and
    `encoder_frozen_stride` left unset from the model's train_defaults.

    Raises ValueError for an unknown precision or a batch that is not positive.
    """
    if cfg.precision not in PRECISIONS:
        raise InvalidInputError(
            f"--precision {cfg.precision!r}: expected one of {PRECISIONS}"
        )
    defaults = {**FALLBACK_DEFAULTS, **get_spec(cfg.model).train_defaults}
    filled = {
        key: defaults[key] if getattr(cfg, key) is None else getattr(cfg, key)
        for key in FALLBACK_DEFAULTS
    }
    if filled["encoder_lr_factor"] < 0:
        raise InvalidInputError(
            f"--encoder-lr-factor must be >= 0, got {filled['encoder_lr_factor']}"
        )
    if filled["batch_size"] < 1 or filled["size"] < 1:
        raise InvalidInputError(f"batch size and size must be positive, got {filled}")
    return dataclasses.replace(cfg, **filled)


def parse_model_options(items: tuple[str, ...] | list[str]) -> dict[str, object]:
    """`("width=0.25", "vgg_weights=/x.h5")` -> {"width": 0.25, "vgg_weights": "/x.h5"}.

    Values are read as Python literals when they parse as one, else kept as strings.
    """
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"model option {item!r} is not KEY=VALUE")
        try:
            options[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key.strip()] = value
    return options

"""Train a registered Lab model (the default U-Net) on folders or `.tar` shards.

    python -m training.train --model default --data ../shared/data/train \
        --val ../shared/data/val --out runs/default

The same command runs on one CPU, on every GPU of a machine (`MirroredStrategy`) or on
a cluster, one process per machine with `TF_CONFIG` set (`MultiWorkerMirroredStrategy`);
`--strategy auto` picks among them (training/distribute.py, docs/distributed.md).
`--batch-size` is the global batch, split between the replicas; each worker reads only
its own `.tar` shards.

Writes into --out: `config.json` (the values used, model defaults filled in),
`metrics.csv` (train and validation loss per epoch), `steps.csv` (loss and learning
rate per step), `curves.png`, `checkpoint/` (a `tf.train.Checkpoint` of the weights,
their moving average with `--ema`, the critic with `--adversarial`, optimizer state,
step, epoch, data position and random state, written atomically every
`--checkpoint-every` steps and at each epoch end; workers other than the chief keep
theirs in `checkpoint/worker-N/`), `best.weights.h5` (lowest validation loss; with
`--ema`, of the averaged weights), `last.weights.h5` (those at the latest epoch's end)
and `prior.npz` (class-rebalancing weights, for classification models). Running the
same command again resumes from the last checkpoint, exactly: the later losses are
those of an uninterrupted run.

Losses (docs/design.md 4.2), always computed in float32: weighted cross-entropy
against soft-encoded targets for 313-bin models, mean squared error on ab / 110 for
regression models; averaged over the global batch. `--perceptual` and `--adversarial`
add optional terms (training/perceptual.py, training/adversarial.py); the training
loss includes them, the validation loss only the perceptual one. The pretrained
encoder gets a smaller learning rate than the decoder (`--encoder-lr-factor`); models
without an "encoder" layer have one optimizer. `--precision mixed_bfloat16` (CPUs with
AVX-512 BF16 or AMX, recent GPUs) or `mixed_float16` (GPUs, with dynamic loss
scaling) and `--jit-compile` (XLA) are options.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import shutil
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core.atomic import atomic_write_bytes
from core.config import add_dataclass_args, dataclass_from_args
from core.models import UnknownModelError, create_model, get_spec, list_models
from core.quantize import NUM_BINS, rebalance_weights, smooth_prior, soft_encode_tf
from core.weights import WEIGHTS_DIR, file_sha256, read_manifest
from training.adversarial import AdversarialTerm
from training.data import (
    PipelineConfig,
    count_images,
    list_sources,
    make_dataset,
    worker_sources,
)
from training.distribute import (
    is_chief,
    make_strategy,
    min_over_workers,
    sum_over_workers,
    worker_count,
    worker_index,
)
from training.perceptual import PerceptualTerm, decode_corrected_tf
from training.prior import compute_prior, load_prior, save_prior, shift_logits_bias

__all__ = [
    "PRECISIONS",
    "TrainConfig",
    "Trainer",
    "load_init_encoder",
    "load_init_weights",
    "model_and_file",
    "transfer_weights",
    "classification_loss",
    "main",
    "parse_model_options",
    "regression_loss",
    "resolve_config",
    "train",
]

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# used where neither the command line nor the model's ModelSpec.train_defaults say
FALLBACK_DEFAULTS: dict[str, Any] = {"lr": 5e-4, "batch_size": 16, "size": 160}
KEEP_CHECKPOINTS = 2  # the older one lets workers agree after a crash mid-save
LOG_EVERY = 50  # steps between progress lines
# dynamic loss scaling for mixed_float16 (Micikevicius et al. 2018; Keras's values)
INITIAL_LOSS_SCALE = 2.0**15
LOSS_SCALE_GROWTH_STEPS = 2000


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
    encoder_lr_factor: float = field(
        default=0.1, metadata={"help": "encoder learning rate = lr x this"}
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
            "default-wide --init-encoder default=core/weights/default.weights.h5; "
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
    shuffle: bool = field(
        default=True,
        metadata={"help": "shuffle shards and photos (--no-shuffle: file order)"},
    )
    seed: int = 0


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill `lr`, `batch_size` and `size` left unset from the model's train_defaults.

    Raises ValueError for an unknown precision or a batch that is not positive.
    """
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"--precision {cfg.precision!r}: expected one of {PRECISIONS}")
    defaults = {**FALLBACK_DEFAULTS, **get_spec(cfg.model).train_defaults}
    filled = {
        key: defaults[key] if getattr(cfg, key) is None else getattr(cfg, key)
        for key in FALLBACK_DEFAULTS
    }
    if filled["batch_size"] < 1 or filled["size"] < 1:
        raise ValueError(f"batch size and size must be positive, got {filled}")
    return dataclasses.replace(cfg, **filled)


def parse_model_options(items: tuple[str, ...] | list[str]) -> dict[str, object]:
    """`("width=0.25", "vgg_weights=/x.h5")` -> {"width": 0.25, "vgg_weights": "/x.h5"}.

    Values are read as Python literals when they parse as one, else kept as strings.
    """
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"model option {item!r} is not KEY=VALUE")
        try:
            options[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key.strip()] = value
    return options


def classification_loss(
    logits: tf.Tensor,
    ab: tf.Tensor,
    class_weights: tf.Tensor,
    *,
    per_example: bool = False,
) -> tf.Tensor:
    """Rebalanced cross-entropy against soft-encoded ab (docs/design.md 4.2).

    logits: float32 (B, h, w, 313); ab: float32 (B, h, w, 2) in CIE units;
    class_weights: float32 (313,). Returns the mean over the B*h*w pixels, or
    float32 (B,) means over each example's pixels when per_example.
    """
    target = soft_encode_tf(ab)
    v = tf.gather(class_weights, tf.argmax(target, axis=-1))
    ce = -tf.reduce_sum(target * tf.nn.log_softmax(logits, axis=-1), axis=-1)
    return tf.reduce_mean(v * ce, axis=(1, 2) if per_example else None)


def regression_loss(
    ab_norm_pred: tf.Tensor,
    ab: tf.Tensor,
    ab_scale: float,
    *,
    per_example: bool = False,
) -> tf.Tensor:
    """Mean squared error on ab / ab_scale (docs/design.md 4.2).

    Returns the mean over the B*h*w pixels, or float32 (B,) when per_example.
    """
    error = tf.reduce_sum(tf.square(ab_norm_pred - ab / ab_scale), -1)
    return tf.reduce_mean(error, axis=(1, 2) if per_example else None)


class _WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak: float, warmup: int, total: int) -> None:
        self.peak, self.warmup, self.total = peak, max(warmup, 1), max(total, 1)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1.0) / self.warmup
        frac = tf.clip_by_value((step - self.warmup) / (self.total - self.warmup), 0, 1)
        cos = self.peak * (0.02 + 0.98 * 0.5 * (1.0 + tf.cos(math.pi * frac)))
        return tf.where(step < self.warmup, warm, cos)

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup, "total": self.total}


class Trainer:
    """Owns the model, its optimizers, the loss, the distributed step and checkpoints.

    Everything is created in `strategy.scope()` (the default strategy when None), so
    variables are mirrored on every replica. `train_step` takes one batch: per-replica
    values from a distributed dataset, or plain tensors under the default strategy.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        total_steps: int,
        class_weights: np.ndarray,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        cfg = resolve_config(cfg)
        self.cfg = cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        self.spec = get_spec(cfg.model)
        self.loss_scaled = cfg.precision == "mixed_float16"
        options = parse_model_options(cfg.model_options)
        if not cfg.pretrained:
            options.setdefault("pretrained", False)
        previous_policy = keras.config.dtype_policy()
        # layers take the global policy when built; restore it for later models
        keras.config.set_dtype_policy(cfg.precision)
        try:
            with self.strategy.scope():
                self.model = create_model(cfg.model, **options)
                self._build_state(cfg, total_steps, class_weights)
        finally:
            keras.config.set_dtype_policy(previous_policy)
        self.step = 0
        self.epoch = 0
        self.best_val = math.inf
        self._data: Any = None
        self._managers: dict[Path, tf.train.CheckpointManager] = {}
        self._grads = (
            tf.function(self._replica_gradients, jit_compile=True)
            if cfg.jit_compile
            else self._replica_gradients
        )

    def _build_state(
        self, cfg: TrainConfig, total_steps: int, class_weights: np.ndarray
    ) -> None:
        # a pretrained encoder (if the model has one) learns at a smaller rate
        names = {layer.name for layer in self.model.layers}
        enc = (
            self.model.get_layer("encoder").trainable_weights
            if "encoder" in names
            else []
        )
        enc_ids = {id(v) for v in enc}
        self.enc_vars = enc
        self.dec_vars = [
            v for v in self.model.trainable_weights if id(v) not in enc_ids
        ]
        sched = _WarmupCosine(cfg.lr, cfg.warmup_steps, total_steps)
        self.dec_opt = keras.optimizers.AdamW(sched, weight_decay=cfg.weight_decay)
        self.dec_opt.build(self.dec_vars)
        self.enc_opt: keras.optimizers.Optimizer | None = None
        if enc:
            enc_sched = _WarmupCosine(
                cfg.lr * cfg.encoder_lr_factor, cfg.warmup_steps, total_steps
            )
            self.enc_opt = keras.optimizers.AdamW(
                enc_sched, weight_decay=cfg.weight_decay
            )
            self.enc_opt.build(self.enc_vars)
        self.class_weights = tf.Variable(
            np.asarray(class_weights, np.float32), trainable=False, name="class_weights"
        )
        self.perceptual: PerceptualTerm | None = None
        if cfg.perceptual > 0:
            self.perceptual = PerceptualTerm()
        self.adversarial: AdversarialTerm | None = None
        if cfg.adversarial > 0:
            self.adversarial = AdversarialTerm()
        # the moving average of every weight (batch-norm statistics included)
        self.ema_vars: list[tf.Variable] = []
        if cfg.ema > 0:
            self.ema_vars = [
                tf.Variable(
                    v,
                    trainable=False,
                    name=f"ema_{i}",
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                )
                for i, v in enumerate(self.model.weights)
            ]
        # random state of the layers (Keras seed generators, e.g. of dropout)
        weight_ids = {id(v) for v in self.model.weights}
        self.rng_states = [v for v in self.model.variables if id(v) not in weight_ids]
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.counters = {
            "step": tf.Variable(0, dtype=tf.int64, aggregation=first),
            "epoch": tf.Variable(0, dtype=tf.int64, aggregation=first),
            "best_val": tf.Variable(math.inf, dtype=tf.float64, aggregation=first),
            # the data position is per worker: a resume needs the same worker count
            "workers": tf.Variable(
                worker_count(self.strategy), dtype=tf.int64, aggregation=first
            ),
        }
        if self.loss_scaled:
            self.counters["loss_scale"] = tf.Variable(
                INITIAL_LOSS_SCALE, dtype=tf.float32, aggregation=first
            )
            self.counters["good_steps"] = tf.Variable(
                0, dtype=tf.int64, aggregation=first
            )

    @property
    def train_vars(self) -> list:
        """Decoder variables, then encoder variables (the order of the gradients)."""
        return self.dec_vars + self.enc_vars

    @property
    def critic_vars(self) -> list:
        """The adversarial critic's variables (after train_vars' gradients)."""
        return self.adversarial.variables if self.adversarial is not None else []

    def decoded_ab(self, out: tf.Tensor) -> tf.Tensor:
        """float32 ab (B, h, w, 2), CIE units, the user would see for model output
        `out` (313 logits decoded after the --perceptual-alpha prior correction)."""
        out = tf.cast(out, tf.float32)
        if self.spec.output != "ab_bins":
            return out * self.spec.ab_scale
        return decode_corrected_tf(out, self.class_weights, self.cfg.perceptual_alpha)

    def per_example_loss(
        self,
        out: tf.Tensor,
        ab: tf.Tensor,
        lightness: tf.Tensor | None = None,
        pred_ab: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """float32 (B,) loss of each example; out is cast to float32 first.

        lightness (B, S, S, 1) in [0, 100] is needed by the perceptual term (when
        --perceptual is set); without it only the pixel loss is returned. pred_ab:
        `decoded_ab(out)` where the caller already has it (decoded here otherwise).
        """
        out = tf.cast(out, tf.float32)
        if self.spec.output == "ab_bins":
            loss = classification_loss(
                out, ab, tf.convert_to_tensor(self.class_weights), per_example=True
            )
        else:
            loss = regression_loss(out, ab, self.spec.ab_scale, per_example=True)
        if self.perceptual is None or lightness is None:
            return loss
        if pred_ab is None:
            pred_ab = self.decoded_ab(out)
        return loss + self.cfg.perceptual * self.perceptual(lightness, pred_ab, ab)

    def loss(
        self, out: tf.Tensor, ab: tf.Tensor, lightness: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Mean loss of a batch, float32 scalar."""
        return tf.reduce_mean(self.per_example_loss(out, ab, lightness))

    # ------------------------------------------------------------------ steps
    def model_inputs(
        self, lightness: tf.Tensor, hints: tf.Tensor | None = None
    ) -> tf.Tensor | list[tf.Tensor]:
        """The network's inputs: L / 100, and for hint models the hint ab and mask.

        lightness: float32 (B, S, S, 1) in [0, 100]; hints: float32 (B, S, S, 3) as
        `training.hints.simulate_hints` packs them, or None (no hints).
        """
        x = lightness / 100.0
        if not self.spec.hints:
            return x
        if hints is None:
            hints = tf.zeros(tf.concat([tf.shape(x)[:-1], [3]], 0), x.dtype)
        return [x, hints[..., :2], hints[..., 2:]]

    def _replica_gradients(
        self, lightness: tf.Tensor, ab: tf.Tensor, hints: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """This replica's share of the global-batch loss and its gradients.

        The gradients are those of train_vars, then (with --adversarial) those of
        the critic's own loss for critic_vars; the loss is the colorizer's.
        """
        scale = self.counters["loss_scale"] if self.loss_scaled else 1.0
        with tf.GradientTape(persistent=self.adversarial is not None) as tape:
            out = self.model(self.model_inputs(lightness, hints), training=True)
            # decoded once for both loss terms
            pred_ab = None if self.adversarial is None else self.decoded_ab(out)
            per_example = self.per_example_loss(out, ab, lightness, pred_ab)
            if self.adversarial is not None:
                generator, critic = self.adversarial(lightness, pred_ab, ab)
                per_example += self.cfg.adversarial * generator
                critic = scale * tf.nn.compute_average_loss(critic)
            # summed over this replica's examples / the global batch, so that the
            # all-reduced (summed) gradients are those of the global mean
            loss = tf.nn.compute_average_loss(per_example)
            scaled = loss * scale
        grads = tape.gradient(
            scaled,
            self.train_vars,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        if self.adversarial is not None:
            grads += tape.gradient(
                critic,
                self.critic_vars,
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            del tape
        if self.loss_scaled:
            grads = [g / self.counters["loss_scale"] for g in grads]
        return loss, grads

    def _apply(self, grads: list[tf.Tensor]) -> None:
        # the Keras optimizers all-reduce (sum) the gradients across replicas
        n = len(self.dec_vars)
        self.dec_opt.apply_gradients(zip(grads[:n], self.dec_vars, strict=True))
        m = n + len(self.enc_vars)
        if self.enc_opt is not None:
            self.enc_opt.apply_gradients(zip(grads[n:m], self.enc_vars, strict=True))
        if self.adversarial is not None:
            self.adversarial.optimizer.apply_gradients(
                zip(grads[m:], self.critic_vars, strict=True)
            )
        if not self.ema_vars:
            return
        decay = self.cfg.ema
        for avg, v in zip(self.ema_vars, self.model.weights, strict=True):
            # the weights are the same on every replica after the update
            avg.assign(decay * avg + (1.0 - decay) * tf.cast(v, avg.dtype))

    def reset_ema(self) -> None:
        """Start the moving average at the current weights (after loading them)."""
        if not self.ema_vars:
            return
        for avg, v in zip(self.ema_vars, self.model.weights, strict=True):
            avg.assign(tf.cast(v, avg.dtype))

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Inside the block the model holds the moving average (with --ema)."""
        if not self.ema_vars:
            yield
            return
        live = [v.numpy() for v in self.model.weights]
        for avg, v in zip(self.ema_vars, self.model.weights, strict=True):
            v.assign(tf.cast(avg, v.dtype))
        try:
            yield
        finally:
            for value, v in zip(live, self.model.weights, strict=True):
                v.assign(value)

    def _replica_step(
        self, lightness: tf.Tensor, ab: tf.Tensor, hints: tf.Tensor | None = None
    ) -> tf.Tensor:
        loss, grads = self._grads(lightness, ab, hints)
        self._apply(grads)
        return loss

    def _replica_check(
        self, lightness: tf.Tensor, ab: tf.Tensor, hints: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, list[tf.Tensor], tf.Tensor]:
        loss, grads = self._grads(lightness, ab, hints)
        bad = tf.add_n(
            [tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.float32)) for g in grads]
        )
        # every replica must take the same branch: count non-finite values everywhere
        bad = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, bad
        )
        return loss, grads, bad

    @tf.function(reduce_retracing=True)
    def _distributed_step(
        self, lightness: Any, ab: Any, hints: Any = None
    ) -> tf.Tensor:
        if not self.loss_scaled:
            loss = self.strategy.run(self._replica_step, args=(lightness, ab, hints))
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        loss, grads, bad = self.strategy.run(
            self._replica_check, args=(lightness, ab, hints)
        )
        finite = self.strategy.experimental_local_results(bad)[0] == 0.0

        # a merge_call (inside apply_gradients) cannot sit in a replica-context
        # tf.cond, so the skip of non-finite steps is decided here, across replicas
        def apply() -> tf.Tensor:
            self.strategy.run(self._apply, args=(grads,))
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        scale, good = self.counters["loss_scale"], self.counters["good_steps"]
        grow = finite & (good + 1 >= LOSS_SCALE_GROWTH_STEPS)
        scale.assign(
            tf.where(
                finite,
                tf.where(grow, scale * 2.0, scale),
                tf.maximum(scale / 2.0, 1.0),
            )
        )
        good.assign(tf.where(finite & ~grow, good + 1, tf.zeros_like(good)))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)

    def distribute_batch(self, batch: tuple[tf.Tensor, ...]) -> tuple[Any, ...]:
        """Split this worker's batch between its local replicas (per-replica values).

        batch: tensors whose first axis is this worker's share of the global batch.
        """
        local = self.strategy.num_replicas_in_sync // worker_count(self.strategy)

        def part(tensor: tf.Tensor) -> Any:
            n = tensor.shape[0] // local

            def value(context: tf.distribute.ValueContext) -> tf.Tensor:
                j = context.replica_id_in_sync_group % local
                return tensor[j * n : (j + 1) * n]

            return self.strategy.experimental_distribute_values_from_function(value)

        return tuple(part(t) for t in batch)

    def train_step(self, lightness: Any, ab: Any, hints: Any = None) -> tf.Tensor:
        """One optimisation step on a global batch; returns its mean loss (float32).

        lightness float32 (B, S, S, 1) in [0, 100], ab float32 (B, h, w, 2) in CIE
        units, hints float32 (B, S, S, 3) or None (hint models only), as per-replica
        values from a distributed dataset or, under the default strategy, plain
        tensors. A step with non-finite gradients (mixed_float16) is skipped and the
        loss scale halved.
        """
        return self._distributed_step(lightness, ab, hints)

    @tf.function(reduce_retracing=True)
    def eval_step(
        self, lightness: tf.Tensor, ab: tf.Tensor, hints: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Mean loss of one local batch in inference mode (no distribution)."""
        out = self.model(self.model_inputs(lightness, hints), training=False)
        return self.loss(out, ab, lightness)

    # ------------------------------------------------------------ checkpoints
    def attach_data(self, iterator: Any) -> None:
        """Save and restore `iterator` (a tf.data or distributed iterator) too."""
        self._data = iterator
        self._managers = {}

    def _manager(self, folder: Path) -> tf.train.CheckpointManager:
        folder = Path(folder)
        if folder not in self._managers:
            items: dict[str, Any] = {
                "model": self.model,
                "dec_opt": self.dec_opt,
                "class_weights": self.class_weights,
                "rng_states": self.rng_states,
                **self.counters,
            }
            if self.enc_opt is not None:
                items["enc_opt"] = self.enc_opt
            if self.ema_vars:
                items["ema"] = self.ema_vars
            if self.adversarial is not None:
                items["critic"] = self.adversarial.net
                items["critic_opt"] = self.adversarial.optimizer
            if self._data is not None:
                items["data"] = self._data
            self._managers[folder] = tf.train.CheckpointManager(
                tf.train.Checkpoint(**items), folder, max_to_keep=KEEP_CHECKPOINTS
            )
        return self._managers[folder]

    def checkpoint_steps(self, folder: Path) -> list[int]:
        """Steps of the checkpoints kept in `folder`, oldest first."""
        state = tf.train.get_checkpoint_state(str(folder))
        if state is None:
            return []
        return [int(p.rpartition("-")[2]) for p in state.all_model_checkpoint_paths]

    def save_checkpoint(self, folder: Path) -> None:
        """Save weights, optimizers, counters, random state and data position.

        `tf.train.CheckpointManager` writes the files first and the index last, so
        a crash leaves the previous checkpoint usable; the last two are kept.
        """
        self.counters["step"].assign(self.step)
        self.counters["epoch"].assign(self.epoch)
        self.counters["best_val"].assign(self.best_val)
        self._manager(folder).save(checkpoint_number=self.step)

    def load_checkpoint(self, folder: Path, step: int | None = None) -> bool:
        """Restore from `folder` (the latest checkpoint, or the one of `step`).

        Falls back to the files of the previous checkpoint format (weights, optimizer
        and counters, no data position). False when there is no checkpoint.
        """
        folder = Path(folder)
        manager = self._manager(folder)
        if step is not None:
            path = str(folder / f"ckpt-{step}")
        else:
            path = manager.latest_checkpoint
        if path is None:
            return self._load_previous_format(folder)
        status = manager.checkpoint.restore(path)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as err:
            raise ValueError(
                f"checkpoint {path} does not match this model and configuration "
                f"({err}); use another --out or the original options"
            ) from err
        self.step = int(self.counters["step"].numpy())
        self.epoch = int(self.counters["epoch"].numpy())
        self.best_val = float(self.counters["best_val"].numpy())
        saved_by = int(self.counters["workers"].numpy())
        if saved_by != worker_count(self.strategy):
            raise ValueError(
                f"checkpoint {path} was written by {saved_by} workers, this run has "
                f"{worker_count(self.strategy)}: resume with as many workers (each "
                "restores its own data position), or start a new --out"
            )
        return True

    def _load_previous_format(self, folder: Path) -> bool:
        """Weights, optimizer.npz and state.json of runs made before tf checkpoints."""
        if not (folder / "state.json").exists():
            return False
        log.warning(
            "%s holds a checkpoint of the previous format: weights, optimizer and "
            "counters are restored, the data order starts afresh",
            folder,
        )
        self.model.load_weights(folder / "model.weights.h5")
        with np.load(folder / "optimizer.npz") as f:
            for name, opt in (("dec", self.dec_opt), ("enc", self.enc_opt)):
                for i, v in enumerate(opt.variables if opt is not None else []):
                    v.assign(f[f"{name}_{i}"])
        state = json.loads((folder / "state.json").read_text())
        self.step, self.epoch = state["step"], state["epoch"]
        self.best_val = state["best_val"]
        return True


def _class_weights(
    cfg: TrainConfig,
    out: Path,
    own_sources: list[Path],
    strategy: tf.distribute.Strategy,
) -> np.ndarray:
    """Rebalancing weights, float64 (313,): from --prior, the run folder or the data.

    Counted on the data, each worker counts its own sources and the counts are
    summed over the workers; the chief writes `prior.npz`.
    """
    if get_spec(cfg.model).output != "ab_bins":
        return np.ones(NUM_BINS)
    path = out / "prior.npz"
    if cfg.prior:
        prior = load_prior(cfg.prior)
    elif worker_count(strategy) == 1 and path.exists():
        return load_prior(path)["weights"]
    else:
        log.info("computing the ab prior of the training data (once)")
        stride = get_spec(cfg.model).output_stride  # the loss's resolution
        local = compute_prior([str(p) for p in own_sources], cfg.size, stride)
        local = local["counts"]
        counts = np.rint(sum_over_workers(strategy, local)).astype(np.int64)
        smoothed = smooth_prior(counts)
        prior = {
            "counts": counts,
            "prior": smoothed,
            "weights": rebalance_weights(smoothed),
        }
    if is_chief(strategy):
        save_prior(prior, path)
    return prior["weights"]


def _plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax.plot(epochs, [r["val_loss"] for r in rows], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _write_metrics(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def _read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return [
            {k: (int(v) if k in ("epoch", "step") else float(v)) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]


STEP_FIELDS = ("step", "epoch", "loss", "lr")


def _append_steps(rows: list[dict], path: Path) -> None:
    """Append per-step rows to steps.csv (before the checkpoint they precede)."""
    if not rows:
        return
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=STEP_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()


def _trim_steps(path: Path, step: int) -> list[dict]:
    """Drop rows past `step` (logged after the checkpoint resumed from); the rest."""
    rows = _read_metrics(path)
    kept = [r for r in rows if r["step"] <= step]
    if len(kept) != len(rows):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=STEP_FIELDS)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_bytes(path, buf.getvalue().encode())
    return kept


def _load_weights_file(model: keras.Model, path: str, flag: str, mismatch: str) -> None:
    """`model.load_weights(path)`, its failures as one-line errors naming `flag`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file")
    try:
        model.load_weights(path)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
        raise ValueError(f"{flag} {path} {mismatch}: {first}") from None


def load_init_weights(
    model: keras.Model,
    path: str,
    weights_dir: Path = WEIGHTS_DIR,
    source_model: str | None = None,
) -> float:
    """Load a `.weights.h5` into `model` (fine-tuning).

    source_model: the registered model the file holds, when it is not `model`'s
    architecture (e.g. `default` weights for `default-v2`): the file is loaded into
    that model and every layer whose name and weight shapes match is copied
    (`transfer_weights`); the others (e.g. the hint branch) keep their
    initialisation.
    A shipped file (its SHA-256 in `weights_dir`'s manifest) has the export's prior
    correction folded into its logits' bias; that shift is undone, so training goes on
    from the weights as trained. Returns the alpha undone (0.0: none).
    Raises FileNotFoundError for a missing file and ValueError (one line) for weights
    of another architecture.
    """
    target = model
    if source_model is not None:
        model = create_model(source_model, pretrained=False)
    _load_weights_file(
        model, path, "--init-weights", f"does not fit model {model.name!r}"
    )
    digest = file_sha256(path)
    undone = 0.0
    for entry in read_manifest(weights_dir).values():
        alpha = entry.get("prior_correction", {}).get("alpha", 0.0)
        if entry.get("sha256") == digest and alpha and "prior" in entry:
            prior = load_prior(weights_dir / entry["prior"]["file"])
            shift_logits_bias(model, prior["weights"], -alpha)
            undone = float(alpha)
            break
    if target is not model:
        copied = transfer_weights(model, target)
        log.info("copied %d layers of %s into %s", len(copied), model.name, target.name)
    return undone


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy the weights of every layer of `source` into `target`'s layer of the same
    name whose weights have the same shapes; returns the names copied.

    Raises ValueError (one line) when no layer matches.
    """
    by_name = {layer.name: layer for layer in target.layers}
    copied = []
    for layer in source.layers:
        values = layer.get_weights()
        other = by_name.get(layer.name)
        if not values or other is None:
            continue
        if [w.shape for w in other.get_weights()] == [w.shape for w in values]:
            other.set_weights(values)
            copied.append(layer.name)
    if not copied:
        raise ValueError(f"no layer of {source.name!r} fits {target.name!r}")
    return copied


def load_init_encoder(model: keras.Model, path: str, model_name: str) -> None:
    """Copy the `encoder` sub-model of a `.weights.h5` into `model`'s (its decoder and
    head keep their fresh initialisation).

    The file must hold `model_name` as registered (its default builder options); the
    target may differ elsewhere, e.g. in `decoder_widths`.
    Raises FileNotFoundError for a missing file and ValueError (one line) for a file
    of another architecture or a model without an `encoder` layer.
    """
    try:
        target = model.get_layer("encoder")
    except ValueError:
        raise ValueError(
            f"--init-encoder: model {model.name!r} has no 'encoder' layer"
        ) from None
    source = create_model(model_name, pretrained=False)
    _load_weights_file(
        source, path, "--init-encoder", f"does not hold model {model_name!r}"
    )
    target.set_weights(source.get_layer("encoder").get_weights())


def model_and_file(value: str, default_model: str) -> tuple[str, str]:
    """`NAME=FILE` -> (NAME, FILE) for a registered NAME; else (default_model, value)
    (a file name may hold '=')."""
    name, sep, path = value.partition("=")
    if sep and name in list_models():
        return name, path
    return default_model, value


def _checkpoint_folder(out: Path, strategy: tf.distribute.Strategy) -> Path:
    """The chief's checkpoint/, else checkpoint/worker-N/ (its own data position)."""
    if is_chief(strategy):
        return out / "checkpoint"
    return out / "checkpoint" / f"worker-{worker_index(strategy)}"


def _resume(trainer: Trainer, folder: Path, strategy: tf.distribute.Strategy) -> int:
    """Restore the newest checkpoint that every worker has; returns its step (0: none).

    A crash can stop workers between their saves, so they agree on the smallest of
    their latest steps, and each restores that one (the previous is kept).
    """
    kept = trainer.checkpoint_steps(folder)
    latest = max(kept, default=0)
    agreed = min_over_workers(strategy, latest)
    if agreed == 0:
        if latest:
            raise ValueError(
                f"{folder} has checkpoints but another worker has none; give every "
                "worker its checkpoint folder back, or start in a new --out"
            )
        return 0
    if agreed not in kept:
        raise ValueError(
            f"{folder} lacks the checkpoint of step {agreed} that the other workers "
            f"resume from (it keeps {kept})"
        )
    trainer.load_checkpoint(folder, agreed)
    return agreed


def train(cfg: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> Path:
    """Run (or resume) training; returns the path of the best weights.

    strategy: made from cfg.strategy when None (create it first in a process that
    runs multi-worker training; see training.distribute).
    """
    cfg = resolve_config(cfg)
    spec = get_spec(cfg.model)
    if spec.color_space != "lab":
        raise ValueError(f"training.train trains Lab models; {cfg.model!r} is not one")
    strategy = strategy or make_strategy(cfg.strategy)
    _check_precision(cfg.precision)
    if cfg.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"--batch-size {cfg.batch_size} is not a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    chief = is_chief(strategy)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if chief:
        atomic_write_bytes(
            out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2).encode()
        )
    sources = list_sources(list(cfg.data))
    _check_same_sources(sources, strategy)
    mine = tf.distribute.InputContext(
        worker_count(strategy), worker_index(strategy), strategy.num_replicas_in_sync
    )
    own = [sources[i] for i in worker_sources(sources, mine)]
    # each worker counts its own shards; the sum is the same on every worker
    images = round(float(sum_over_workers(strategy, np.array(count_images(own)))))
    steps_per_epoch = cfg.steps_per_epoch or max(1, images // cfg.batch_size)
    trainer = Trainer(cfg, steps_per_epoch * cfg.epochs, np.ones(NUM_BINS), strategy)
    pipe = PipelineConfig(
        size=cfg.size,
        output_stride=spec.output_stride,
        batch_size=cfg.batch_size,
        shuffle=cfg.shuffle,
        hints=spec.hints,
    )
    # One pipeline per worker, on its own shards, batching the worker's share of the
    # global batch. Not `distribute_datasets_from_function`: its DistributedIterator
    # cannot be checkpointed (tensorflow#56372), a plain tf.data iterator can.
    it = iter(
        make_dataset(
            list(cfg.data), pipe, training=True, seed=cfg.seed, input_context=mine
        )
    )
    trainer.attach_data(it)
    ckpt = _checkpoint_folder(out, strategy)
    if _resume(trainer, ckpt, strategy):
        log.info("resumed at step %d (epoch %d)", trainer.step, trainer.epoch)
    else:
        trainer.class_weights.assign(_class_weights(cfg, out, own, strategy))
        if worker_count(strategy) == 1 and trainer.load_checkpoint(ckpt):
            log.info("resumed at step %d (epoch %d)", trainer.step, trainer.epoch)
        elif cfg.init_weights:
            source, path = model_and_file(cfg.init_weights, cfg.model)
            undone = load_init_weights(
                trainer.model,
                path,
                source_model=None if source == cfg.model else source,
            )
            log.info("starting from %s", cfg.init_weights)
            if undone:
                log.info("undid the shipped prior correction (alpha %g)", undone)
        if cfg.init_encoder and not trainer.step:
            source, path = model_and_file(cfg.init_encoder, cfg.model)
            load_init_encoder(trainer.model, path, source)
            log.info("encoder from %s (%s), decoder fresh", path, source)
        trainer.reset_ema()
        # decided together, so that no worker waits alone in the next collective
        previous = np.array(float((ckpt / "state.json").exists()))
        if worker_count(strategy) > 1 and sum_over_workers(strategy, previous) > 0:
            raise ValueError(
                f"{ckpt} holds a checkpoint of the previous format, which resumes on "
                "one worker only; resume it there, or start a new --out"
            )
    val_ds = make_dataset(list(cfg.val), pipe, training=False) if chief else None
    if val_ds is not None and cfg.val_batches:
        val_ds = val_ds.take(cfg.val_batches)
    rows = [
        r for r in _read_metrics(out / "metrics.csv") if r["epoch"] <= trainer.epoch
    ]
    logged = _trim_steps(out / "steps.csv", trainer.step) if chief else []
    pending: list[dict] = []
    while trainer.epoch < cfg.epochs:
        t0 = time.time()
        first = trainer.epoch * steps_per_epoch
        # losses of this epoch's steps before a resume, so the mean is unchanged
        losses = [r["loss"] for r in logged if r["step"] > first]
        done_before = len(losses)
        while trainer.step < (trainer.epoch + 1) * steps_per_epoch:
            batch = trainer.distribute_batch(next(it))
            lr = float(trainer.dec_opt.learning_rate)  # the rate of this step
            loss = float(trainer.train_step(*batch))
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {trainer.step}")
            losses.append(loss)
            trainer.step += 1
            pending.append(
                {
                    "step": trainer.step,
                    "epoch": trainer.epoch + 1,
                    "loss": loss,
                    "lr": lr,
                }
            )
            if trainer.step % LOG_EVERY == 0:
                log.info(
                    "step %d loss %.4f (%.1f img/s)",
                    trainer.step,
                    np.mean(losses[-LOG_EVERY:]),
                    (len(losses) - done_before) * cfg.batch_size / (time.time() - t0),
                )
            if trainer.step % cfg.checkpoint_every == 0:
                pending = _flush_steps(pending, out, chief)
                trainer.save_checkpoint(ckpt)
        # only the chief reads val/; the others get its loss through one all-reduce
        val_loss = float("nan")
        with trainer.averaged_weights():
            if val_ds is not None:
                val_loss = float(
                    np.mean([float(trainer.eval_step(*batch)) for batch in val_ds])
                )
            val_loss = float(
                sum_over_workers(strategy, np.array(val_loss if chief else 0))
            )
            better = val_loss < trainer.best_val
            if chief:
                trainer.model.save_weights(out / ".last.weights.h5")
                if better:
                    shutil.copyfile(out / ".last.weights.h5", out / ".best.weights.h5")
                    (out / ".best.weights.h5").replace(out / "best.weights.h5")
                (out / ".last.weights.h5").replace(out / "last.weights.h5")
        trainer.epoch += 1
        rows.append(
            {
                "epoch": trainer.epoch,
                "step": trainer.step,
                "train_loss": float(np.mean(losses)) if losses else math.nan,
                "val_loss": val_loss,
                "seconds": time.time() - t0,
            }
        )
        log.info(
            "epoch %d train %.4f val %.4f",
            trainer.epoch,
            rows[-1]["train_loss"],
            val_loss,
        )
        if better:
            trainer.best_val = val_loss
        pending = _flush_steps(pending, out, chief)
        logged = []
        if chief:
            _write_metrics(rows, out / "metrics.csv")
            _plot_curves(rows, out / "curves.png")
        trainer.save_checkpoint(ckpt)
    return out / "best.weights.h5"


def _check_same_sources(sources: list[Path], strategy: tf.distribute.Strategy) -> None:
    """Raise ValueError unless every worker lists the same sources (names, order).

    Worker i trains on sources i, i + n, ... of its own listing, so the listings
    must agree, or shards would be read twice or never.
    """
    names = "\n".join(p.name for p in sources).encode()
    mine = np.array([len(sources), zlib.crc32(names) % 1_000_003], np.float64)
    total = sum_over_workers(strategy, mine)
    if np.abs(total - mine * worker_count(strategy)).max() > 0.5:
        raise ValueError(
            "the workers list different training sources; every worker must see "
            "the same shard names under --data (see docs/distributed.md)"
        )


def _flush_steps(pending: list[dict], out: Path, chief: bool) -> list[dict]:
    if chief:
        _append_steps(pending, out / "steps.csv")
    return []


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def _check_precision(precision: str) -> None:
    """Warn when the precision has no hardware support here (it still runs)."""
    if tf.config.list_physical_devices("GPU"):
        return
    if precision == "mixed_float16":
        log.warning("mixed_float16 on a CPU is slow; use mixed_bfloat16 or float32")
    if precision == "mixed_bfloat16" and not {"avx512_bf16", "amx_bf16"} & _cpu_flags():
        log.warning("this CPU has no bfloat16 instructions: mixed_bfloat16 is emulated")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__.split("\n\n")[0],
    )
    add_dataclass_args(parser, TrainConfig)
    cfg = dataclass_from_args(TrainConfig, parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        # a multi-worker strategy must exist before any other TensorFlow op
        strategy = make_strategy(cfg.strategy)
        for name in ("tensorflow", "absl"):  # per-collective and per-save notes
            logging.getLogger(name).setLevel(logging.WARNING)
        keras.utils.set_random_seed(cfg.seed)
        best = train(cfg, strategy)
    except (ValueError, FileNotFoundError, UnknownModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(best)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The trainer of the Lab models: model, optimizers, loss, the distributed step, the
moving average of the weights (`--ema`); its checkpoints are training/checkpoint.py's.

The step runs through `tf.distribute` (`Trainer.train_step` -> `_distributed_step` ->
each replica's `_replica_gradients` and `_apply`); mixed_float16 adds dynamic loss
scaling with the skip of non-finite steps.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core.models import create_model, get_spec
from core.models.unet import HintEvidence
from training.adversarial import AdversarialTerm
from training.checkpoint import Checkpoints
from training.distribute import worker_count
from training.freeze import freeze_encoder_to
from training.fused_bn import fuse_batch_norms
from training.losses import classification_loss, regression_loss
from training.perceptual import PerceptualTerm, decode_corrected_tf
from training.train_config import TrainConfig, parse_model_options, resolve_config

__all__ = ["Trainer", "check_precision"]

log = logging.getLogger(__name__)

# dynamic loss scaling for mixed_float16 (Micikevicius et al. 2018; Keras's values)
INITIAL_LOSS_SCALE = 2.0**15
LOSS_SCALE_GROWTH_STEPS = 2000


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


def _hint_spread_off(model: keras.Model) -> None:
    """Turn off the hints' vote around them (`HintEvidence.spread`) in this training
    model; it has no weights, so the saved weights are those of a model with it on.
    A hint's evidence where it lies stays (docs/design.md 4.4)."""
    for layer in model.layers:
        if isinstance(layer, HintEvidence):
            layer.spread = 0.0


class Trainer:
    """Owns the model, its optimizers, the loss and the distributed step.

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
                if cfg.fused_batch_norm:  # same values, faster (fused_bn.py)
                    fuse_batch_norms(self.model)
                if not cfg.hint_spread:
                    _hint_spread_off(self.model)
                self._build_state(cfg, total_steps, class_weights)
        finally:
            keras.config.set_dtype_policy(previous_policy)
        self.step = 0
        self.epoch = 0
        self.best_val = math.inf
        self.checkpoints = Checkpoints(self)
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
        if "encoder" in names and cfg.encoder_lr_factor == 0:
            # frozen: no weight of it is trained, and the tape stops at its output
            self.model.get_layer("encoder").trainable = False
        elif "encoder" in names and cfg.encoder_frozen_stride:
            # its first stages frozen: their backward passes are skipped
            freeze_encoder_to(
                self.model.get_layer("encoder"), cfg.encoder_frozen_stride
            )
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
            return self.spec.norm_to_chroma(out)
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
        """The network's inputs: L / 100 (`ModelSpec.luma_to_norm`), and for hint
        models the hint ab and mask.

        lightness: float32 (B, S, S, 1) in [0, 100]; hints: float32 (B, S, S, 3) as
        `training.hints.simulate_hints` packs them, or None (no hints).
        """
        x = self.spec.luma_to_norm(lightness)
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
        self.checkpoints.attach_data(iterator)

    def save_checkpoint(self, folder: Path) -> None:
        """Save the whole training state in `folder` (`Checkpoints.save`)."""
        self.checkpoints.save(folder)

    def load_checkpoint(self, folder: Path, step: int | None = None) -> bool:
        """Restore from `folder`, the latest or `step`'s (`Checkpoints.load`); False
        when there is no checkpoint."""
        return self.checkpoints.load(folder, step)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def check_precision(precision: str) -> None:
    """Warn when the precision has no hardware support here (it still runs)."""
    if tf.config.list_physical_devices("GPU"):
        return
    if precision == "mixed_float16":
        log.warning("mixed_float16 on a CPU is slow; use mixed_bfloat16 or float32")
    if precision == "mixed_bfloat16" and not {"avx512_bf16", "amx_bf16"} & _cpu_flags():
        log.warning("this CPU has no bfloat16 instructions: mixed_bfloat16 is emulated")

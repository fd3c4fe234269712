"""Train a registered Lab model (the default U-Net) on folders or `.tar` shards.

    python -m training.train --model default --data ../shared/data/train \
        --val ../shared/data/val --out runs/default

Writes into --out: `config.json`, `metrics.csv` (train and validation loss per epoch),
`curves.png`, `checkpoint/` (weights, optimizer state and step, written atomically every
`--checkpoint-every` steps and at each epoch end), `best.weights.h5` (lowest validation
loss) and `prior.npz` (class-rebalancing weights, for classification models). Running
the same command again resumes from the last checkpoint.

Losses (COLORIZATION.md 2.4): weighted cross-entropy against soft-encoded targets for
313-bin models, mean squared error on ab / 110 for regression models. The pretrained
encoder gets a smaller learning rate than the decoder (`--encoder-lr-factor`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from core.atomic import atomic_write_bytes
from core.config import add_dataclass_args, dataclass_from_args
from core.models import create_model, get_spec
from core.quantize import soft_encode_tf
from training.data import PipelineConfig, count_images, list_sources, make_dataset
from training.prior import compute_prior, load_prior, save_prior

__all__ = ["TrainConfig", "Trainer", "main", "train"]

log = logging.getLogger(__name__)


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
    size: int = field(default=160, metadata={"help": "training crop side"})
    batch_size: int = 16
    epochs: int = 15
    steps_per_epoch: int = field(
        default=0, metadata={"help": "0: one pass over the training images"}
    )
    lr: float = field(default=5e-4, metadata={"help": "decoder learning rate (Adam)"})
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
    checkpoint_every: int = field(default=250, metadata={"help": "steps"})
    val_batches: int = field(default=0, metadata={"help": "0: the whole val set"})
    model_options: tuple[str, ...] = field(
        default=(),
        metadata={"help": "builder options KEY=VALUE, e.g. width=0.25"},
    )
    seed: int = 0


def parse_model_options(items: tuple[str, ...] | list[str]) -> dict[str, object]:
    """`("width=0.25", "vgg_weights=/x.h5")` -> {"width": 0.25, "vgg_weights": "/x.h5"}.

    Values are read as Python literals when they parse as one, else kept as strings.
    """
    import ast

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
    logits: tf.Tensor, ab: tf.Tensor, class_weights: tf.Tensor
) -> tf.Tensor:
    """Rebalanced cross-entropy against soft-encoded ab (COLORIZATION.md 2.4).

    logits: float32 (B, h, w, 313); ab: float32 (B, h, w, 2) in CIE units;
    class_weights: float32 (313,). Returns the mean over the B*h*w pixels.
    """
    target = soft_encode_tf(ab)
    v = tf.gather(class_weights, tf.argmax(target, axis=-1))
    ce = -tf.reduce_sum(target * tf.nn.log_softmax(logits, axis=-1), axis=-1)
    return tf.reduce_mean(v * ce)


def regression_loss(
    ab_norm_pred: tf.Tensor, ab: tf.Tensor, ab_scale: float
) -> tf.Tensor:
    """Mean squared error on ab / ab_scale (COLORIZATION.md 2.4)."""
    return tf.reduce_mean(tf.reduce_sum(tf.square(ab_norm_pred - ab / ab_scale), -1))


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
    """Owns the model, its two optimizers, the loss and the checkpoint files."""

    def __init__(self, cfg: TrainConfig, total_steps: int, class_weights: np.ndarray):
        self.cfg = cfg
        self.spec = get_spec(cfg.model)
        options = parse_model_options(cfg.model_options)
        if not cfg.pretrained:
            options.setdefault("pretrained", False)
        self.model = create_model(cfg.model, **options)
        self.class_weights = tf.constant(class_weights, tf.float32)
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
        enc_sched = _WarmupCosine(
            cfg.lr * cfg.encoder_lr_factor, cfg.warmup_steps, total_steps
        )
        self.dec_opt = keras.optimizers.AdamW(sched, weight_decay=cfg.weight_decay)
        self.enc_opt = keras.optimizers.AdamW(enc_sched, weight_decay=cfg.weight_decay)
        self.dec_opt.build(self.dec_vars)
        self.enc_opt.build(self.enc_vars)
        self.step = 0
        self.epoch = 0
        self.best_val = math.inf

    def loss(self, out: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
        if self.spec.output == "ab_bins":
            return classification_loss(out, ab, self.class_weights)
        return regression_loss(out, ab, self.spec.ab_scale)

    @tf.function(reduce_retracing=True)
    def train_step(self, lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            out = self.model(lightness / 100.0, training=True)
            loss = self.loss(out, ab)
        grads = tape.gradient(loss, self.dec_vars + self.enc_vars)
        n = len(self.dec_vars)
        self.dec_opt.apply_gradients(zip(grads[:n], self.dec_vars, strict=True))
        if self.enc_vars:
            self.enc_opt.apply_gradients(zip(grads[n:], self.enc_vars, strict=True))
        return loss

    @tf.function(reduce_retracing=True)
    def eval_step(self, lightness: tf.Tensor, ab: tf.Tensor) -> tf.Tensor:
        return self.loss(self.model(lightness / 100.0, training=False), ab)

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self, folder: Path) -> None:
        """Weights, optimizer variables and counters; each file written atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".model.weights.h5"
        self.model.save_weights(tmp)
        opt = {
            f"{name}_{i}": v.numpy()
            for name, o in (("dec", self.dec_opt), ("enc", self.enc_opt))
            for i, v in enumerate(o.variables)
        }
        buf = io.BytesIO()
        np.savez(buf, **opt)
        atomic_write_bytes(folder / "optimizer.npz", buf.getvalue())
        tmp.replace(folder / "model.weights.h5")
        state = {"step": self.step, "epoch": self.epoch, "best_val": self.best_val}
        atomic_write_bytes(folder / "state.json", json.dumps(state).encode())

    def load_checkpoint(self, folder: Path) -> bool:
        """Restore from `folder`; False when there is no complete checkpoint."""
        if not (folder / "state.json").exists():
            return False
        self.model.load_weights(folder / "model.weights.h5")
        with np.load(folder / "optimizer.npz") as f:
            for name, o in (("dec", self.dec_opt), ("enc", self.enc_opt)):
                for i, v in enumerate(o.variables):
                    v.assign(f[f"{name}_{i}"])
        state = json.loads((folder / "state.json").read_text())
        self.step, self.epoch = state["step"], state["epoch"]
        self.best_val = state["best_val"]
        return True


def _class_weights(cfg: TrainConfig, out: Path) -> np.ndarray:
    if get_spec(cfg.model).output != "ab_bins":
        return np.ones(313)
    path = out / "prior.npz"
    if not path.exists():
        if cfg.prior:
            save_prior(load_prior(cfg.prior), path)
        else:
            log.info("computing the ab prior of the training data (once)")
            save_prior(compute_prior(list(cfg.data), cfg.size, 2), path)
    return load_prior(path)["weights"]


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


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the path of the best weights."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2).encode()
    )
    spec = get_spec(cfg.model)
    if spec.color_space != "lab":
        raise ValueError(f"training.train trains Lab models; {cfg.model!r} is not one")
    steps_per_epoch = cfg.steps_per_epoch or max(
        1, count_images(list_sources(list(cfg.data))) // cfg.batch_size
    )
    total = steps_per_epoch * cfg.epochs
    trainer = Trainer(cfg, total, _class_weights(cfg, out))
    ckpt = out / "checkpoint"
    if trainer.load_checkpoint(ckpt):
        log.info("resumed at step %d (epoch %d)", trainer.step, trainer.epoch)
    pipe = PipelineConfig(
        size=cfg.size, output_stride=spec.output_stride, batch_size=cfg.batch_size
    )
    # a new seed per resumed epoch: each epoch sees a fresh shuffle either way
    train_ds = make_dataset(
        list(cfg.data), pipe, training=True, seed=cfg.seed + trainer.step
    )
    val_ds = make_dataset(list(cfg.val), pipe, training=False)
    if cfg.val_batches:
        val_ds = val_ds.take(cfg.val_batches)
    rows = _read_metrics(out / "metrics.csv")
    it = iter(train_ds)
    while trainer.epoch < cfg.epochs:
        t0, losses = time.time(), []
        while trainer.step < (trainer.epoch + 1) * steps_per_epoch:
            lightness, ab = next(it)
            loss = float(trainer.train_step(lightness, ab))
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {trainer.step}")
            losses.append(loss)
            trainer.step += 1
            if trainer.step % 50 == 0:
                log.info(
                    "step %d loss %.4f (%.1f img/s)",
                    trainer.step,
                    np.mean(losses[-50:]),
                    len(losses) * cfg.batch_size / (time.time() - t0),
                )
            if trainer.step % cfg.checkpoint_every == 0:
                trainer.save_checkpoint(ckpt)
        val = [float(trainer.eval_step(x, y)) for x, y in val_ds]
        val_loss = float(np.mean(val))
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
        if val_loss < trainer.best_val:
            trainer.best_val = val_loss
            trainer.model.save_weights(out / ".best.weights.h5")
            (out / ".best.weights.h5").replace(out / "best.weights.h5")
        _write_metrics(rows, out / "metrics.csv")
        _plot_curves(rows, out / "curves.png")
        trainer.save_checkpoint(ckpt)
    return out / "best.weights.h5"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dataclass_args(parser, TrainConfig)
    cfg = dataclass_from_args(TrainConfig, parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    keras.utils.set_random_seed(cfg.seed)
    print(train(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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

The parts: training/train_config.py (the options), trainer.py (model, optimizers,
the step; losses.py), checkpoint.py (checkpoints and resume), runlog.py (CSV logs and
curves), init_weights.py (--init-weights, --init-encoder).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core.atomic import atomic_write_bytes
from core.cli import TIMED_LOG_FORMAT, run_main
from core.config import add_dataclass_args, dataclass_from_args
from core.errors import InvalidInputError, MissingInputError
from core.models import get_spec
from core.quantize import NUM_BINS, rebalance_weights, smooth_prior
from training.checkpoint import checkpoint_folder, resume
from training.data import (
    PipelineConfig,
    count_images,
    list_sources,
    make_dataset,
    worker_sources,
)
from training.distribute import (
    check_same_sources,
    is_chief,
    make_strategy,
    sum_over_workers,
    worker_count,
    worker_index,
)
from training.init_weights import load_init_encoder, load_init_weights, model_and_file
from training.prior import compute_prior, load_prior, save_prior
from training.runlog import RunLog
from training.train_config import TrainConfig, resolve_config
from training.trainer import Trainer, check_precision

__all__ = ["LOG_EVERY", "main", "rebalancing_weights", "train"]

log = logging.getLogger(__name__)

LOG_EVERY = 50  # steps between progress lines


def train(cfg: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> Path:
    """Run (or resume) training; returns the path of the best weights.

    strategy: made from cfg.strategy when None (create it first in a process that
    runs multi-worker training; see training.distribute).
    """
    cfg = resolve_config(cfg)
    if get_spec(cfg.model).color_space != "lab":
        raise InvalidInputError(
            f"training.train trains Lab models; {cfg.model!r} is not one"
        )
    strategy = strategy or make_strategy(cfg.strategy)
    out = _prepare_run(cfg, strategy)
    mine, own, steps_per_epoch = _worker_share(cfg, strategy)
    trainer = Trainer(cfg, steps_per_epoch * cfg.epochs, np.ones(NUM_BINS), strategy)
    # One pipeline per worker, on its own shards, batching the worker's share of the
    # global batch. Not `distribute_datasets_from_function`: its DistributedIterator
    # cannot be checkpointed (tensorflow#56372), a plain tf.data iterator can.
    it = iter(
        make_dataset(
            list(cfg.data),
            _pipeline(cfg),
            training=True,
            seed=cfg.seed,
            input_context=mine,
        )
    )
    trainer.attach_data(it)
    ckpt = checkpoint_folder(out, strategy)
    _start(trainer, ckpt, own)
    val_ds = _validation_data(cfg) if is_chief(strategy) else None
    runlog = RunLog(out, is_chief(strategy), trainer.epoch, trainer.step)
    while trainer.epoch < cfg.epochs:
        t0 = time.time()
        losses = _train_epoch(trainer, it, runlog, ckpt, steps_per_epoch)
        val_loss, better = _validate(trainer, val_ds, out)
        trainer.epoch += 1
        row = _epoch_row(trainer, losses, val_loss, time.time() - t0)
        if better:
            trainer.best_val = val_loss
        runlog.end_epoch(row)
        trainer.save_checkpoint(ckpt)
    return out / "best.weights.h5"


def _prepare_run(cfg: TrainConfig, strategy: tf.distribute.Strategy) -> Path:
    """Check the precision and the batch against the replicas; make the run folder
    and (the chief) write its config.json. Returns the run folder."""
    check_precision(cfg.precision)
    if cfg.batch_size % strategy.num_replicas_in_sync:
        raise InvalidInputError(
            f"--batch-size {cfg.batch_size} is not a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if is_chief(strategy):
        atomic_write_bytes(
            out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2).encode()
        )
    return out


def _pipeline(cfg: TrainConfig) -> PipelineConfig:
    """The input pipeline of the run's model: crops, loss resolution, hints."""
    spec = get_spec(cfg.model)
    return PipelineConfig(
        size=cfg.size,
        output_stride=spec.output_stride,
        batch_size=cfg.batch_size,
        shuffle=cfg.shuffle,
        hints=spec.hints,
    )


def _validation_data(cfg: TrainConfig) -> tf.data.Dataset:
    """The validation batches (centre crops, in order; --val-batches of them)."""
    val_ds = make_dataset(list(cfg.val), _pipeline(cfg), training=False)
    return val_ds.take(cfg.val_batches) if cfg.val_batches else val_ds


def _epoch_row(
    trainer: Trainer, losses: list[float], val_loss: float, seconds: float
) -> dict:
    """metrics.csv's row of the epoch just ended, also logged."""
    row = {
        "epoch": trainer.epoch,
        "step": trainer.step,
        "train_loss": float(np.mean(losses)) if losses else math.nan,
        "val_loss": val_loss,
        "seconds": seconds,
    }
    log.info("epoch %d train %.4f val %.4f", trainer.epoch, row["train_loss"], val_loss)
    return row


def _worker_share(
    cfg: TrainConfig, strategy: tf.distribute.Strategy
) -> tuple[tf.distribute.InputContext, list[Path], int]:
    """This worker's input context and sources, and the steps of an epoch."""
    sources = list_sources(list(cfg.data))
    check_same_sources(sources, strategy)
    mine = tf.distribute.InputContext(
        worker_count(strategy), worker_index(strategy), strategy.num_replicas_in_sync
    )
    own = [sources[i] for i in worker_sources(sources, mine)]
    # each worker counts its own shards; the sum is the same on every worker
    images = round(float(sum_over_workers(strategy, np.array(count_images(own)))))
    steps_per_epoch = cfg.steps_per_epoch or max(1, images // cfg.batch_size)
    return mine, own, steps_per_epoch


def _start(trainer: Trainer, ckpt: Path, own: list[Path]) -> None:
    """Resume from the checkpoint, or start: class weights, then the initial weights
    of --init-weights and --init-encoder."""
    cfg, strategy, out = trainer.cfg, trainer.strategy, Path(trainer.cfg.out)
    if resume(trainer, ckpt, strategy):
        log.info("resumed at step %d (epoch %d)", trainer.step, trainer.epoch)
        return
    trainer.class_weights.assign(rebalancing_weights(cfg, out, own, strategy))
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
        raise InvalidInputError(
            f"{ckpt} holds a checkpoint of the previous format, which resumes on "
            "one worker only; resume it there, or start a new --out"
        )


def _train_epoch(
    trainer: Trainer, it: Any, runlog: RunLog, ckpt: Path, steps_per_epoch: int
) -> list[float]:
    """Train the steps left in this epoch, logging each and checkpointing every
    --checkpoint-every; returns the losses of all the epoch's steps."""
    t0 = time.time()
    # losses of this epoch's steps before a resume, so the mean is unchanged
    losses = runlog.losses_after(trainer.epoch * steps_per_epoch)
    done_before = len(losses)
    while trainer.step < (trainer.epoch + 1) * steps_per_epoch:
        batch = trainer.distribute_batch(next(it))
        lr = float(trainer.dec_opt.learning_rate)  # the rate of this step
        loss = float(trainer.train_step(*batch))
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at step {trainer.step}")
        losses.append(loss)
        trainer.step += 1
        runlog.add_step(trainer.step, trainer.epoch + 1, loss, lr)
        if trainer.step % LOG_EVERY == 0:
            log.info(
                "step %d loss %.4f (%.1f img/s)",
                trainer.step,
                np.mean(losses[-LOG_EVERY:]),
                (len(losses) - done_before)
                * trainer.cfg.batch_size
                / (time.time() - t0),
            )
        if trainer.step % trainer.cfg.checkpoint_every == 0:
            runlog.flush_steps()
            trainer.save_checkpoint(ckpt)
    return losses


def _validate(
    trainer: Trainer, val_ds: tf.data.Dataset | None, out: Path
) -> tuple[float, bool]:
    """Validation loss of the (averaged) weights, and whether it is the best so far;
    the chief writes last.weights.h5 and, when better, best.weights.h5.

    Only the chief reads val/; the others get its loss through one all-reduce.
    """
    strategy = trainer.strategy
    chief = is_chief(strategy)
    val_loss = float("nan")
    with trainer.averaged_weights():
        if val_ds is not None:
            val_loss = float(
                np.mean([float(trainer.eval_step(*batch)) for batch in val_ds])
            )
        val_loss = float(sum_over_workers(strategy, np.array(val_loss if chief else 0)))
        better = val_loss < trainer.best_val
        if chief:
            trainer.model.save_weights(out / ".last.weights.h5")
            if better:
                shutil.copyfile(out / ".last.weights.h5", out / ".best.weights.h5")
                (out / ".best.weights.h5").replace(out / "best.weights.h5")
            (out / ".last.weights.h5").replace(out / "last.weights.h5")
    return val_loss, better


def rebalancing_weights(
    cfg: TrainConfig,
    out: Path,
    own_sources: list[Path],
    strategy: tf.distribute.Strategy,
) -> np.ndarray:
    """Rebalancing weights, float64 (313,): from --prior, the run folder or the data;
    all ones for a model without 313 bins.

    Counted on the data at the model's output stride (the resolution of its logits and
    of the loss: 2 for `default-v1`, 4 for `default` and the VGG16 models), each
    worker counts its own sources and the counts are summed over the workers; the
    chief writes `prior.npz` (counts int64 (313,), prior and weights float64 (313,)).
    """
    if get_spec(cfg.model).output != "ab_bins":
        return np.ones(NUM_BINS)
    path = out / "prior.npz"
    if cfg.prior:
        if not Path(cfg.prior).is_file():
            raise MissingInputError(f"--prior {cfg.prior}: no such file")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__.split("\n\n")[0],
    )
    add_dataclass_args(parser, TrainConfig)
    # only errors raised for users are one line; others are bugs, with a traceback
    return run_main(parser, argv, _run, log_format=TIMED_LOG_FORMAT)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(TrainConfig, args)
    # a multi-worker strategy must exist before any other TensorFlow op
    strategy = make_strategy(cfg.strategy)
    keras.utils.set_random_seed(cfg.seed)
    print(train(cfg, strategy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

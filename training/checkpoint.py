"""Checkpoints of a `Trainer` and the resume of a run (docs/distributed.md).

A checkpoint (`tf.train.Checkpoint`, in `checkpoint/` of the run folder; other workers
than the chief in `checkpoint/worker-N/`) holds the weights, optimizers, class weights,
the moving average (`--ema`), the critic (`--adversarial`), the layers' random state,
the counters (step, epoch, best validation loss, worker count, loss scale) and the
data position, so that a killed run resumes with the losses of an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from core.errors import InvalidInputError
from training.distribute import is_chief, min_over_workers, worker_count, worker_index

if TYPE_CHECKING:
    from training.trainer import Trainer

__all__ = [
    "KEEP_CHECKPOINTS",
    "Checkpoints",
    "checkpoint_folder",
    "checkpoint_steps",
    "resume",
]

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 2  # the older one lets workers agree after a crash mid-save


class Checkpoints:
    """Saves and restores the whole state of one `Trainer`, one manager a folder."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._data: Any = None
        self._managers: dict[Path, tf.train.CheckpointManager] = {}

    def attach_data(self, iterator: Any) -> None:
        """Save and restore `iterator` (a tf.data or distributed iterator) too."""
        self._data = iterator
        self._managers = {}

    def _manager(self, folder: Path) -> tf.train.CheckpointManager:
        folder = Path(folder)
        if folder not in self._managers:
            trainer = self.trainer
            items: dict[str, Any] = {
                "model": trainer.model,
                "dec_opt": trainer.dec_opt,
                "class_weights": trainer.class_weights,
                "rng_states": trainer.rng_states,
                **trainer.counters,
            }
            if trainer.enc_opt is not None:
                items["enc_opt"] = trainer.enc_opt
            if trainer.ema_vars:
                items["ema"] = trainer.ema_vars
            if trainer.adversarial is not None:
                items["critic"] = trainer.adversarial.net
                items["critic_opt"] = trainer.adversarial.optimizer
            if self._data is not None:
                items["data"] = self._data
            self._managers[folder] = tf.train.CheckpointManager(
                tf.train.Checkpoint(**items), folder, max_to_keep=KEEP_CHECKPOINTS
            )
        return self._managers[folder]

    def save(self, folder: Path) -> None:
        """Save weights, optimizers, counters, random state and data position.

        `tf.train.CheckpointManager` writes the files first and the index last, so
        a crash leaves the previous checkpoint usable; the last two are kept.
        """
        trainer = self.trainer
        trainer.counters["step"].assign(trainer.step)
        trainer.counters["epoch"].assign(trainer.epoch)
        trainer.counters["best_val"].assign(trainer.best_val)
        self._manager(folder).save(checkpoint_number=trainer.step)

    def load(self, folder: Path, step: int | None = None) -> bool:
        """Restore from `folder` (the latest checkpoint, or the one of `step`).

        Falls back to the files of the previous checkpoint format (weights, optimizer
        and counters, no data position). False when there is no checkpoint.
        """
        folder = Path(folder)
        trainer = self.trainer
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
            raise InvalidInputError(
                f"checkpoint {path} does not match this model and configuration "
                f"({err}); use another --out or the original options"
            ) from err
        trainer.step = int(trainer.counters["step"].numpy())
        trainer.epoch = int(trainer.counters["epoch"].numpy())
        trainer.best_val = float(trainer.counters["best_val"].numpy())
        saved_by = int(trainer.counters["workers"].numpy())
        if saved_by != worker_count(trainer.strategy):
            raise InvalidInputError(
                f"checkpoint {path} was written by {saved_by} workers, this run has "
                f"{worker_count(trainer.strategy)}: resume with as many workers (each "
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
        trainer = self.trainer
        trainer.model.load_weights(folder / "model.weights.h5")
        with np.load(folder / "optimizer.npz") as f:
            for name, opt in (("dec", trainer.dec_opt), ("enc", trainer.enc_opt)):
                for i, v in enumerate(opt.variables if opt is not None else []):
                    v.assign(f[f"{name}_{i}"])
        state = json.loads((folder / "state.json").read_text())
        trainer.step, trainer.epoch = state["step"], state["epoch"]
        trainer.best_val = state["best_val"]
        return True


def checkpoint_steps(folder: Path) -> list[int]:
    """Steps of the checkpoints kept in `folder`, oldest first."""
    state = tf.train.get_checkpoint_state(str(folder))
    if state is None:
        return []
    return [int(p.rpartition("-")[2]) for p in state.all_model_checkpoint_paths]


def checkpoint_folder(out: Path, strategy: tf.distribute.Strategy) -> Path:
    """The chief's checkpoint/, else checkpoint/worker-N/ (its own data position)."""
    if is_chief(strategy):
        return out / "checkpoint"
    return out / "checkpoint" / f"worker-{worker_index(strategy)}"


def resume(trainer: Trainer, folder: Path, strategy: tf.distribute.Strategy) -> int:
    """Restore the newest checkpoint that every worker has; returns its step (0: none).

    A crash can stop workers between their saves, so they agree on the smallest of
    their latest steps, and each restores that one (the previous is kept).
    """
    kept = checkpoint_steps(folder)
    latest = max(kept, default=0)
    agreed = min_over_workers(strategy, latest)
    if agreed == 0:
        if latest:
            raise InvalidInputError(
                f"{folder} has checkpoints but another worker has none; give every "
                "worker its checkpoint folder back, or start in a new --out"
            )
        return 0
    if agreed not in kept:
        raise InvalidInputError(
            f"{folder} lacks the checkpoint of step {agreed} that the other workers "
            f"resume from (it keeps {kept})"
        )
    trainer.load_checkpoint(folder, agreed)
    return agreed

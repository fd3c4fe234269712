"""Pick a `tf.distribute` strategy for training, and say which worker this process is.

    strategy = make_strategy("auto")
    with strategy.scope():
        model = create_model(...)          # variables are mirrored on every replica

Kinds:

- "default": no distribution; one process, one device (a CPU or a single GPU).
- "mirrored": `MirroredStrategy`, one process using every local GPU (synchronous,
  gradients all-reduced between the GPUs).
- "multiworker": `MultiWorkerMirroredStrategy`, one process per machine, the cluster
  described by the `TF_CONFIG` environment variable (see docs/distributed.md); each
  process uses its local GPUs, or its CPU when it has none.
- "auto": "multiworker" when `TF_CONFIG` is set, "mirrored" when there is more than one
  GPU, else "default".

`MultiWorkerMirroredStrategy` must be created before any other TensorFlow operation
runs in the process (collective ops are configured at start-up), so call
`make_strategy` first, before building models or datasets. Every worker must then run
the same program: collectives (gradient all-reduce, checkpoint saves) need all workers.
Under Keras 3 the robust path is a custom loop with `strategy.run` and losses averaged
over the global batch (`tf.nn.compute_average_loss`), not `model.fit`
(docs/design.md 4.7).
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path

import numpy as np
import tensorflow as tf

from core.errors import InvalidInputError

__all__ = [
    "KINDS",
    "check_same_sources",
    "is_chief",
    "make_strategy",
    "min_over_workers",
    "sum_over_workers",
    "worker_count",
    "worker_index",
]

log = logging.getLogger(__name__)

KINDS = ("auto", "default", "mirrored", "multiworker")


def _resolve_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInputError(
            f"unknown strategy kind {kind!r}; expected one of {KINDS}"
        )
    if kind != "auto":
        return kind
    if os.environ.get("TF_CONFIG", "").strip():
        return "multiworker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def make_strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """The strategy of `kind` ("auto", "default", "mirrored" or "multiworker").

    "multiworker" reads the cluster from `TF_CONFIG` (JSON with "cluster" and "task",
    e.g. {"cluster": {"worker": ["host0:12345", "host1:12345"]},
    "task": {"type": "worker", "index": 0}}) and raises ValueError when it is missing
    or not valid JSON. Call this before any other TensorFlow operation.
    """
    resolved = _resolve_kind(kind)
    if resolved == "multiworker":
        raw = os.environ.get("TF_CONFIG", "").strip()
        if not raw:
            raise InvalidInputError(
                "strategy 'multiworker' needs the TF_CONFIG environment variable "
                "(cluster and task; see docs/distributed.md)"
            )
        try:
            json.loads(raw)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"TF_CONFIG is not valid JSON: {err}") from err
        strategy: tf.distribute.Strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif resolved == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    log.info(
        "strategy %s (%s): %d replicas, worker %d of %d",
        resolved,
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        worker_index(strategy),
        worker_count(strategy),
    )
    return strategy


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This process's index among the workers (0 outside a multi-worker cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 0
    spec = resolver.cluster_spec().as_dict()
    # a "chief" job, when the cluster has one, counts as worker 0
    order = [("chief", i) for i in range(len(spec.get("chief", [])))] + [
        ("worker", i) for i in range(len(spec.get("worker", [])))
    ]
    return order.index((resolver.task_type, int(resolver.task_id)))


def worker_count(strategy: tf.distribute.Strategy) -> int:
    """Number of worker processes training together (1 outside a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return len(spec.get("chief", [])) + len(spec.get("worker", []))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process that writes shared outputs (logs, best weights)."""
    return worker_index(strategy) == 0


def _per_replica(strategy: tf.distribute.Strategy, value: tf.Tensor) -> object:
    """`value` on every local replica, as distributed values."""
    return strategy.experimental_distribute_values_from_function(lambda _: value)


def sum_over_workers(strategy: tf.distribute.Strategy, value: np.ndarray) -> np.ndarray:
    """Element-wise sum of each worker's `value`; every worker gets the result.

    value: any shape, summed as float64. A collective: every worker must call it.
    """
    local = np.asarray(value, np.float64)
    if worker_count(strategy) == 1:
        return local
    # every local replica contributes an equal part, so replicas per worker cancel
    share = tf.constant(local * worker_count(strategy) / strategy.num_replicas_in_sync)
    total = strategy.reduce(
        tf.distribute.ReduceOp.SUM, _per_replica(strategy, share), axis=None
    )
    return total.numpy()


def min_over_workers(strategy: tf.distribute.Strategy, value: int) -> int:
    """The smallest of the workers' `value`s; a collective, like `sum_over_workers`."""
    if worker_count(strategy) == 1:
        return int(value)
    mine = _per_replica(strategy, tf.constant([value], tf.int64))
    return int(tf.reduce_min(strategy.gather(mine, axis=0)))


def check_same_sources(sources: list[Path], strategy: tf.distribute.Strategy) -> None:
    """Raise ValueError unless every worker lists the same sources (names, order).

    Worker i trains on sources i, i + n, ... of its own listing, so the listings
    must agree, or shards would be read twice or never.
    """
    names = "\n".join(p.name for p in sources).encode()
    mine = np.array([len(sources), zlib.crc32(names) % 1_000_003], np.float64)
    total = sum_over_workers(strategy, mine)
    if np.abs(total - mine * worker_count(strategy)).max() > 0.5:
        raise InvalidInputError(
            "the workers list different training sources; every worker must see "
            "the same shard names under --data (see docs/distributed.md)"
        )

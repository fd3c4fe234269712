"""Empirical ab-bin prior and class-rebalancing weights of a training set
(docs/design.md 2.3).

    python -m training.prior --data ../shared/data/train --out runs/prior.npz

The prior is counted at the loss resolution of `--model`'s pipeline (centre crops of
`--size`, ab averaged over the model's output stride, or over `--stride` pixels).
Photos whose every pixel has |a|, |b| <= 5 (greyscale) are skipped, as in Zhang's
code.
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import keras
import numpy as np

from core.atomic import atomic_write_bytes
from core.cli import run_main
from core.models import get_spec
from core.quantize import NUM_BINS, nearest_bin, rebalance_weights, smooth_prior
from training.data import PipelineConfig, make_dataset

__all__ = ["compute_prior", "load_prior", "save_prior", "shift_logits_bias"]

log = logging.getLogger(__name__)


def compute_prior(
    data: list[str] | str, size: int = 160, stride: int = 2
) -> dict[str, np.ndarray]:
    """Count nearest-bin frequencies over a data set.

    Returns {"counts": int64 (313,), "prior": float64 (313,) smoothed, summing to 1,
    "weights": float64 (313,) rebalancing weights with sum(prior * weights) = 1}.
    """
    cfg = PipelineConfig(size=size, output_stride=stride, batch_size=32)
    counts = np.zeros(NUM_BINS, dtype=np.int64)
    skipped = 0
    for _lightness, ab in make_dataset(data, cfg, training=False).as_numpy_iterator():
        for sample in ab:
            if np.all(np.abs(sample) <= 5.0):
                skipped += 1
                continue
            counts += np.bincount(nearest_bin(sample).ravel(), minlength=NUM_BINS)
    log.info("prior from %d pixels; %d grey photos skipped", counts.sum(), skipped)
    prior = smooth_prior(counts)
    return {"counts": counts, "prior": prior, "weights": rebalance_weights(prior)}


def save_prior(prior: dict[str, np.ndarray], path: str | Path) -> None:
    """Write the prior arrays to an `.npz` file atomically."""
    buf = io.BytesIO()
    np.savez(buf, **prior)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_prior(path: str | Path) -> dict[str, np.ndarray]:
    """Read arrays written by `save_prior`."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def shift_logits_bias(model: keras.Model, weights: np.ndarray, alpha: float) -> None:
    """Subtract alpha * log(weights) from the bias of `model`'s layer 'logits'.

    weights: float (313,) class-rebalancing weights (> 0) of the prior the model was
    trained with. alpha > 0 undoes that much of the rebalancing (what
    `training.export --prior-correction` folds in); -alpha restores the trained bias.
    """
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    log_w = np.log(np.maximum(np.asarray(weights, np.float64), 1e-12))
    layer.set_weights([kernel, (bias - alpha * log_w).astype(bias.dtype)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="folders/shards")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument(
        "--model", default="default", help="the model whose output stride counts"
    )
    parser.add_argument(
        "--stride", type=int, default=None, help="default: the model's output stride"
    )
    return run_main(parser, argv, _run)


def _run(args: argparse.Namespace) -> int:
    stride = args.stride or get_spec(args.model).output_stride
    save_prior(compute_prior(args.data, args.size, stride), args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

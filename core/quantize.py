"""The quantised ab space: Zhang et al.'s 313 bins (docs/design.md section 2).

Bin centres, nearest-bin and soft encoding (TensorFlow, for training targets), the
class-rebalancing prior and weights, and decoding of logits by argmax or annealed mean.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from core.types import FloatArray, IntArray

__all__ = [
    "ANNEALED_T",
    "NUM_BINS",
    "bin_centers",
    "decode_logits",
    "gamut_occupied_bins",
    "nearest_bin",
    "rebalance_weights",
    "smooth_prior",
    "bin_sq_distances_tf",
    "candidate_table",
    "soft_encode_sparse_tf",
    "soft_encode_tf",
]

ANNEALED_T = 0.38  # Zhang et al.'s annealed-mean temperature
SOFT_K = 5  # neighbours in the soft encoding (Zhang's paper; his code uses 10)
SOFT_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5

# For each a (step 10), the contiguous run of b values kept (Zhang's pts_in_hull order:
# ascending a, then ascending b). This is data, like a physical constant; the table was
# checked entry by entry (docs/design.md 2.1), and `gamut_occupied_bins` derives the
# in-gamut cells from the sRGB cube for the test that the two agree.
_B_RUNS: dict[int, tuple[int, int]] = {
    -90: (50, 90),
    -80: (20, 90),
    -70: (0, 90),
    -60: (-20, 90),
    -50: (-30, 100),
    -40: (-40, 100),
    -30: (-50, 100),
    -20: (-50, 100),
    -10: (-60, 100),
    0: (-70, 100),
    10: (-80, 90),
    20: (-80, 90),
    30: (-90, 90),
    40: (-100, 90),
    50: (-100, 80),
    60: (-110, 80),
    70: (-110, 80),
    80: (-110, 70),
    90: (-110, 70),
    100: (-90, 0),
}


def _centers() -> FloatArray:
    pts = [(a, b) for a, (lo, hi) in _B_RUNS.items() for b in range(lo, hi + 1, 10)]
    return np.array(pts, dtype=np.float32)


_CENTERS = _centers()
NUM_BINS = len(_CENTERS)


def bin_centers() -> FloatArray:
    """The 313 ab bin centres in Zhang's order.

    Returns float32 (313, 2): (a, b) on a grid of 10, a in [-90, 100], b in [-110, 100].
    """
    return _CENTERS.copy()


def nearest_bin(ab: FloatArray) -> IntArray:
    """Index of the nearest bin centre for each ab value.

    ab: float (..., 2). Returns int64 (...) in [0, 313).
    """
    ab = np.asarray(ab, dtype=np.float32)
    flat = ab.reshape(-1, 2)
    out = np.empty(len(flat), dtype=np.int64)
    for start in range(0, len(flat), 65536):  # bounded memory for big images
        chunk = flat[start : start + 65536]
        d2 = ((chunk[:, None, :] - _CENTERS[None, :, :]) ** 2).sum(-1)
        out[start : start + len(chunk)] = d2.argmin(-1)
    return out.reshape(ab.shape[:-1])


def bin_sq_distances_tf(ab: tf.Tensor) -> tf.Tensor:
    """Squared distance from each ab value to every bin centre.

    ab: float32 (..., 2) in CIE units. Returns float32 (..., 313).

    Computed as |ab|^2 - 2 ab.c + |c|^2, one small matrix product, instead of the
    difference to every centre (a (..., 313, 2) tensor): about 6x faster on a CPU. The
    rounding error (about 1e-3 for |ab| near 100) matters only to distances that tie.
    """
    centers = tf.constant(_CENTERS)
    ab = tf.convert_to_tensor(ab, tf.float32)
    cross = tf.tensordot(ab, tf.transpose(centers), axes=1)
    return (
        tf.reduce_sum(tf.square(ab), axis=-1, keepdims=True)
        - 2.0 * cross
        + tf.reduce_sum(tf.square(centers), axis=-1)
    )


# The soft encoding looks up, for a cell of a 2-unit grid over ab in [-128, 128), the
# bins that can be among the 5 nearest of any point in that cell, instead of measuring
# the distance to all 313 (docs/design.md 4.2).
_CELL = 2.0
_CELL_LIMIT = 128.0


@functools.cache
def candidate_table() -> tuple[np.ndarray, int]:
    """Candidate bins of each cell of the 2-unit ab grid over [-128, 128)^2.

    Returns (table, cells): int32 (cells * cells, K) bin indices in ascending order,
    padded with NUM_BINS (a dummy centre far from every ab), and cells = 128 per
    axis; the cell of (a, b) is floor((a + 128) / 2) * 128 + floor((b + 128) / 2).

    A point p of a cell with centre c lies within r = sqrt(2) of it, so its
    distance to any bin differs from c's by at most r. The 5 nearest bins of p are
    within d5(c) + r of p, hence within d5(c) + 2r of c (d5: the 5th smallest
    distance): the table keeps every bin that close to c, and K (12) is the largest
    such count over the cells.
    """
    cells = int(2 * _CELL_LIMIT / _CELL)
    mid = -_CELL_LIMIT + _CELL * (np.arange(cells) + 0.5)
    a, b = np.meshgrid(mid, mid, indexing="ij")
    c = np.stack([a.ravel(), b.ravel()], axis=1)
    d = np.sqrt(
        ((c[:, None, :] - _CENTERS[None, :, :].astype(np.float64)) ** 2).sum(-1)
    )
    d5 = np.sort(d, axis=1)[:, SOFT_K - 1 : SOFT_K]
    keep = d <= d5 + 2.0 * _CELL / np.sqrt(2.0) + 1e-6
    k = int(keep.sum(axis=1).max())
    # the kept indices of each row first, in ascending order, then the padding
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    table = np.where(np.take_along_axis(keep, order, axis=1), order, NUM_BINS)
    return table.astype(np.int32), cells


def _nearest_k(ab: tf.Tensor, candidates: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The SOFT_K nearest of `candidates` (..., K) bin indices (NUM_BINS: none) to
    ab (..., 2): (int32 bin indices nearest first, float32 exact squared distances).
    Ties go to the lower index, as candidates are in ascending order."""
    far = np.full((1, 2), 1e4, np.float32)  # the dummy centre NUM_BINS
    centres = tf.constant(np.concatenate([_CENTERS, far]))
    d2 = tf.reduce_sum(tf.square(ab[..., None, :] - tf.gather(centres, candidates)), -1)
    neg_d2, pos = tf.math.top_k(-d2, k=SOFT_K)
    return tf.gather(candidates, pos, batch_dims=len(candidates.shape) - 1), -neg_d2


def soft_encode_sparse_tf(ab: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The soft encoding of ab as its SOFT_K nearest bins and their weights.

    ab: float32 (..., 2) in CIE units, static rank.
    Returns (idx, w): int32 (..., 5) bin indices, nearest first (so idx[..., 0] is the
    nearest bin), and float32 (..., 5) Gaussian weights (sigma 5) summing to 1.
    The bins are the nearest by exact distance among the candidates of ab's cell
    (`candidate_table`), which hold them whenever every ab lies in [-128, 128) (all
    of sRGB does); otherwise among all 313 (`bin_sq_distances_tf`). The weights use
    the exact distances.
    """
    ab = tf.convert_to_tensor(ab, tf.float32)
    table, cells = candidate_table()

    def from_table() -> tuple[tf.Tensor, tf.Tensor]:
        cell = tf.cast(tf.floor((ab + _CELL_LIMIT) / _CELL), tf.int32)
        cell = tf.clip_by_value(cell, 0, cells - 1)
        flat = cell[..., 0] * cells + cell[..., 1]
        return _nearest_k(ab, tf.gather(tf.constant(table), flat))

    def from_all() -> tuple[tf.Tensor, tf.Tensor]:
        _, idx = tf.math.top_k(-bin_sq_distances_tf(ab), k=SOFT_K)
        idx = tf.cast(idx, tf.int32)
        chosen = tf.gather(tf.constant(_CENTERS), idx)  # (..., 5, 2)
        return idx, tf.reduce_sum(tf.square(ab[..., None, :] - chosen), axis=-1)

    inside = tf.reduce_all((ab >= -_CELL_LIMIT) & (ab < _CELL_LIMIT))
    idx, d2 = tf.cond(inside, from_table, from_all)
    # shift by the nearest distance: far from every centre exp() underflows to 0/0
    d2 = d2 - tf.reduce_min(d2, axis=-1, keepdims=True)
    w = tf.exp(-d2 / (2.0 * SOFT_SIGMA**2))
    return idx, w / tf.reduce_sum(w, axis=-1, keepdims=True)


def soft_encode_tf(ab: tf.Tensor) -> tf.Tensor:
    """Soft-encode ab targets over the 313 bins (5 nearest, Gaussian sigma 5).

    ab: float32 (B, H, W, 2) in CIE units.
    Returns float32 (B, H, W, 313), each pixel's weights summing to 1. The loss uses
    the sparse form, `soft_encode_sparse_tf`, instead.
    """
    idx, w = soft_encode_sparse_tf(ab)
    return tf.reduce_sum(tf.one_hot(idx, NUM_BINS) * w[..., None], axis=-2)


def smooth_prior(counts: np.ndarray, sigma: float = SOFT_SIGMA) -> np.ndarray:
    """Gaussian-smoothed empirical prior over the bins (docs/design.md 2.3 step 2).

    counts: (313,) non-negative pixel counts. Returns float64 (313,) summing to 1.
    """
    p = np.asarray(counts, dtype=np.float64)
    if p.shape != (NUM_BINS,) or p.sum() <= 0:
        raise ValueError(f"expected {NUM_BINS} non-negative counts with a positive sum")
    p = p / p.sum()
    c = _CENTERS.astype(np.float64)
    kernel = np.exp(-((c[:, None, :] - c[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))
    smoothed = kernel @ p
    return smoothed / smoothed.sum()


def rebalance_weights(prior: np.ndarray, lam: float = REBALANCE_LAMBDA) -> np.ndarray:
    """Class-rebalancing weights w_q (docs/design.md 2.3 step 3).

    prior: float (313,) smoothed prior summing to 1.
    Returns float64 (313,) with sum(prior * w) == 1; the uniform part is taken over the
    bins with a non-zero prior, as in Zhang's code.
    """
    prior = np.asarray(prior, dtype=np.float64)
    nonzero = prior > 0
    w = np.zeros_like(prior)
    w[nonzero] = 1.0 / ((1 - lam) * prior[nonzero] + lam / nonzero.sum())
    return w / (prior * w).sum()


def decode_logits(logits: FloatArray, temperature: float = ANNEALED_T) -> FloatArray:
    """Decode per-pixel bin logits to ab by annealed mean (or argmax when T == 0).

    logits: float (..., 313). temperature: 0 for argmax, 1 for the plain mean.
    Returns float32 (..., 2) in CIE units.
    """
    logits = np.asarray(logits, dtype=np.float32)
    if temperature <= 0:
        return _CENTERS[np.argmax(logits, axis=-1)]
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ _CENTERS).astype(np.float32)


def gamut_occupied_bins() -> np.ndarray:
    """Bins of the 10-unit grid that some sRGB colour quantises to (cell occupancy).

    Derived from all 256**3 sRGB colours (docs/design.md 2.1: 261 cells, all of them
    among Zhang's 313). Returns int64 (K, 2) grid-cell centres (a, b).
    """
    from core.colorspace import rgb_to_lab

    v = np.arange(256, dtype=np.uint8)
    cells: set[tuple[int, int]] = set()
    for r in v[::1]:
        g, b = np.meshgrid(v, v, indexing="ij")
        rgb = np.stack([np.full_like(g, r), g, b], axis=-1)
        ab = rgb_to_lab(rgb)[..., 1:].reshape(-1, 2)
        q = np.unique(np.round(ab / 10.0).astype(np.int64), axis=0)
        cells.update(map(tuple, q.tolist()))
    return np.array(sorted(cells), dtype=np.int64) * 10

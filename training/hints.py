"""Simulated user hints for training hint models (docs/design.md, hints).

After Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep
Priors"): a simulated user gives a crop no hint at all with probability `p_none`;
otherwise a number of points drawn from a geometric distribution with p = 1/8
(support 1, 2, ...; mean 8). Each point is a square patch of side uniform in 1..9
pixels, centred uniformly in the crop or, with probability 1/2, from a Gaussian around
the crop's centre (sigma = side / 4), and carries the patch's mean true ab. Randomness
is stateless: the same seed gives the same hints on any worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from core.models.registry import AB_SCALE

__all__ = ["HintConfig", "hint_channels", "simulate_hints"]

MAX_POINTS = 64  # points beyond this are dropped (P(n > 64) = (7/8)^64 < 0.03 %)


@dataclass(frozen=True)
class HintConfig:
    """Parameters of the simulated user."""

    p_none: float = 0.5  # share of crops with no hint at all (automatic mode)
    p_geometric: float = 1.0 / 8.0
    max_side: int = 9  # patch sides uniform in 1..max_side
    p_gaussian: float = 0.5  # share of points placed around the centre


def hint_channels(ab_norm: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Pack hints as the pipeline carries them: float32 (..., 3) = [a, b, mask]."""
    return tf.concat([ab_norm, mask], axis=-1)


def simulate_hints(
    ab: tf.Tensor,
    seed: tf.Tensor,
    ab_scale: float = AB_SCALE,
    cfg: HintConfig | None = None,
) -> tf.Tensor:
    """Hints of one crop as a simulated user would give them.

    ab: float32 (S, S, 2) the crop's true ab in CIE units, at the input resolution.
    seed: int64 (2,) stateless seed.
    Returns float32 (S, S, 3): hint ab / ab_scale in [-1, 1] on hinted pixels (0
    elsewhere) and the hint mask (1 on hinted pixels). Where patches overlap, their
    mean colours are averaged.
    """
    cfg = cfg or HintConfig()
    ab = tf.convert_to_tensor(ab, tf.float32)
    size = tf.shape(ab)[0]
    s = tf.cast(size, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 7)
    k = MAX_POINTS

    none = tf.random.stateless_uniform([], seeds[0]) < cfg.p_none
    u = tf.random.stateless_uniform([], seeds[1], minval=1e-7, maxval=1.0)
    count = 1 + tf.cast(
        tf.floor(tf.math.log(u) / tf.math.log(1.0 - cfg.p_geometric)), tf.int32
    )
    count = tf.where(none, 0, tf.minimum(count, k))

    side = tf.random.stateless_uniform(
        [k], seeds[2], minval=1, maxval=cfg.max_side + 1, dtype=tf.int32
    )
    side = tf.minimum(side, size)
    uniform = tf.random.stateless_uniform([k, 2], seeds[3]) * s
    gauss = s / 2.0 + tf.random.stateless_normal([k, 2], seeds[4]) * (s / 4.0)
    pick = tf.random.stateless_uniform([k, 1], seeds[5]) < cfg.p_gaussian
    centre = tf.where(pick, gauss, uniform)
    half = tf.cast(side, tf.float32)[:, None] / 2.0
    corner = tf.cast(tf.round(centre - half), tf.int32)
    corner = tf.clip_by_value(corner, 0, (size - side)[:, None])
    y0, x0 = corner[:, 0], corner[:, 1]
    y1, x1 = y0 + side, x0 + side

    # patch means from an integral image: sum over [y0, y1) x [x0, x1)
    integral = tf.pad(
        tf.cumsum(tf.cumsum(ab, axis=0), axis=1), [[1, 0], [1, 0], [0, 0]]
    )

    def at(y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
        return tf.gather_nd(integral, tf.stack([y, x], axis=-1))

    area = tf.cast(side * side, tf.float32)[:, None]
    mean = (at(y1, x1) - at(y0, x1) - at(y1, x0) + at(y0, x0)) / area  # (k, 2)

    rows = tf.range(size)
    active = tf.range(k) < count
    in_y = (rows[None, :] >= y0[:, None]) & (rows[None, :] < y1[:, None])
    in_x = (rows[None, :] >= x0[:, None]) & (rows[None, :] < x1[:, None])
    in_y &= active[:, None]
    cover = tf.cast(in_y, tf.float32)[:, :, None] * tf.cast(in_x, tf.float32)[:, None]
    hits = tf.reduce_sum(cover, axis=0)  # (S, S)
    total = tf.einsum("kyx,kc->yxc", cover, mean)
    mask = tf.cast(hits > 0, tf.float32)[..., None]
    hint_ab = total / tf.maximum(hits, 1.0)[..., None] / ab_scale
    return hint_channels(tf.clip_by_value(hint_ab, -1.0, 1.0), mask)

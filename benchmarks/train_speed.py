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
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.markdown import command_line, emit
from core.cli import run_main
from core.models import get_spec

__all__ = ["measure", "main"]


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

    Returns {model: {"images_per_s": median over rounds, "ratio": median over rounds
    of its images/s / the first model's, "rounds": rounds}}.
    """
    from training.data import PipelineConfig, make_dataset
    from training.train_config import TrainConfig
    from training.trainer import Trainer

    steps_of = {}
    for name in models:
        spec = get_spec(name)
        cfg = TrainConfig(
            model=name, pretrained=False, size=size, batch_size=batch_size
        )
        trainer = Trainer(cfg, 1000, np.ones(313))
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
        spec = get_spec(name)
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

    def run(args: argparse.Namespace) -> int:
        if not Path(args.data).exists():
            parser.error(f"--data {args.data}: no such folder or file")
        result = measure(
            args.models, args.data, args.size, args.batch_size, args.rounds, args.steps
        )
        command = command_line("benchmarks.train_speed", argv)
        emit(to_markdown(result, command, args.size), args.out)
        return 0

    return run_main(parser, argv, run, level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())

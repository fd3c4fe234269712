"""Train the paper's conditional GAN ("cgan") on 64x64 photos (docs/design.md 4.6).

    python -m training.train_gan --data ../shared/data/tiny64 --out runs/cgan \
        --iterations 1000

Each iteration is one discriminator step, then one generator step, each on a fresh
minibatch with fresh noise z ~ U(-1, 1) (paper Algorithm 1, docs/design.md 4.6):

- D minimises binary cross-entropy on its logits, real [y, uv] = 1, fake
  [y, G(y, z)] = 0 (eq. 3);
- G minimises the non-saturating loss -log D(G(y, z)) (BCE with label 1 on fakes);
  the paper's eq. 4 value, mean log(1 - D(G(y, z))), is logged beside it.

Writes into --out: `config.json`; `log.csv` every `--log-every` iterations (means over
those iterations of d_loss, g_loss, g_loss_eq4 and D's accuracy on real and fake
images, and their seconds); `losses.png` and `accuracy.png` (the paper's figures 10 and
11); every `--checkpoint-every` iterations `checkpoints/generator-NNNNNN.weights.h5`
(all kept: the paper stopped early because G degraded later) with
`checkpoints/samples-NNNNNN.png` (grey | fake | real for 8 fixed validation photos,
to pick an iteration by eye) and the resumable `checkpoints/resume.npz` (G, D, both
optimizers, iteration and data position); at the end `generator.weights.h5`, the last
iteration's generator. Running the same command again resumes where it stopped;
`--iterations` is where it stops.

The steps run through `tf.distribute` (models and optimizers made in the strategy's
scope, losses averaged over the global batch): `--strategy` picks one strategy of
training/distribute.py, e.g. `mirrored` splits each minibatch between the local GPUs.
Only the chief writes the run's files; other workers of a cluster keep their own
resumable checkpoint in `checkpoints/worker-N/`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from core.atomic import atomic_write_bytes
from core.cli import TIMED_LOG_FORMAT, run_main
from core.colorspace import rgb_to_yuv, rgb_to_yuv_tf, yuv_to_rgb
from core.config import add_dataclass_args, dataclass_from_args
from core.errors import InvalidInputError, MissingInputError
from core.models import create_model, get_spec
from core.models.cgan import INPUT_SIZE, build_discriminator
from core.types import FloatArray, UInt8Array
from training.data import decode_tf, iter_encoded, list_sources
from training.distribute import is_chief, make_strategy, worker_index
from training.runlog import plot_rows

__all__ = [
    "GanConfig",
    "GanTrainer",
    "load_images",
    "main",
    "make_gan_dataset",
    "sample_grid",
    "train",
    "yuv_example",
]

log = logging.getLogger(__name__)

_PAPER = get_spec("cgan").train_defaults  # paper Table 1: lr, batch size, noise
SAMPLE_IMAGES = 8  # validation photos in each checkpoint's sample grid
GAN_PRECISIONS = ("float32", "mixed_bfloat16")
LOG_COLUMNS = (
    "iteration",
    "d_loss",
    "g_loss",
    "g_loss_eq4",
    "d_acc_real",
    "d_acc_fake",
    "seconds",
)
_SPEC = get_spec("cgan")  # its normalisation: y = 2Y - 1, uv = (U/U_MAX, V/V_MAX)


@dataclass(frozen=True)
class GanConfig:
    data: tuple[str, ...] = field(
        default=("../shared/data/tiny64",),
        metadata={"help": "training folders/shards (centre-cropped to 64x64)"},
    )
    val: tuple[str, ...] = field(
        default=("../shared/data/val",),
        metadata={"help": "the first 8 photos here make the sample grids"},
    )
    out: str = field(default="runs/cgan", metadata={"help": "run folder"})
    iterations: int = field(
        default=1000, metadata={"help": "stop after this iteration (paper: 1000)"}
    )
    batch_size: int = field(
        default=_PAPER["batch_size"], metadata={"help": "global minibatch m"}
    )
    lr: float = field(
        default=_PAPER["lr"], metadata={"help": "Adam learning rate of G and of D"}
    )
    beta_1: float = field(default=0.5, metadata={"help": "Adam beta1 (Cao's code)"})
    beta_2: float = 0.999
    noise_dim: int = field(
        default=_PAPER["noise_dim"], metadata={"help": "length of z (s_z)"}
    )
    log_every: int = field(default=10, metadata={"help": "iterations per log row"})
    checkpoint_every: int = field(default=100, metadata={"help": "iterations"})
    seed: int = field(
        default=0, metadata={"help": "fixes initial weights, data order and noise"}
    )
    strategy: str = field(
        default="auto",
        metadata={"help": "auto, default, mirrored or multiworker (TF_CONFIG)"},
    )
    precision: str = field(
        default="float32",
        metadata={"help": "float32 or mixed_bfloat16 (losses stay float32)"},
    )


# ---------------------------------------------------------------- data


def load_images(paths: list[str] | tuple[str, ...], limit: int = 0) -> UInt8Array:
    """Decode photos from folders, shards or globs, centre-cropped to 64x64.

    limit: stop after this many photos (0: all of them).
    Returns uint8 (N, 64, 64, 3) RGB in file order. Photos already 64x64 (tiny64) are
    kept as they are; others lose the sides of their longer axis and are resized with
    antialiasing.
    """
    out = []
    for _key, data in iter_encoded(list_sources(list(paths))):
        rgb = decode_tf(data)
        h, w = int(rgb.shape[0]), int(rgb.shape[1])
        if (h, w) != (INPUT_SIZE, INPUT_SIZE):
            side = min(h, w)
            rgb = tf.image.resize_with_crop_or_pad(rgb, side, side)
            rgb = tf.image.resize(rgb, (INPUT_SIZE, INPUT_SIZE), antialias=True)
            rgb = tf.cast(tf.round(tf.clip_by_value(rgb, 0.0, 255.0)), tf.uint8)
        out.append(rgb.numpy())
        if limit and len(out) == limit:
            break
    if not out:
        raise MissingInputError(f"no photos under {list(paths)}")
    return np.stack(out)


def yuv_example(rgb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Condition and target of photos (docs/design.md 1.5).

    rgb: float32 (..., H, W, 3) in [0, 1].
    Returns y = 2Y - 1, float32 (..., H, W, 1) in [-1, 1], and uv = (U / U_MAX,
    V / V_MAX), float32 (..., H, W, 2) in [-1, 1].
    """
    yuv = rgb_to_yuv_tf(rgb)
    return _SPEC.luma_to_norm(yuv[..., :1]), _SPEC.chroma_to_norm(yuv[..., 1:])


def make_gan_dataset(
    images: UInt8Array, batch_size: int, noise_dim: int, seed: int, start: int = 0
) -> tf.data.Dataset:
    """Endless minibatches (y, uv, z) of shuffled photos with fresh noise.

    images: uint8 (N, 64, 64, 3) RGB.
    Yields y float32 (B, 64, 64, 1) and uv float32 (B, 64, 64, 2) as `yuv_example`,
    and z float32 (B, noise_dim) ~ U(-1, 1).
    Example p of the stream (counting from 0) is photo number p mod N of epoch p // N's
    permutation, with its own z, both fixed by (seed, p); `start` begins the stream at
    example `start`, so a resumed run sees exactly what an uninterrupted one would.
    """
    n = len(images)
    table = tf.constant(images)

    def example(position: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        order_seed = tf.stack([tf.constant(seed, tf.int64), position // n])
        index = tf.random.experimental.index_shuffle(
            position % n, seed=order_seed, max_index=n - 1
        )
        y, uv = yuv_example(tf.cast(tf.gather(table, index), tf.float32) / 255.0)
        noise_seed = tf.stack([tf.constant(seed, tf.int64), position])
        z = tf.random.stateless_uniform(
            [noise_dim], seed=noise_seed, minval=-1.0, maxval=1.0
        )
        return y, uv, z

    ds = tf.data.Dataset.counter(start, dtype=tf.int64)
    ds = ds.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------- model and steps


class GanTrainer:
    """Owns G, D, their Adam optimizers, the two training steps and the checkpoint.

    strategy: a `tf.distribute.Strategy` (default: the current one, i.e. one device).
    Batches given to `d_step`, `g_step` and `train_step` are global batches of
    `cfg.batch_size` examples, or per-replica values of a distributed dataset.
    """

    def __init__(
        self, cfg: GanConfig, strategy: tf.distribute.Strategy | None = None
    ) -> None:
        self.cfg = cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        if cfg.precision not in GAN_PRECISIONS:
            raise InvalidInputError(
                f"--precision {cfg.precision!r}: expected one of {GAN_PRECISIONS}"
            )
        previous = keras.config.dtype_policy()
        # layers keep the policy they were built with; the global one is put back
        keras.config.set_dtype_policy(cfg.precision)
        try:
            with self.strategy.scope():
                self.generator = create_model(
                    "cgan", pretrained=False, noise_dim=cfg.noise_dim
                )
                self.discriminator = build_discriminator()
        finally:
            keras.config.set_dtype_policy(previous)
        with self.strategy.scope():
            self.g_opt = keras.optimizers.Adam(
                cfg.lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2
            )
            self.d_opt = keras.optimizers.Adam(
                cfg.lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2
            )
            self.g_opt.build(self.generator.trainable_variables)
            self.d_opt.build(self.discriminator.trainable_variables)
        self.iteration = 0
        self.examples = 0  # position in the data stream (make_gan_dataset's start)

    def _mean(self, per_example: tf.Tensor) -> tf.Tensor:
        """Replica share of the global-batch mean; summed over replicas it is the
        mean."""
        return tf.nn.compute_average_loss(
            per_example, global_batch_size=self.cfg.batch_size
        )

    def _discriminate(self, y: tf.Tensor, uv: tf.Tensor) -> tf.Tensor:
        """D's logit, float32 (B,), whatever the compute precision."""
        x = tf.concat([y, tf.cast(uv, y.dtype)], axis=-1)
        return tf.cast(self.discriminator(x, training=True)[:, 0], tf.float32)

    def _d_replica_step(
        self, y: tf.Tensor, uv: tf.Tensor, z: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        # G runs in training mode as in its own step (batch statistics), but outside
        # the tape: this step only updates D.
        uv_fake = self.generator([y, z], training=True)
        with tf.GradientTape() as tape:
            # real and fake go through D separately, as in DCGAN and Cao's code, so
            # D's BatchNorm sees all-fake batches here and in G's step alike
            real = self._discriminate(y, uv)
            fake = self._discriminate(y, uv_fake)
            bce = tf.nn.sigmoid_cross_entropy_with_logits
            loss = self._mean(
                bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake)
            )
        variables = self.discriminator.trainable_variables
        grads = tape.gradient(loss, variables)
        self.d_opt.apply_gradients(zip(grads, variables, strict=True))
        return {
            "d_loss": loss,
            "d_acc_real": self._mean(tf.cast(real > 0.0, tf.float32)),
            "d_acc_fake": self._mean(tf.cast(fake < 0.0, tf.float32)),
        }

    def _g_replica_step(self, y: tf.Tensor, z: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            fake = self._discriminate(y, self.generator([y, z], training=True))
            # non-saturating: -log D(G) = BCE(1, logit)
            loss = self._mean(
                tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake), fake)
            )
        variables = self.generator.trainable_variables
        grads = tape.gradient(loss, variables)
        self.g_opt.apply_gradients(zip(grads, variables, strict=True))
        # paper eq. 4: log(1 - sigmoid(l)) = -softplus(l)
        return {"g_loss": loss, "g_loss_eq4": self._mean(-tf.nn.softplus(fake))}

    def _reduce(self, values: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        sum_ = tf.distribute.ReduceOp.SUM
        return {k: self.strategy.reduce(sum_, v, axis=None) for k, v in values.items()}

    @tf.function
    def d_step(self, batch: tuple[tf.Tensor, ...]) -> dict[str, tf.Tensor]:
        """One discriminator step (eq. 3) on a batch (y, uv, z) of `make_gan_dataset`.

        Returns scalars, computed before the update: d_loss (mean BCE, real = 1 plus
        fake = 0), d_acc_real (fraction with D > 0.5 on real), d_acc_fake (D < 0.5 on
        fake).
        """
        y, uv, z = batch
        return self._reduce(self.strategy.run(self._d_replica_step, args=(y, uv, z)))

    @tf.function
    def g_step(self, batch: tuple[tf.Tensor, ...]) -> dict[str, tf.Tensor]:
        """One generator step on a batch (y, uv, z) (uv unused).

        Returns scalars, computed before the update: g_loss (mean -log D(G(y, z))) and
        g_loss_eq4 (mean log(1 - D(G(y, z))), paper eq. 4).
        """
        y, _uv, z = batch
        return self._reduce(self.strategy.run(self._g_replica_step, args=(y, z)))

    def train_step(
        self, d_batch: tuple[tf.Tensor, ...], g_batch: tuple[tf.Tensor, ...]
    ) -> dict[str, float]:
        """One iteration: a D step on `d_batch`, then a G step on `g_batch`.

        Returns the five scalars of `d_step` and `g_step` as floats.
        """
        stats = {**self.d_step(d_batch), **self.g_step(g_batch)}
        self.iteration += 1
        self.examples += 2 * self.cfg.batch_size
        return {k: float(v) for k, v in stats.items()}

    def sample(self, y: FloatArray, z: FloatArray) -> FloatArray:
        """Generator output in inference mode (moving BatchNorm statistics).

        y: float32 (B, 64, 64, 1) in [-1, 1]; z: float32 (B, noise_dim) in [-1, 1].
        Returns uv float32 (B, 64, 64, 2) in [-1, 1].
        """
        return np.asarray(self.generator([y, z], training=False), dtype=np.float32)

    # ------------------------------------------------------------ checkpoints
    def _state_variables(self) -> dict[str, list]:
        return {
            "generator": self.generator.weights,
            "discriminator": self.discriminator.weights,
            "g_opt": self.g_opt.variables,
            "d_opt": self.d_opt.variables,
        }

    def save_checkpoint(self, path: Path) -> None:
        """Write G, D, both optimizers and the counters to one .npz, atomically."""
        arrays = {
            f"{group}/{i}": np.asarray(v.numpy())
            for group, variables in self._state_variables().items()
            for i, v in enumerate(variables)
        }
        arrays["iteration"] = np.array(self.iteration, np.int64)
        arrays["examples"] = np.array(self.examples, np.int64)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    def load_checkpoint(self, path: Path) -> bool:
        """Restore from `save_checkpoint`'s file; False when there is none."""
        if not path.exists():
            return False
        with np.load(path) as f:
            for group, variables in self._state_variables().items():
                stored = sum(1 for k in f.files if k.startswith(group + "/"))
                if stored != len(variables):
                    raise InvalidInputError(
                        f"{path} holds {stored} {group} variables, this model has "
                        f"{len(variables)}: was it made with another --noise-dim?"
                    )
                for i, v in enumerate(variables):
                    v.assign(f[f"{group}/{i}"])
            self.iteration = int(f["iteration"])
            self.examples = int(f["examples"])
        return True


# ---------------------------------------------------------------- outputs


def sample_grid(rgb: UInt8Array, uv_fake: FloatArray) -> UInt8Array:
    """Rows of grey | fake | real, each 64x64 tile shown at twice its size.

    rgb: uint8 (B, 64, 64, 3) real photos; uv_fake: float32 (B, 64, 64, 2) normalised
    generator output in [-1, 1]. Returns uint8 (B * 128, 384, 3).
    """
    real = rgb.astype(np.float32) / 255.0
    luma = rgb_to_yuv(real)[..., :1]
    grey = np.repeat(luma, 3, axis=-1)
    fake = yuv_to_rgb(np.concatenate([luma, _SPEC.norm_to_chroma(uv_fake)], axis=-1))
    rows = np.concatenate([grey, fake, real], axis=2)  # (B, 64, 192, 3)
    grid = np.concatenate(list(rows), axis=0)
    grid = np.repeat(np.repeat(grid, 2, axis=0), 2, axis=1)
    return np.round(np.clip(grid, 0.0, 1.0) * 255.0).astype(np.uint8)


def _write_png(array: UInt8Array, path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _write_log(rows: list[dict[str, float]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def _read_log(path: Path, up_to: int) -> list[dict[str, float]]:
    """Rows of an earlier run up to iteration `up_to` (later ones were not kept)."""
    if not path.exists():
        return []
    with path.open() as f:
        rows = [
            {k: int(v) if k == "iteration" else float(v) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]
    return [r for r in rows if r["iteration"] <= up_to]


def _plot_log(rows: list[dict[str, float]], out: Path) -> None:
    """losses.png and accuracy.png, coloured as the paper's figures 10 and 11."""
    blue, orange = {"color": "tab:blue"}, {"color": "tab:orange"}
    losses = [("g_loss", "G loss, -log D(G(y, z))", blue), ("d_loss", "D loss", orange)]
    plot_rows(rows, "iteration", losses, "loss", out / "losses.png", width=7)
    accuracies = [
        ("d_acc_real", "D accuracy on real", blue),
        ("d_acc_fake", "D accuracy on fake", orange),
    ]
    plot_rows(rows, "iteration", accuracies, "accuracy", out / "accuracy.png", width=7)


def _save_weights(model: keras.Model, path: Path) -> None:
    """save_weights through a temporary file and a rename, so readers never see
    half."""
    tmp = path.with_name(f".{path.name}")  # still ends in .weights.h5, as Keras needs
    model.save_weights(tmp)
    tmp.replace(path)


# ---------------------------------------------------------------- the loop


def train(cfg: GanConfig, strategy: tf.distribute.Strategy | None = None) -> Path:
    """Run (or resume) training up to `cfg.iterations`.

    strategy: the one `main` makes from `cfg.strategy` (None: the current strategy).
    Returns the path of the final generator weights.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if min(cfg.batch_size, cfg.log_every, cfg.checkpoint_every) < 1:
        raise InvalidInputError(
            "--batch-size, --log-every and --checkpoint-every must be at least 1"
        )
    if cfg.batch_size % strategy.num_replicas_in_sync:
        raise InvalidInputError(
            f"--batch-size {cfg.batch_size} is not a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    chief = is_chief(strategy)
    out = Path(cfg.out)
    checkpoints = out / "checkpoints"
    own = checkpoints if chief else checkpoints / f"worker-{worker_index(strategy)}"
    own.mkdir(parents=True, exist_ok=True)
    if chief:
        atomic_write_bytes(
            out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2).encode()
        )
    images = load_images(cfg.data)
    log.info("%d training photos", len(images))
    val_rgb = load_images(cfg.val, limit=SAMPLE_IMAGES)
    val_y = np.asarray(yuv_example(val_rgb.astype(np.float32) / 255.0)[0])
    # image i gets the noise Colorizer.colorize_batch(..., seed=cfg.seed) gives it
    val_z = np.stack(
        [
            np.random.default_rng([cfg.seed, i]).uniform(-1, 1, cfg.noise_dim)
            for i in range(len(val_rgb))
        ]
    ).astype(np.float32)

    trainer = GanTrainer(cfg, strategy)
    resume = own / "resume.npz"
    if trainer.load_checkpoint(resume):
        log.info("resumed at iteration %d", trainer.iteration)
    rows = _read_log(out / "log.csv", trainer.iteration)
    ds = make_gan_dataset(
        images, cfg.batch_size, cfg.noise_dim, cfg.seed, start=trainer.examples
    )
    batches = iter(trainer.strategy.experimental_distribute_dataset(ds))

    def checkpoint() -> None:
        if chief:
            name = f"{trainer.iteration:06d}"
            path = checkpoints / f"generator-{name}.weights.h5"
            _save_weights(trainer.generator, path)
            grid = sample_grid(val_rgb, trainer.sample(val_y, val_z))
            _write_png(grid, checkpoints / f"samples-{name}.png")
        trainer.save_checkpoint(resume)  # last: it names a complete checkpoint
        log.info("checkpoint at iteration %d", trainer.iteration)

    window: list[dict[str, float]] = []
    t0 = time.time()
    while trainer.iteration < cfg.iterations:
        stats = trainer.train_step(next(batches), next(batches))
        if not all(math.isfinite(v) for v in stats.values()):
            raise FloatingPointError(f"{stats} at iteration {trainer.iteration}")
        window.append(stats)
        if trainer.iteration % cfg.log_every == 0:
            row: dict[str, float] = {"iteration": trainer.iteration}
            row |= {k: float(np.mean([s[k] for s in window])) for k in window[0]}
            row["seconds"] = time.time() - t0
            rows.append(row)
            if chief:
                _write_log(rows, out / "log.csv")
                _plot_log(rows, out)
            log.info(
                "iteration %d d_loss %.4f g_loss %.4f acc real %.2f fake %.2f "
                "(%.2f it/s)",
                trainer.iteration,
                row["d_loss"],
                row["g_loss"],
                row["d_acc_real"],
                row["d_acc_fake"],
                len(window) / row["seconds"],
            )
            window, t0 = [], time.time()
        if trainer.iteration % cfg.checkpoint_every == 0:
            checkpoint()
    if trainer.iteration % cfg.checkpoint_every:
        checkpoint()  # a run stopped between checkpoints can still be resumed
    if chief:
        _save_weights(trainer.generator, out / "generator.weights.h5")
    return out / "generator.weights.h5"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.train_gan",
        description=__doc__.split("\n\n")[0],
    )
    add_dataclass_args(parser, GanConfig)
    return run_main(parser, argv, _run, log_format=TIMED_LOG_FORMAT)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(GanConfig, args)
    # a multi-worker strategy must exist before any other TensorFlow op
    strategy = make_strategy(cfg.strategy)
    keras.utils.set_random_seed(cfg.seed)
    print(train(cfg, strategy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

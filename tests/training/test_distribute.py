"""Training under tf.distribute: shards split between workers, two workers on
localhost against one, exact resume after SIGKILL, the shard command, model defaults.

The trainer runs in subprocesses (`python -c RUNNER`), as a user would start it, on a
tiny Lab model registered by this module (an "encoder" of one convolution, so both
optimizers are used, and optional dropout, so the layers' random state matters).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from keras import layers
from PIL import Image

from core.models import ModelSpec, get_spec, list_models, register_model
from core.quantize import NUM_BINS
from training.data import (
    PipelineConfig,
    count_images,
    iter_encoded,
    list_sources,
    make_dataset,
    worker_sources,
)
from training.init_weights import load_init_weights
from training.shard import ShardConfig, write_shards
from training.shard import main as shard_main
from training.train_config import TrainConfig, resolve_config
from training.trainer import Trainer

# training in subprocesses, several at once: minutes on a laptop
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TINY = "tiny-test-lab"
SIZE = 32
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
# per-step losses of 2 workers against 1: the gradient all-reduce sums in another
# order than one process's batch reduction, so float32 round-off differs slightly
# (measured: 1.2e-7 relative at most)
MULTIWORKER_RTOL = 1e-5

# Runs training.train's main in a fresh process, with the tiny model registered.
# argv[1] > 0: SIGKILL as the process is about to train that step; argv[2] > 1: a
# MirroredStrategy over that many logical CPUs (as on a machine with several GPUs).
RUNNER = textwrap.dedent(
    """
    import os, signal, sys
    import tensorflow as tf
    from tests.training.test_distribute import register_tiny_model
    register_tiny_model()
    from training import train
    kill_at, replicas = int(sys.argv[1]), int(sys.argv[2])
    if kill_at:
        step = train.Trainer.train_step
        def train_step(self, *args):
            if self.step + 1 == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return step(self, *args)
        train.Trainer.train_step = train_step
    if replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * replicas
        )
        devices = [f"/cpu:{i}" for i in range(replicas)]
        train.make_strategy = lambda kind: tf.distribute.MirroredStrategy(devices)
    raise SystemExit(train.main(sys.argv[3:]))
    """
)


def _build_tiny(spec: ModelSpec, *, pretrained: bool = False, dropout: float = 0.0):
    """(B, H, W, 1) L/100 -> (B, H/2, W/2, 313) logits; `pretrained` is ignored."""
    del pretrained
    enc_in = keras.Input((None, None, 1))
    h = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(enc_in)
    encoder = keras.Model(enc_in, h, name="encoder")
    l_norm = keras.Input((None, None, 1), name="l_norm")
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(encoder(l_norm))
    if dropout:
        x = layers.Dropout(dropout)(x)
    return keras.Model(l_norm, layers.Conv2D(NUM_BINS, 1, name="logits")(x))


def register_tiny_model() -> None:
    """Register the tiny test model once per process (the registry refuses twice)."""
    if TINY in list_models():
        return
    spec = ModelSpec(
        name=TINY,
        input_size=SIZE,
        output="ab_bins",
        output_stride=2,
        description="test-only: two convolutions",
        train_defaults={"lr": 3e-3, "batch_size": 4, "size": SIZE},
    )
    register_model(spec)(_build_tiny)


register_tiny_model()


def _photos() -> list[tuple[str, Image.Image]]:
    """Eight small, distinct colour photos: halves of four scikit-image samples."""
    out = []
    for name in PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)())
        image = image.resize((96, 64))
        out.append((f"{name}-left", image.crop((0, 0, 56, 64))))
        out.append((f"{name}-right", image.crop((40, 0, 96, 64))))
    return out


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """The eight photos as JPEG and PNG files, some in a subfolder."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "sub").mkdir()
    for i, (name, image) in enumerate(_photos()):
        where = folder / "sub" if i % 3 == 0 else folder
        image.save(where / f"{name}.{'png' if i % 2 else 'jpg'}", quality=92)
    return folder


@pytest.fixture(scope="module")
def shards(photo_folder, tmp_path_factory) -> Path:
    """Four shards of two photos each, made by the shard command."""
    out = tmp_path_factory.mktemp("shards")
    report = write_shards(ShardConfig(src=str(photo_folder), out=str(out), per_shard=2))
    assert len(report.shards) == 4 and not report.skipped
    return out


def _env(tf_config: dict | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _train_args(shards: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model",
        TINY,
        "--data",
        str(shards),
        "--val",
        str(shards),
        "--out",
        str(out),
        "--warmup-steps",
        "2",
        *extra,
    ]


def _run(
    args: list[str], kill_at: int = 0, replicas: int = 1, **popen
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(kill_at), str(replicas), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


# a safety net against a hung process, far above a run's time on a loaded machine
# (the processes of `_Runs` start at once and share the cores)
SUBPROCESS_TIMEOUT_S = 1200


def _finish(proc: subprocess.Popen, expect: int = 0) -> str:
    try:
        stdout, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == expect, stderr[-3000:]
    return stdout


def _steps(out: Path) -> np.ndarray:
    """(step, loss) rows of a run's steps.csv."""
    with (out / "steps.csv").open() as f:
        header = f.readline().strip().split(",")
        rows = [line.strip().split(",") for line in f if line.strip()]
    step, loss = header.index("step"), header.index("loss")
    return np.array([(float(r[step]), float(r[loss])) for r in rows])


def _checkpoint_model(folder: Path) -> dict[str, np.ndarray]:
    """The model's variables in the latest checkpoint of `folder`, by name."""
    reader = tf.train.load_checkpoint(str(folder))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith(
            (
                "model/",
                "ema/",
                "critic/",
                "dec_opt/_trainable",
                "enc_opt/_trainable",
                "critic_opt/_trainable",
            )
        )
    }


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# The training runs start together (each process spends seconds importing TensorFlow):
# two workers, one process with two mirrored replicas and one plain process for the
# multi-worker tests, an unbroken run and one killed with SIGKILL for the resume test.
# --ema: the weights' moving average is updated on every replica, checkpointed and
# restored, and its validation loss is in metrics.csv; --adversarial: the critic and
# its optimizer too
MULTIWORKER_ARGS = ("--epochs", "2", "--steps-per-epoch", "3", "--no-shuffle")
MULTIWORKER_ARGS += ("--ema", "0.5", "--adversarial", "0.1")
RESUME_ARGS = ("--epochs", "2", "--steps-per-epoch", "4", "--checkpoint-every", "3")
RESUME_ARGS += ("--model-options", "dropout=0.3", "--ema", "0.5")
RESUME_ARGS += ("--adversarial", "0.1")
KILL_AT = 6  # checkpoints at steps 3 and 4 (epoch end); killed before step 6


class _Runs:
    """Training processes started at once; `wait` collects one (once)."""

    def __init__(self, shards: Path, root: Path) -> None:
        self.root, self.shards = root, shards
        ports = _free_ports(2)
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        two = _train_args(shards, root / "two", *MULTIWORKER_ARGS)
        self.procs = {
            f"worker{i}": _run(
                two,
                env=_env({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            )
            for i in range(2)
        }
        self.procs["one"] = _run(
            _train_args(shards, root / "one", *MULTIWORKER_ARGS), env=_env()
        )
        self.procs["mirrored"] = _run(
            _train_args(shards, root / "mirrored", *MULTIWORKER_ARGS),
            replicas=2,
            env=_env(),
        )
        self.procs["unbroken"] = _run(self.resume_args(root / "unbroken"), env=_env())
        self.procs["killed"] = _run(
            self.resume_args(root / "killed"), KILL_AT, env=_env()
        )
        self.done: set[str] = set()

    def resume_args(self, out: Path) -> list[str]:
        return _train_args(self.shards, out, *RESUME_ARGS)

    def wait(self, name: str, expect: int = 0) -> None:
        if name not in self.done:
            _finish(self.procs[name], expect)
            self.done.add(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture(scope="module")
def runs(shards, tmp_path_factory):
    started = _Runs(shards, tmp_path_factory.mktemp("runs"))
    yield started
    started.stop()


# ------------------------------------------------------------ fine-tuning


def _weights_file(path: Path) -> list[np.ndarray]:
    model = _build_tiny(get_spec(TINY))
    model.load_weights(path)
    return [w.numpy() for w in model.weights]


def test_init_weights_start_a_new_run_from_trained_weights(runs, tmp_path) -> None:
    runs.wait("one")
    trained = runs.root / "one" / "best.weights.h5"
    # a learning rate of 0: the run's weights stay those it started from
    out = tmp_path / "tuned"
    args = ["--init-weights", str(trained), "--lr", "0", "--size", "24"]
    _finish(_run(_train_args(runs.shards, out, *args, *MULTIWORKER_ARGS), env=_env()))
    for got, want in zip(
        _weights_file(out / "best.weights.h5"), _weights_file(trained), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    assert json.loads((out / "config.json").read_text())["size"] == 24
    # a new run: its own steps from 1, not a resume of the run it started from
    np.testing.assert_array_equal(_steps(out)[:, 0], np.arange(1, 7))


def test_init_weights_of_another_model_fail_in_one_line(tmp_path) -> None:
    other = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    other.save_weights(tmp_path / "other.weights.h5")
    model = _build_tiny(get_spec(TINY))
    with pytest.raises(ValueError, match="does not fit model") as err:
        load_init_weights(model, str(tmp_path / "other.weights.h5"))
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_init_weights(model, str(tmp_path / "missing.weights.h5"))


# --------------------------------------------------------- two workers vs one


def test_multiworker_two_workers_match_one(runs) -> None:
    """2 workers on localhost, a batch of 2 each, against 1 process with batch 4.

    Each shard holds one worker's batch and nothing is shuffled, so global batch k
    is the same photos (with the same crops) in both runs.
    """
    for name in ("worker0", "worker1", "one"):
        runs.wait(name)
    two, one = runs.root / "two", runs.root / "one"
    config = json.loads((two / "config.json").read_text())
    # the model's train_defaults, recorded as used
    assert (config["lr"], config["batch_size"], config["size"]) == (3e-3, 4, SIZE)
    # the workers end with identical weights and optimizer state
    chief = _checkpoint_model(two / "checkpoint")
    other = _checkpoint_model(two / "checkpoint" / "worker-1")
    assert chief.keys() == other.keys() and len(chief) >= 4
    for name, value in chief.items():
        np.testing.assert_array_equal(other[name], value, err_msg=name)
    # the same training as one process with the same global batch
    steps_two, steps_one = _steps(two), _steps(one)
    assert steps_two[:, 0].tolist() == list(range(1, 7))
    np.testing.assert_allclose(steps_two, steps_one, rtol=MULTIWORKER_RTOL)
    for name, value in _checkpoint_model(one / "checkpoint").items():
        np.testing.assert_allclose(chief[name], value, rtol=1e-4, atol=1e-6)
    # the ab prior: each worker counted its own shards, the counts were summed
    with np.load(two / "prior.npz") as a, np.load(one / "prior.npz") as b:
        np.testing.assert_array_equal(a["counts"], b["counts"])
    assert not (two / "checkpoint" / "worker-1" / "prior.npz").exists()
    assert (two / "best.weights.h5").exists() and (two / "metrics.csv").exists()


def test_multiworker_mirrored_replicas_match_one(runs) -> None:
    """Two mirrored replicas train like one process (the multi-GPU path).

    Two logical CPUs stand in for GPUs; the worker's batch of 4 is split in two.
    """
    runs.wait("mirrored")
    runs.wait("one")
    mirrored, one = _steps(runs.root / "mirrored"), _steps(runs.root / "one")
    assert mirrored[:, 0].tolist() == list(range(1, 7))
    np.testing.assert_allclose(mirrored, one, rtol=MULTIWORKER_RTOL)


# ------------------------------------------------------------------ resume


def test_resume_after_sigkill_gives_the_same_losses(runs) -> None:
    """Killed mid-epoch after a checkpoint, restarted: the losses of an unbroken run.

    Shuffling, random crops and dropout are on, so the data position, the model's
    random state and the optimizer must all come back exactly. A half-written
    checkpoint (files written, index not updated) is left behind and ignored.
    """
    runs.wait("killed", expect=-signal.SIGKILL)
    out = runs.root / "killed"
    assert _steps(out)[:, 0].tolist() == [1, 2, 3, 4]  # step 5 was lost
    assert len((out / "metrics.csv").read_text().splitlines()) == 2  # epoch 1 only
    folder = out / "checkpoint"
    for suffix in (".index", ".data-00000-of-00001"):
        (folder / f"ckpt-5{suffix}").write_bytes(b"partial")
    assert tf.train.get_checkpoint_state(str(folder)).model_checkpoint_path.endswith(
        "ckpt-4"
    )
    _finish(_run(runs.resume_args(out), env=_env()))
    runs.wait("unbroken")

    unbroken = runs.root / "unbroken"
    resumed, reference = _steps(out), _steps(unbroken)
    assert resumed[:, 0].tolist() == list(range(1, 9))
    np.testing.assert_array_equal(resumed, reference)  # exact, not approximately
    for a, b in zip(
        (out / "metrics.csv").read_text().splitlines(),
        (unbroken / "metrics.csv").read_text().splitlines(),
        strict=True,
    ):
        # epoch, step, train and val loss agree; only the seconds differ
        assert a.split(",")[:4] == b.split(",")[:4]
    want = _checkpoint_model(unbroken / "checkpoint")
    for name, value in _checkpoint_model(folder).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


# ------------------------------------------------------------------- the shards


def test_multiworker_shards_are_split_between_workers(shards) -> None:
    """Worker i of n reads sources i, i+n, ...: disjoint, together all photos."""
    sources = list_sources(str(shards))
    assert len(sources) == 4 and count_images(sources) == 8
    cfg = PipelineConfig(size=SIZE, batch_size=4, shuffle=False, augment=False)
    whole = np.concatenate(
        [x for x, _ in make_dataset(str(shards), cfg, training=False)]
    )
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(2, worker, 2)
        assert worker_sources(sources, context) == [worker, worker + 2]
        ds = make_dataset(
            str(shards), cfg, training=True, repeat=False, input_context=context
        )
        batches = [x.numpy() for x, _ in ds]
        assert [len(b) for b in batches] == [2, 2]  # its share: 4 / 2 workers
        mine = np.concatenate(batches)
        # its own shards in order: photos 2w, 2w+1 (shard w), 2w+4, 2w+5 (shard w+2)
        own = [2 * worker, 2 * worker + 1, 2 * worker + 4, 2 * worker + 5]
        np.testing.assert_array_equal(mine, whole[own])
        seen.append(mine)
    np.testing.assert_array_equal(
        np.sort(np.concatenate(seen), axis=0), np.sort(whole, axis=0)
    )
    with pytest.raises(ValueError, match="cannot be split between 5 workers"):
        worker_sources(sources, tf.distribute.InputContext(5, 0, 5))


def test_multiworker_augmentation_does_not_depend_on_the_worker(shards) -> None:
    """A photo's random crop depends on the seed, pass and photo, not the reader."""
    cfg = PipelineConfig(size=SIZE, batch_size=2, shuffle=False)
    alone = [
        x.numpy() for x, _ in make_dataset(str(shards), cfg, training=True).take(4)
    ]
    context = tf.distribute.InputContext(2, 1, 2)
    second = make_dataset(
        str(shards), replace(cfg, batch_size=4), training=True, input_context=context
    )
    got = [x.numpy() for x, _ in second.take(2)]
    # worker 1 of 2 reads shards 1 and 3: the second and fourth batch of one reader
    np.testing.assert_array_equal(got[0], alone[1])
    np.testing.assert_array_equal(got[1], alone[3])


def test_shard_command_round_trips_real_photos(photo_folder, tmp_path, capsys) -> None:
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    try:
        code = shard_main([str(photo_folder), str(tmp_path / "a"), "--per-shard", "3"])
    finally:
        (photo_folder / "broken.jpg").unlink()
    captured = capsys.readouterr()
    assert code == 1  # a photo was skipped
    skipped = [line for line in captured.err.splitlines() if "broken.jpg" in line]
    assert len(skipped) == 1 and skipped[0].startswith("skipped ")
    assert captured.out.splitlines()[-1] == "8 photos in 3 shards, 1 skipped"
    shard_paths = sorted((tmp_path / "a").iterdir())
    assert [p.name for p in shard_paths] == [f"shard-00000{i}.tar" for i in range(3)]
    # the original bytes of every photo, in sorted path order, with its source
    originals = sorted(
        (p for p in photo_folder.rglob("*") if p.suffix in (".jpg", ".png")),
    )
    packed = list(iter_encoded(shard_paths))
    assert [blob for _, blob in packed] == [p.read_bytes() for p in originals]
    with tarfile.open(shard_paths[0]) as tar:
        names = tar.getnames()
        meta = json.load(tar.extractfile(names[1]))
    assert names[0].startswith("0000000-") and names[1].endswith(".json")
    assert "." not in names[0].rpartition(".")[0]  # WebDataset key: no dots
    assert meta == {"source": originals[0].relative_to(photo_folder).as_posix()}
    # deterministic: the same folder gives the same bytes
    write_shards(
        ShardConfig(src=str(photo_folder), out=str(tmp_path / "b"), per_shard=3)
    )
    for p in shard_paths:
        assert (tmp_path / "b" / p.name).read_bytes() == p.read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]
    # existing shards are kept unless --overwrite
    assert shard_main([str(photo_folder), str(tmp_path / "a")]) == 2
    assert shard_main([str(photo_folder), str(tmp_path / "a"), "--overwrite"]) == 0
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["shard-000000.tar"]


# ------------------------------------------------------------ model defaults


def test_train_defaults_come_from_the_model_spec() -> None:
    cfg = resolve_config(TrainConfig(model=TINY))
    assert (cfg.lr, cfg.batch_size, cfg.size) == (3e-3, 4, SIZE)
    given = resolve_config(TrainConfig(model=TINY, lr=1e-4, batch_size=8))
    assert (given.lr, given.batch_size, given.size) == (1e-4, 8, SIZE)
    # a model without train_defaults keeps the trainer's own
    assert not get_spec("default-v1").train_defaults
    plain = resolve_config(TrainConfig(model="default-v1"))
    assert (plain.lr, plain.batch_size, plain.size) == (5e-4, 16, 160)
    with pytest.raises(ValueError, match="precision"):
        resolve_config(TrainConfig(model=TINY, precision="float16"))


# ------------------------------------------------------ in-process trainer checks


def _tiny_trainer(tmp_path: Path, **options) -> Trainer:
    cfg = TrainConfig(model=TINY, out=str(tmp_path), warmup_steps=1, **options)
    return Trainer(cfg, total_steps=10, class_weights=np.ones(NUM_BINS))


def _batch(rng: np.random.Generator) -> tuple[tf.Tensor, tf.Tensor]:
    lightness = rng.uniform(0, 100, (4, SIZE, SIZE, 1)).astype(np.float32)
    ab = rng.uniform(-60, 60, (4, SIZE // 2, SIZE // 2, 2)).astype(np.float32)
    return tf.constant(lightness), tf.constant(ab)


def test_encoder_lr_factor_zero_freezes_the_encoder(tmp_path, rng) -> None:
    assert resolve_config(TrainConfig(model=TINY)).encoder_lr_factor == 0.1
    with pytest.raises(ValueError, match="encoder-lr-factor"):
        resolve_config(TrainConfig(model=TINY, encoder_lr_factor=-1.0))
    frozen = _tiny_trainer(tmp_path / "f", encoder_lr_factor=0.0)
    assert frozen.enc_vars == [] and frozen.enc_opt is None
    encoder = frozen.model.get_layer("encoder")
    before = [v.numpy().copy() for v in encoder.weights]
    head = frozen.model.get_layer("logits").kernel.numpy().copy()
    for _ in range(2):
        loss = float(frozen.train_step(*_batch(rng)))
    assert np.isfinite(loss)
    for v, b in zip(encoder.weights, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), b)
    assert not np.allclose(frozen.model.get_layer("logits").kernel.numpy(), head)
    # the shipped design trains both, the encoder with its own optimizer
    trained = _tiny_trainer(tmp_path / "t")
    assert trained.enc_vars and trained.enc_opt is not None


def test_resume_refuses_another_number_of_workers(tmp_path, rng) -> None:
    trainer = _tiny_trainer(tmp_path)
    trainer.train_step(*_batch(rng))
    trainer.step = 1
    trainer.counters["workers"].assign(2)  # as if written by a 2-worker run
    trainer.save_checkpoint(tmp_path / "checkpoint")
    with pytest.raises(ValueError, match="written by 2 workers, this run has 1"):
        _tiny_trainer(tmp_path).load_checkpoint(tmp_path / "checkpoint")


def test_mixed_float16_skips_steps_with_non_finite_gradients(tmp_path, rng) -> None:
    trainer = _tiny_trainer(tmp_path, precision="mixed_float16")
    assert trainer.model.get_layer("logits").compute_dtype == "float16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is back
    scale, good = trainer.counters["loss_scale"], trainer.counters["good_steps"]
    before = [v.numpy() for v in trainer.model.trainable_weights]
    scale.assign(3e38)  # the scaled loss overflows: every gradient is inf or nan
    loss = trainer.train_step(*_batch(rng))
    assert loss.dtype == tf.float32 and np.isfinite(float(loss))
    for v, old in zip(trainer.model.trainable_weights, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), old)  # the step was skipped
    assert float(scale.numpy()) == pytest.approx(1.5e38) and int(good.numpy()) == 0
    scale.assign(8.0)
    trainer.train_step(*_batch(rng))
    assert int(good.numpy()) == 1 and int(trainer.dec_opt.iterations.numpy()) == 1
    changed = [
        not np.array_equal(v.numpy(), old)
        for v, old in zip(trainer.model.trainable_weights, before, strict=True)
    ]
    assert all(changed)


def test_mixed_bfloat16_computes_in_bfloat16_and_the_loss_in_float32(
    tmp_path, rng
) -> None:
    trainer = _tiny_trainer(tmp_path, precision="mixed_bfloat16")
    lightness, ab = _batch(rng)
    assert trainer.model(lightness / 100.0).dtype == tf.bfloat16
    assert all(v.dtype == "float32" for v in trainer.model.weights)
    losses = [float(trainer.train_step(lightness, ab)) for _ in range(3)]
    reference = _tiny_trainer(tmp_path / "f32")
    reference.model.set_weights(trainer.model.get_weights())
    # the same network in bfloat16 and float32 agrees to bfloat16's precision
    assert float(trainer.eval_step(lightness, ab)) == pytest.approx(
        float(reference.eval_step(lightness, ab)), rel=2e-2
    )
    assert losses[-1] < losses[0]

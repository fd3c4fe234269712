"""The cGAN trainer: YUV data, the D and G steps, checkpoints, logs and resuming."""

import argparse
import csv
import io
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.color
import skimage.data
import tensorflow as tf
from PIL import Image

from core.colorspace import U_MAX, V_MAX
from core.config import add_dataclass_args
from core.models import create_model
from training.train_gan import (
    GanConfig,
    GanTrainer,
    load_images,
    main,
    make_gan_dataset,
    sample_grid,
    yuv_example,
)

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _photo_crops() -> np.ndarray:
    """8 real 64x64 photos: top-left and bottom-right squares of scikit-image photos.

    Returns uint8 (8, 64, 64, 3).
    """
    crops = []
    for name in PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)())
        side = min(image.size) * 4 // 5
        w, h = image.size
        for box in ((0, 0, side, side), (w - side, h - side, w, h)):
            crops.append(np.asarray(image.crop(box).resize((64, 64), Image.LANCZOS)))
    return np.stack(crops)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return _photo_crops()


def _batch(rgb: np.ndarray, seed: int = 0) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(y, uv, z) of photos, with z ~ U(-1, 1) from `seed`."""
    y, uv = yuv_example(tf.constant(rgb / 255.0, tf.float32))
    z = np.random.default_rng(seed).uniform(-1, 1, (len(rgb), 100))
    return y, uv, tf.constant(z, tf.float32)


def _shard(path: Path, rgb: np.ndarray) -> Path:
    """A tiny64-style shard: KEY.jpg (64x64, quality 95) and KEY.json per photo."""
    with tarfile.open(path, "w") as tar:
        for i, image in enumerate(rgb):
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="JPEG", quality=95)
            for suffix, data in ((".jpg", buf.getvalue()), (".json", b"{}")):
                info = tarfile.TarInfo(f"{i:06d}{suffix}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_config_defaults_are_the_papers() -> None:
    cfg = GanConfig()
    assert (cfg.lr, cfg.batch_size, cfg.noise_dim) == (5e-5, 64, 100)  # Table 1
    assert (cfg.beta_1, cfg.beta_2) == (0.5, 0.999)  # Cao's code
    assert (cfg.iterations, cfg.log_every, cfg.checkpoint_every) == (1000, 10, 100)
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, GanConfig)
    args = parser.parse_args(["--iterations", "30", "--checkpoint-every", "5"])
    assert args.iterations == 30 and args.checkpoint_every == 5
    assert tuple(args.data) == ("../shared/data/tiny64",)


def test_yuv_example_is_normalised_scikit_yuv(crops) -> None:
    rgb = crops / 255.0
    y, uv = (np.asarray(t) for t in yuv_example(tf.constant(rgb, tf.float32)))
    reference = skimage.color.rgb2yuv(rgb)
    np.testing.assert_allclose(y[..., 0], 2.0 * reference[..., 0] - 1.0, atol=1e-5)
    np.testing.assert_allclose(uv[..., 0], reference[..., 1] / U_MAX, atol=1e-5)
    np.testing.assert_allclose(uv[..., 1], reference[..., 2] / V_MAX, atol=1e-5)
    # every sRGB colour maps into [-1, 1]; blue, yellow, red and cyan reach the edges
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 9)] * 3), -1).reshape(1, 27, 27, 3)
    y, uv = (np.asarray(t) for t in yuv_example(tf.constant(grid, tf.float32)))
    assert y.min() >= -1.0 - 1e-6 and y.max() <= 1.0 + 1e-6
    assert np.abs(uv).max() <= 1.0 + 1e-5
    np.testing.assert_allclose(np.abs(uv).max(axis=(0, 1, 2)), 1.0, atol=1e-5)


def test_load_images_crops_photos_to_64(tmp_path, crops) -> None:
    Image.fromarray(crops[0]).save(tmp_path / "a.png")
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "b.png")  # 451 x 300
    images = load_images([str(tmp_path)])
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], crops[0])  # 64x64: kept as it is
    # the centre square of chelsea, not squashed: close to PIL's own centre crop
    cat = Image.fromarray(skimage.data.chelsea()).crop((75, 0, 375, 300))
    expected = np.asarray(cat.resize((64, 64), Image.BILINEAR), np.float32)
    assert np.abs(images[1] - expected).mean() < 6.0
    assert load_images([str(tmp_path)], limit=1).shape == (1, 64, 64, 3)


def test_gan_dataset_shuffles_every_epoch_and_resumes_exactly(crops) -> None:
    images = crops[:6]
    ds = make_gan_dataset(images, batch_size=3, noise_dim=100, seed=7)
    batches = list(ds.take(4))  # 12 examples: two epochs of 6 photos
    y_all = np.concatenate([np.asarray(b[0]) for b in batches])
    z_all = np.concatenate([np.asarray(b[2]) for b in batches])
    assert y_all.shape == (12, 64, 64, 1) and batches[0][1].shape == (3, 64, 64, 2)
    assert z_all.shape == (12, 100) and np.abs(z_all).max() <= 1.0
    assert len({tuple(z[:4]) for z in z_all}) == 12  # fresh noise for every example
    y_ref = np.asarray(_batch(images)[0])
    which = [int(np.argmin(np.abs(y_ref - y).mean(axis=(1, 2, 3)))) for y in y_all]
    assert sorted(which[:6]) == sorted(which[6:]) == list(range(6))
    assert which[:6] != which[6:]  # each epoch has its own order
    # a stream started at example 6 is the rest of the stream started at 0
    later = list(make_gan_dataset(images, 3, 100, seed=7, start=6).take(2))
    for a, b in zip(later, batches[2:], strict=True):
        for ta, tb in zip(a, b, strict=True):
            np.testing.assert_array_equal(np.asarray(ta), np.asarray(tb))


def test_sample_grid_shows_grey_fake_real(crops) -> None:
    uv = np.asarray(_batch(crops[:3])[1])
    grid = sample_grid(crops[:3], uv)
    assert grid.shape == (3 * 128, 384, 3) and grid.dtype == np.uint8
    tiles = grid[::2, ::2].reshape(3, 64, 3, 64, 3).transpose(0, 2, 1, 3, 4)
    grey, fake, real = tiles[:, 0], tiles[:, 1], tiles[:, 2]
    np.testing.assert_array_equal(real, crops[:3])
    assert np.all(grey[..., 0] == grey[..., 1]) and np.all(grey[..., 1] == grey[..., 2])
    # with the true uv as "fake", the fake column is the photo again
    assert np.abs(fake.astype(int) - crops[:3]).max() <= 2


def _trainer(batch_size: int) -> GanTrainer:
    keras.utils.set_random_seed(0)
    return GanTrainer(GanConfig(batch_size=batch_size))


def _values(variables: list) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


@pytest.mark.slow
def test_discriminator_step_lowers_its_loss_and_leaves_g_alone(crops) -> None:
    trainer = _trainer(4)
    batch = _batch(crops[:4])
    g_before = _values(trainer.generator.trainable_variables)
    first = {k: float(v) for k, v in trainer.d_step(batch).items()}
    second = {k: float(v) for k, v in trainer.d_step(batch).items()}
    assert 0.5 < first["d_loss"] < 3.0  # near 2 log 2 = 1.39 for an untrained D
    assert second["d_loss"] < first["d_loss"] - 0.01
    for key in ("d_acc_real", "d_acc_fake"):
        assert first[key] in (0.0, 0.25, 0.5, 0.75, 1.0)
    g_after = _values(trainer.generator.trainable_variables)
    for a, b in zip(g_before, g_after, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_generator_step_lowers_its_loss_and_logs_eq4(crops) -> None:
    trainer = _trainer(4)
    y, uv, z = _batch(crops[4:], seed=1)
    fake = trainer.generator([y, z], training=True)
    logits = np.asarray(trainer.discriminator(tf.concat([y, fake], -1), training=True))[
        :, 0
    ]
    d_before = _values(trainer.discriminator.trainable_variables)
    first = {k: float(v) for k, v in trainer.g_step((y, uv, z)).items()}
    sigmoid = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    assert first["g_loss"] == pytest.approx(-np.mean(np.log(sigmoid)), rel=1e-4)
    assert first["g_loss_eq4"] == pytest.approx(np.mean(np.log(1 - sigmoid)), rel=1e-4)
    second = trainer.g_step((y, uv, z))
    assert float(second["g_loss"]) < first["g_loss"] - 0.01
    d_after = _values(trainer.discriminator.trainable_variables)
    for a, b in zip(d_before, d_after, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_checkpoint_resumes_the_same_iteration(tmp_path, crops) -> None:
    """Save after one iteration, restore into a new trainer: the same second one."""
    cfg = GanConfig(batch_size=2)
    ds = make_gan_dataset(crops, cfg.batch_size, cfg.noise_dim, seed=0)
    keras.utils.set_random_seed(0)
    trainer = GanTrainer(cfg)
    batches = iter(ds)
    trainer.train_step(next(batches), next(batches))
    trainer.save_checkpoint(tmp_path / "resume.npz")
    expected = trainer.train_step(next(batches), next(batches))

    keras.utils.set_random_seed(1)  # other initial weights, all overwritten
    resumed = GanTrainer(cfg)
    assert resumed.load_checkpoint(tmp_path / "resume.npz")
    assert (resumed.iteration, resumed.examples) == (1, 4)
    batches = iter(make_gan_dataset(crops, 2, 100, seed=0, start=resumed.examples))
    got = resumed.train_step(next(batches), next(batches))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert int(resumed.d_opt.iterations.numpy()) == 2


def _read_log(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_training_logs_plots_checkpoints_and_resumes(tmp_path, crops) -> None:
    shard = _shard(tmp_path / "tiny-000000.tar", crops)
    out = tmp_path / "run"
    argv = ["--data", str(shard), "--val", str(shard), "--out", str(out)]
    argv += ["--batch-size", "4", "--checkpoint-every", "10", "--strategy", "default"]
    assert main([*argv, "--iterations", "20"]) == 0

    rows = _read_log(out / "log.csv")
    assert [r["iteration"] for r in rows] == [10, 20]
    assert list(rows[0]) == [
        "iteration",
        "d_loss",
        "g_loss",
        "g_loss_eq4",
        "d_acc_real",
        "d_acc_fake",
        "seconds",
    ]
    for row in rows:
        assert 0.0 < row["d_loss"] < 5.0 and 0.0 < row["g_loss"] < 10.0
        assert row["g_loss_eq4"] < 0.0 and row["seconds"] > 0.0
        assert 0.0 <= row["d_acc_real"] <= 1.0 and 0.0 <= row["d_acc_fake"] <= 1.0
    for name in ("losses.png", "accuracy.png"):
        assert Image.open(out / name).size == (700, 400)
    ckpt = out / "checkpoints"
    for it in (10, 20):
        assert (ckpt / f"generator-{it:06d}.weights.h5").exists()
        assert Image.open(ckpt / f"samples-{it:06d}.png").size == (384, 8 * 128)
    with np.load(ckpt / "resume.npz") as f:
        assert int(f["iteration"]) == 20

    # generator.weights.h5 is the generator of the last iteration
    final, at_20 = (create_model("cgan", pretrained=False) for _ in range(2))
    final.load_weights(out / "generator.weights.h5")
    at_20.load_weights(ckpt / "generator-000020.weights.h5")
    for a, b in zip(final.weights, at_20.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # the same command with more iterations goes on from 20 to 30
    assert main([*argv, "--iterations", "30"]) == 0
    resumed = _read_log(out / "log.csv")
    assert [r["iteration"] for r in resumed] == [10, 20, 30]
    assert resumed[:2] == rows
    assert (ckpt / "generator-000030.weights.h5").exists()
    with np.load(ckpt / "resume.npz") as f:
        assert int(f["iteration"]) == 30 and int(f["examples"]) == 30 * 2 * 4


def test_main_reports_a_missing_data_folder_in_one_line(tmp_path, capsys) -> None:
    from training.train_gan import main

    missing = tmp_path / "nothing"
    assert main(["--data", str(missing), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: no such data path: {missing}"
    ]

"""The training data pipeline, losses, one optimisation step, checkpoints and prior."""

import io
import json
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from core.colorspace import rgb_to_lab, rgb_to_lab_tf
from core.models import create_model
from core.quantize import NUM_BINS, bin_centers, nearest_bin, soft_encode_tf
from training.data import (
    PipelineConfig,
    count_images,
    iter_encoded,
    lab_example,
    list_sources,
    make_dataset,
)
from training.init_weights import load_init_encoder, model_and_file
from training.losses import classification_loss
from training.prior import compute_prior, load_prior, save_prior
from training.train_config import TrainConfig
from training.trainer import Trainer

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
SIZE = 64
CFG = PipelineConfig(size=SIZE, output_stride=2, batch_size=2, shuffle_buffer=4)


def _jpeg(name: str) -> bytes:
    image = Image.fromarray(getattr(skimage.data, name)())
    image = image.resize((image.width // 2, image.height // 2))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """Four colour JPEGs from scikit-image, two of them in a subfolder."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "sub").mkdir()
    for i, name in enumerate(PHOTOS):
        (folder / ("sub" if i % 2 else "") / f"{name}.jpg").write_bytes(_jpeg(name))
    (folder / "README.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    """A WebDataset-style shard: KEY.jpg and KEY.json for each photo."""
    path = tmp_path_factory.mktemp("shards") / "train-000000.tar"
    with tarfile.open(path, "w") as tar:
        for i, name in enumerate(PHOTOS):
            key = f"{i:06d}"
            meta = json.dumps({"source": f"skimage.data.{name}"}).encode()
            for suffix, data in ((".jpg", _jpeg(name)), (".json", meta)):
                info = tarfile.TarInfo(key + suffix)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _check_batch(lightness: np.ndarray, ab: np.ndarray, batch: int) -> None:
    assert lightness.shape == (batch, SIZE, SIZE, 1) and lightness.dtype == np.float32
    assert ab.shape == (batch, SIZE // 2, SIZE // 2, 2) and ab.dtype == np.float32
    assert lightness.min() >= -1e-3 and lightness.max() <= 100.0 + 1e-3
    # the sRGB range of a and b (docs/design.md 1.3)
    assert ab[..., 0].min() >= -87 and ab[..., 0].max() <= 99
    assert ab[..., 1].min() >= -108 and ab[..., 1].max() <= 95
    assert lightness.std() > 5 and np.abs(ab).mean() > 1  # real photos, not blank


def test_list_sources_and_iter_encoded(photo_dir, shard) -> None:
    sources = list_sources([str(photo_dir), str(shard)])
    assert [p.name for p in sources] == [
        "astronaut.jpg",
        "chelsea.jpg",
        "coffee.jpg",
        "rocket.jpg",
        shard.name,
    ]
    assert count_images(sources) == 8
    items = list(iter_encoded(sources))
    assert [k for k, _ in items] == [
        "astronaut",
        "chelsea",
        "coffee",
        "rocket",
        "000000",
        "000001",
        "000002",
        "000003",
    ]
    assert items[4][1] == _jpeg("astronaut")  # .json members are skipped
    with pytest.raises(FileNotFoundError):
        list_sources(str(photo_dir / "missing"))


def test_count_images_agrees_with_iter_encoded(tmp_path) -> None:
    path = tmp_path / "multi.tar"
    with tarfile.open(path, "w") as tar:
        for name in ("a.jpg", "a.seg.png"):
            data = _jpeg("coffee")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert count_images([path]) == len(list(iter_encoded([path])))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["folder", "shard"])
def test_training_batches(photo_dir, shard, source) -> None:
    path = str(photo_dir if source == "folder" else shard)
    ds = make_dataset(path, CFG, training=True, seed=3)
    batches = list(ds.take(3).as_numpy_iterator())  # repeats past the 4 photos
    assert len(batches) == 3
    for lightness, ab in batches:
        _check_batch(lightness, ab, 2)
    again = next(make_dataset(path, CFG, training=True, seed=3).as_numpy_iterator())
    np.testing.assert_array_equal(again[0], batches[0][0])  # seeded: reproducible


@pytest.mark.slow
def test_validation_batches_are_centre_crops_in_order(photo_dir, shard) -> None:
    from_folder = list(make_dataset(str(photo_dir), CFG, training=False))
    from_shard = list(make_dataset(str(shard), CFG, training=False))
    assert [len(x) for x, _ in from_folder] == [2, 2]
    assert [len(x) for x, _ in from_shard] == [2, 2]
    for lightness, ab in from_folder + from_shard:
        _check_batch(lightness.numpy(), ab.numpy(), 2)
    # the shard holds the photos in PHOTOS order, the folder sorts them differently
    folder_order = ["astronaut", "chelsea", "coffee", "rocket"]  # sorted paths
    shard_l = np.concatenate([x for x, _ in from_shard])
    folder_l = np.concatenate([x for x, _ in from_folder])
    for i, name in enumerate(folder_order):
        np.testing.assert_array_equal(folder_l[i], shard_l[PHOTOS.index(name)])
    # astronaut is square: its centre crop is the whole photo resized
    rgb = tf.image.convert_image_dtype(
        tf.io.decode_jpeg(_jpeg("astronaut")), tf.float32
    )
    rgb = tf.clip_by_value(tf.image.resize(rgb, [SIZE, SIZE], antialias=True), 0, 1)
    lightness, ab = lab_example(rgb, 2)
    np.testing.assert_allclose(folder_l[0], lightness.numpy(), atol=1e-3)


def test_lab_example_pools_ab() -> None:
    rgb = tf.random.stateless_uniform([8, 8, 3], seed=[1, 2])
    lightness, ab = lab_example(rgb, 2)
    lab = rgb_to_lab_tf(rgb).numpy()
    np.testing.assert_allclose(lightness.numpy()[..., 0], lab[..., 0], atol=1e-5)
    pooled = lab[..., 1:].reshape(4, 2, 4, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(ab.numpy(), pooled, atol=1e-4)


def test_classification_loss_prefers_the_true_bin() -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(0, NUM_BINS, (2, 4, 4))
    ab = tf.constant(bin_centers()[q] + rng.uniform(-2, 2, (2, 4, 4, 2)), tf.float32)
    weights = tf.ones(NUM_BINS)
    uniform = float(classification_loss(tf.zeros((2, 4, 4, NUM_BINS)), ab, weights))
    assert uniform == pytest.approx(np.log(NUM_BINS), rel=1e-5)
    peaked = float(classification_loss(10.0 * tf.one_hot(q, NUM_BINS), ab, weights))
    assert peaked < uniform - 1.0
    # the soft target itself is the minimum: the loss is then its entropy
    target = soft_encode_tf(ab)
    best = float(classification_loss(tf.math.log(target + 1e-30), ab, weights))
    entropy = float(
        tf.reduce_mean(-tf.reduce_sum(target * tf.math.log(target + 1e-30), -1))
    )
    assert best == pytest.approx(entropy, rel=1e-4)
    assert best < peaked
    # class weights scale each pixel by w of its nearest bin
    w = np.full(NUM_BINS, 2.0, np.float32)
    doubled = float(classification_loss(tf.zeros((2, 4, 4, NUM_BINS)), ab, w))
    assert doubled == pytest.approx(2 * uniform, rel=1e-5)
    np.testing.assert_array_equal(
        tf.argmax(target, -1).numpy(), nearest_bin(ab.numpy())
    )


def test_classification_loss_is_the_dense_rebalanced_cross_entropy() -> None:
    # the sparse form (5 bins a pixel) against the formula with the dense target
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    ab = tf.constant(rgb_to_lab(rgb)[..., 1:], tf.float32)
    logits = tf.constant(rng.normal(0, 3, (2, 6, 5, NUM_BINS)), tf.float32)
    weights = rng.uniform(0.2, 5.0, NUM_BINS).astype(np.float32)
    target = soft_encode_tf(ab).numpy()
    log_p = tf.nn.log_softmax(logits, -1).numpy()
    ce = -(target * log_p).sum(-1) * weights[target.argmax(-1)]
    got = classification_loss(logits, ab, tf.constant(weights), per_example=True)
    np.testing.assert_allclose(got.numpy(), ce.mean(axis=(1, 2)), rtol=1e-5)


def _trainer(tmp_path: Path, **options) -> Trainer:
    cfg = TrainConfig(
        model="default-v1",
        out=str(tmp_path),
        size=SIZE,
        batch_size=2,
        lr=1e-3,
        warmup_steps=1,
        pretrained=False,
        **options,
    )
    return Trainer(cfg, total_steps=100, class_weights=np.ones(NUM_BINS))


@pytest.fixture(scope="module")
def batch(photo_dir) -> tuple[tf.Tensor, tf.Tensor]:
    return next(iter(make_dataset(str(photo_dir), CFG, training=False)))


@pytest.mark.slow
def test_training_steps_lower_the_loss(tmp_path, batch) -> None:
    trainer = _trainer(tmp_path)
    lightness, ab = batch
    losses = [float(trainer.train_step(lightness, ab)) for _ in range(6)]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.1, losses
    # the encoder's convolutions learn too (at a tenth of the rate)
    assert trainer.enc_opt.iterations.numpy() == 6


@pytest.mark.slow
def test_checkpoint_round_trips(tmp_path, batch) -> None:
    trainer = _trainer(tmp_path)
    rng = np.random.default_rng(0)
    for v in (
        trainer.model.weights + trainer.dec_opt.variables + trainer.enc_opt.variables
    ):
        # positive values keep BN variances valid, so the loss below is finite
        v.assign(rng.uniform(0.01, 0.05, v.shape).astype(v.dtype))
    trainer.step, trainer.epoch, trainer.best_val = 6, 1, 3.25
    folder = tmp_path / "checkpoint"
    trainer.save_checkpoint(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint",
        "ckpt-6.data-00000-of-00001",
        "ckpt-6.index",
    ]

    restored = _trainer(tmp_path)
    assert not restored.load_checkpoint(tmp_path / "empty")
    assert restored.load_checkpoint(folder)
    assert (restored.step, restored.epoch, restored.best_val) == (6, 1, 3.25)
    for got, want in zip(restored.model.weights, trainer.model.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for opt_a, opt_b in (
        (restored.dec_opt, trainer.dec_opt),
        (restored.enc_opt, trainer.enc_opt),
    ):
        for a, b in zip(opt_a.variables, opt_b.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    lightness, ab = batch
    loss = float(trainer.eval_step(lightness, ab))
    assert np.isfinite(loss)
    assert float(restored.eval_step(lightness, ab)) == pytest.approx(loss, rel=1e-5)


@pytest.mark.slow
def test_compute_prior_on_tiny_folder(photo_dir, tmp_path) -> None:
    grey = Image.fromarray(skimage.data.camera()[::4, ::4])
    folder = tmp_path / "data"
    folder.mkdir()
    for p in photo_dir.rglob("*.jpg"):
        (folder / p.name).write_bytes(p.read_bytes())
    grey.save(folder / "camera.jpg")  # a greyscale photo: skipped
    prior = compute_prior(str(folder), size=SIZE, stride=2)
    assert prior["counts"].sum() == 4 * (SIZE // 2) ** 2
    assert prior["prior"].shape == prior["weights"].shape == (NUM_BINS,)
    assert abs(prior["prior"].sum() - 1.0) < 1e-12
    assert abs((prior["prior"] * prior["weights"]).sum() - 1.0) < 1e-12
    assert np.all(prior["weights"] > 0)
    save_prior(prior, tmp_path / "prior.npz")
    loaded = load_prior(tmp_path / "prior.npz")
    for key in ("counts", "prior", "weights"):
        np.testing.assert_array_equal(loaded[key], prior[key])


@pytest.mark.slow
def test_checkpoint_of_the_previous_format_still_loads(tmp_path, batch) -> None:
    """Runs made before tf.train checkpoints (weights, optimizer.npz, state.json)."""
    trainer = _trainer(tmp_path)
    lightness, ab = batch
    trainer.train_step(lightness, ab)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    trainer.model.save_weights(folder / "model.weights.h5")
    optimizer = {
        f"{name}_{i}": v.numpy()
        for name, o in (("dec", trainer.dec_opt), ("enc", trainer.enc_opt))
        for i, v in enumerate(o.variables)
    }
    np.savez(folder / "optimizer.npz", **optimizer)
    state = {"step": 1, "epoch": 0, "best_val": 4.5}
    (folder / "state.json").write_text(json.dumps(state))

    restored = _trainer(tmp_path)
    assert restored.load_checkpoint(folder)
    assert (restored.step, restored.epoch, restored.best_val) == (1, 0, 4.5)
    for got, want in zip(restored.model.weights, trainer.model.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for a, b in zip(restored.enc_opt.variables, trainer.enc_opt.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_init_encoder_copies_the_encoder_into_a_wider_decoder(tmp_path) -> None:
    keras.utils.set_random_seed(0)
    trained = create_model("default-v1", pretrained=False)
    for w in trained.get_layer("encoder").weights:
        w.assign(w + 0.5)  # an encoder no fresh build could give
    path = tmp_path / "trained.weights.h5"
    trained.save_weights(path)
    wide = create_model("default-v1", pretrained=False, decoder_widths=(64, 32, 32, 32))
    fresh = [w.numpy() for w in wide.get_layer("logits").weights]
    load_init_encoder(wide, str(path), "default-v1")
    for got, want in zip(
        wide.get_layer("encoder").weights,
        trained.get_layer("encoder").weights,
        strict=True,
    ):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(wide.get_layer("logits").weights, fresh, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)  # the decoder is left alone
    # the wide model's file does not hold the registered architecture
    wide.save_weights(tmp_path / "wide.weights.h5")
    with pytest.raises(ValueError, match="does not hold model") as err:
        load_init_encoder(wide, str(tmp_path / "wide.weights.h5"), "default-v1")
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_init_encoder(wide, str(tmp_path / "missing.weights.h5"), "default-v1")


def test_init_encoder_names_its_source_model_or_takes_the_trained_one() -> None:
    got = model_and_file(
        "default-v1=core/weights/default-v1.weights.h5", "default-wide"
    )
    assert got == ("default-v1", "core/weights/default-v1.weights.h5")
    assert model_and_file("runs/x/best.weights.h5", "default-wide") == (
        "default-wide",
        "runs/x/best.weights.h5",
    )
    # '=' in a file name that names no model stays part of the file name
    assert model_and_file("runs/lr=1e-4/best.weights.h5", "default-v1") == (
        "default-v1",
        "runs/lr=1e-4/best.weights.h5",
    )


@pytest.mark.slow
def test_ema_averages_the_weights_and_swaps_them_in_for_validation(
    tmp_path, batch
) -> None:
    trainer = _trainer(tmp_path, ema=0.5)
    trainer.reset_ema()
    lightness, ab = batch
    seen = [[v.numpy() for v in trainer.model.weights]]
    for _ in range(2):
        trainer.train_step(lightness, ab)
        seen.append([v.numpy() for v in trainer.model.weights])
    # decay 0.5 from w0: 0.25 w0 + 0.25 w1 + 0.5 w2
    for avg, w0, w1, w2 in zip(trainer.ema_vars, *seen, strict=True):
        np.testing.assert_allclose(
            avg.numpy(), 0.25 * w0 + 0.25 * w1 + 0.5 * w2, rtol=1e-5, atol=1e-7
        )
    live_loss = float(trainer.eval_step(lightness, ab))
    with trainer.averaged_weights():
        for v, avg in zip(trainer.model.weights, trainer.ema_vars, strict=True):
            np.testing.assert_array_equal(v.numpy(), avg.numpy())
        averaged_loss = float(trainer.eval_step(lightness, ab))
    assert averaged_loss != pytest.approx(live_loss, rel=1e-4)
    # the live weights come back, bit for bit
    for v, w2 in zip(trainer.model.weights, seen[-1], strict=True):
        np.testing.assert_array_equal(v.numpy(), w2)

    # the average is checkpointed; a run without --ema cannot take its checkpoint
    folder = tmp_path / "checkpoint"
    trainer.save_checkpoint(folder)
    restored = _trainer(tmp_path, ema=0.5)
    assert restored.load_checkpoint(folder)
    for a, b in zip(restored.ema_vars, trainer.ema_vars, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    plain = _trainer(tmp_path)
    plain.save_checkpoint(tmp_path / "plain")
    with pytest.raises(ValueError, match="does not match"):
        _trainer(tmp_path, ema=0.5).load_checkpoint(tmp_path / "plain")


@pytest.mark.slow
def test_adversarial_term_trains_a_critic_and_checkpoints_it(tmp_path, batch) -> None:
    trainer = _trainer(tmp_path, adversarial=0.5)
    lightness, ab = batch
    term = trainer.adversarial
    critic_before = [v.numpy() for v in trainer.critic_vars]
    pred_ab = trainer.decoded_ab(trainer.model(lightness / 100.0, training=False))
    # hinge loss of the critic: relu(1 - D(real)) + relu(1 + D(fake)), per example
    fake, real = (s.numpy() for s in term.scores(lightness, pred_ab, ab))
    want = np.maximum(1 - real, 0).mean(axis=(1, 2, 3)) + np.maximum(1 + fake, 0).mean(
        axis=(1, 2, 3)
    )
    generator, got = (x.numpy() for x in term(lightness, pred_ab, ab))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(generator, -fake.mean(axis=(1, 2, 3)))
    # the critic learns to tell the true chroma from the decoded one
    losses = []
    for _ in range(8):
        trainer.train_step(lightness, ab)
        pred_ab = trainer.decoded_ab(trainer.model(lightness / 100.0, training=False))
        losses.append(float(tf.reduce_mean(term(lightness, pred_ab, ab)[1])))
    assert term.optimizer.iterations.numpy() == 8
    assert losses[-1] < 2.0 - 0.1, losses
    # (the last bias may stay: its hinge gradients cancel while no margin is met)
    for before, v in zip(critic_before, trainer.critic_vars, strict=True):
        assert v.path.endswith("bias") or not np.array_equal(before, v.numpy())
    # the colorizer's gradient holds the critic's term: another weight, other steps
    plain = _trainer(tmp_path)
    plain.model.set_weights(trainer.model.get_weights())
    strong = _trainer(tmp_path, adversarial=0.5)
    strong.model.set_weights(trainer.model.get_weights())
    strong.adversarial.net.set_weights(term.net.get_weights())
    plain.train_step(lightness, ab)
    strong.train_step(lightness, ab)
    moved = [
        not np.allclose(a.numpy(), b.numpy())
        for a, b in zip(plain.dec_vars, strong.dec_vars, strict=True)
    ]
    assert any(moved)

    # the critic and its optimizer are checkpointed
    folder = tmp_path / "checkpoint"
    trainer.save_checkpoint(folder)
    restored = _trainer(tmp_path, adversarial=0.5)
    assert restored.load_checkpoint(folder)
    for a, b in zip(
        restored.critic_vars + restored.adversarial.optimizer.variables,
        trainer.critic_vars + term.optimizer.variables,
        strict=True,
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _trainer(tmp_path).save_checkpoint(tmp_path / "plain")
    with pytest.raises(ValueError, match="does not match"):
        _trainer(tmp_path, adversarial=0.5).load_checkpoint(tmp_path / "plain")


def test_main_reports_a_user_error_in_one_line(tmp_path, capsys) -> None:
    from training.train import main

    argv = ["--out", str(tmp_path / "run"), "--precision", "float64"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --precision 'float64': expected one of")
    assert len(err.splitlines()) == 1
    missing = ["--out", str(tmp_path / "run"), "--data", str(tmp_path / "nothing")]
    assert main(missing) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: no such data path: {tmp_path / 'nothing'}"
    ]


def test_main_lets_a_bug_keep_its_traceback(tmp_path, monkeypatch) -> None:
    """A ValueError that is no user's error (a bug) is not turned into a line."""
    from training import train

    def broken(cfg, strategy=None):
        return np.zeros(2).reshape(3)  # raises ValueError: a bug, not bad input

    monkeypatch.setattr(train, "train", broken)
    with pytest.raises(ValueError, match="reshape"):
        train.main(["--out", str(tmp_path / "run")])


@pytest.mark.parametrize(
    ("model", "stride"),
    [("default-v1", 2), ("default", 4), ("vgg16-cls", 4), ("default-reg", None)],
)
def test_rebalancing_prior_is_counted_at_the_model_output_stride(
    photo_dir, tmp_path, model, stride
) -> None:
    """The prior a run computes counts one ab per logit: (size / stride)^2 a photo."""
    from training.train import rebalancing_weights

    cfg = TrainConfig(model=model, size=SIZE, out=str(tmp_path))
    sources = sorted(photo_dir.rglob("*.jpg"))
    strategy = tf.distribute.get_strategy()
    weights = rebalancing_weights(cfg, tmp_path, sources, strategy)
    if stride is None:  # a regression model: no rebalancing, no prior written
        np.testing.assert_array_equal(weights, np.ones(NUM_BINS))
        assert not (tmp_path / "prior.npz").exists()
        return
    prior = load_prior(tmp_path / "prior.npz")
    assert prior["counts"].sum() == len(PHOTOS) * (SIZE // stride) ** 2
    np.testing.assert_array_equal(weights, prior["weights"])


def test_prior_command_counts_at_the_named_model_stride(photo_dir, tmp_path) -> None:
    from training.prior import main

    out = tmp_path / "p.npz"
    argv = ["--data", str(photo_dir), "--out", str(out), "--size", str(SIZE)]
    assert main([*argv, "--model", "vgg16-cls"]) == 0
    counts = load_prior(out)["counts"]
    assert counts.sum() == len(PHOTOS) * (SIZE // 4) ** 2

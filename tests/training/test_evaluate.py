"""Metrics with known answers; evaluation, calibration and export on tiny real data."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core import metrics
from core.colorspace import lab_to_rgb, rgb_to_lab
from core.models import create_model, get_spec
from core.quantize import NUM_BINS
from core.weights import file_sha256, load_weights
from training.calibrate import calibrate, choose_alpha
from training.evaluate import (
    EvalConfig,
    evaluate,
    format_table,
    gray_baseline,
    image_metrics,
    main,
    realism,
    simulated_hints,
    summarize,
    write_report,
)
from training.export import attach_reports, export_run
from training.init_weights import load_init_weights
from training.prior import save_prior
from training.realism import frechet_distance
from training.semantic import SemanticJudge, agreement


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("eval")
    for name in ("coffee", "chelsea"):
        im = Image.fromarray(getattr(skimage.data, name)())
        im.resize((im.width // 4, im.height // 4)).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w") / "best.weights.h5"
    create_model("default-v1", pretrained=False).save_weights(path)
    return path


def test_identical_images_score_perfectly() -> None:
    img = skimage.data.astronaut()
    assert metrics.psnr(img, img) == metrics.PSNR_CAP
    assert metrics.auc(metrics.ab_error_cmf(img, img)) == pytest.approx(1.0)
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    assert metrics.ciede2000(img, img) == pytest.approx(0.0)


def test_grey_image_has_zero_colorfulness() -> None:
    grey = np.full((20, 30, 3), 117, np.uint8)
    assert metrics.colorfulness(grey) == 0.0
    assert metrics.colorfulness(grey, signed=False) == 0.0


def test_psnr_of_a_known_error() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    b = a + 10  # MSE 100
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))


def test_known_ab_shift_gives_known_auc() -> None:
    # a mid-grey image and the same lightness shifted by 20 ab units (in gamut)
    lab = np.zeros((16, 16, 3), np.float32)
    lab[..., 0] = 60.0
    gt = np.round(lab_to_rgb(lab) * 255).astype(np.uint8)
    lab[..., 1] = 20.0
    pred = np.round(lab_to_rgb(lab) * 255).astype(np.uint8)
    err = np.linalg.norm(rgb_to_lab(gt)[..., 1:] - rgb_to_lab(pred)[..., 1:], axis=-1)
    e = float(err.mean())
    assert e == pytest.approx(20.0, abs=1.0)  # uint8 rounding moves it a little
    # CMF is 0 below e and 1 from ceil(e) on: AuC = (150 - ceil(e) + 0.5) / 150
    expected = (150 - np.ceil(e) + 0.5) / 150
    assert metrics.auc(metrics.ab_error_cmf(gt, pred)) == pytest.approx(expected, 1e-3)


def test_rebalanced_cmf_weights_rare_colours() -> None:
    prior = np.full(NUM_BINS, 1.0 / NUM_BINS)
    img = skimage.data.coffee()[::8, ::8]
    plain = metrics.ab_error_cmf(img, gray_baseline(img))
    uniform = metrics.ab_error_cmf(img, gray_baseline(img), prior)
    np.testing.assert_allclose(plain, uniform)  # a uniform prior changes nothing


@pytest.mark.slow
def test_evaluate_writes_reports(photos, weights_file, tmp_path) -> None:
    cfg = EvalConfig(
        model=(f"default-v1={weights_file}",),
        data=(str(photos),),
        size=64,
        semantic=False,
    )
    result = evaluate(cfg)
    models = result["models"]
    assert set(models) == {"gray", "default-v1@w0"}
    assert models["gray"]["cf_signed"] == 0.0 and models["gray"]["images"] == 2
    assert models["default-v1@w0"]["cf_signed"] > 0.0
    assert models["gray"]["stain_rate"] == 0.0
    rows = [r for r in result["rows"] if r["model"] == "default-v1@w0"]
    assert models["default-v1@w0"]["stain_rate"] == pytest.approx(
        np.mean([r["stain_rate"] for r in rows])
    )
    assert "kid" not in models["gray"] and "features" not in result  # no judge
    gain = models["default-v1@w0"]["psnr"] - models["gray"]["psnr"]
    assert models["default-v1@w0"]["psnr_gain_over_gray"] == pytest.approx(gain)
    write_report(result, tmp_path, html=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["weights_sha256"]["default-v1@w0"] == file_sha256(
        weights_file
    )
    with (tmp_path / "per_image.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4  # 2 photos x (grey + model)


@pytest.mark.slow
def test_calibration_reduces_colour_as_alpha_grows(photos, weights_file) -> None:
    from core.colorizer import Colorizer

    colorizer = Colorizer.load("default-v1", weights_file)
    rng = np.random.default_rng(0)
    class_weights = rng.uniform(0.2, 5.0, NUM_BINS)
    rows = calibrate(colorizer, class_weights, [str(photos)], [0.0, 1.0], size=64)
    assert [r["alpha"] for r in rows] == [0.0, 1.0]
    assert rows[0]["cf_signed_ratio"] != rows[1]["cf_signed_ratio"]
    assert all(0.0 <= r["stain_rate"] <= 1.0 for r in rows)
    # saturation scales the decoded ab: more colour, and none at all at 0
    vivid = calibrate(
        colorizer, class_weights, [str(photos)], [0.0], size=64, saturation=1.5
    )
    assert vivid[0]["cf_signed_ratio"] > rows[0]["cf_signed_ratio"]
    grey = calibrate(
        colorizer, class_weights, [str(photos)], [0.0], size=64, saturation=0.0
    )
    assert grey[0]["psnr_gain_over_gray"] == pytest.approx(0.0, abs=0.05)
    assert grey[0]["stain_rate"] == 0.0  # no colour, no stain
    band = [
        {"alpha": 0.0, "psnr_gain_over_gray": -2.0, "cf_signed_ratio": 1.3},
        {"alpha": 0.3, "psnr_gain_over_gray": -1.0, "cf_signed_ratio": 1.05},
        {"alpha": 0.5, "psnr_gain_over_gray": -0.5, "cf_signed_ratio": 0.85},
        {"alpha": 0.7, "psnr_gain_over_gray": 0.1, "cf_signed_ratio": 0.7},
        {"alpha": 0.9, "psnr_gain_over_gray": 0.3, "cf_signed_ratio": 0.6},
    ]
    assert choose_alpha(band) == 0.5  # best PSNR with CF ratio >= 0.8
    assert choose_alpha(band, cf_min=0.9) == 0.3
    assert choose_alpha(band[3:]) == 0.7  # none reaches the floor: the nearest


def test_with_the_judge_the_rule_chooses_lowest_kid_near_greys_top1() -> None:
    def row(alpha, top1, kid, stain):
        return {
            "alpha": alpha,
            "psnr_gain_over_gray": alpha,
            "cf_signed_ratio": 1.0 - alpha,
            "top1_agreement": top1,
            "gray_top1_agreement": 0.70,
            "kid": kid,
            "stain_rate": stain,
        }

    # 0.2 and 0.4 lie within 2 points of grey's 70 %: the lower KID of the two wins,
    # though 0.0 has a lower KID still
    rows = [row(0.0, 0.60, 0.001, 0.05), row(0.2, 0.68, 0.004, 0.03)]
    rows += [row(0.4, 0.69, 0.003, 0.02), row(0.6, 0.71, 0.005, 0.01)]
    assert choose_alpha(rows) == 0.4
    # none within 2 points: those nearest grey's agreement; a KID tie goes to the stain
    far = [row(0.6, 0.636, 0.005, 0.045), row(0.7, 0.672, 0.004, 0.03)]
    far += [row(0.8, 0.672, 0.004, 0.02)]
    assert choose_alpha(far) == 0.8


@pytest.mark.slow
def test_export_folds_the_correction_into_the_bias(weights_file, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.weights.h5").write_bytes(weights_file.read_bytes())
    rng = np.random.default_rng(1)
    class_weights = rng.uniform(0.2, 5.0, NUM_BINS)
    prior = {"prior": np.full(NUM_BINS, 1 / NUM_BINS), "weights": class_weights}
    save_prior(prior, run / "prior.npz")
    (run / "config.json").write_text(
        json.dumps({"data": ["train"], "val": ["val"], "epochs": 1})
    )
    (run / "metrics.csv").write_text(
        "epoch,step,train_loss,val_loss,seconds\n1,5,4.0,3.5,1.0\n2,10,3.0,3.2,1.0\n"
    )
    folder = tmp_path / "weights"
    folder.mkdir()
    renamed = {"default-v1": {"renamed": "was default"}}
    (folder / "manifest.json").write_text(json.dumps(renamed))
    entry = export_run(run, "default-v1", folder=folder, prior_correction=0.5)
    assert entry["renamed"] == "was default"  # the name's history is kept
    assert entry["training"]["best_epoch"] == 2 and entry["training"]["steps"] == 10
    assert entry["sha256"] == file_sha256(folder / entry["file"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["default-v1"]["prior_correction"]["alpha"] == 0.5
    before = create_model("default-v1", pretrained=False)
    before.load_weights(weights_file)
    after = create_model("default-v1", pretrained=False)
    load_weights(after, get_spec("default-v1"), folder=folder)
    k0, b0 = before.get_layer("logits").get_weights()
    k1, b1 = after.get_layer("logits").get_weights()
    np.testing.assert_array_equal(k0, k1)
    np.testing.assert_allclose(b1, b0 - 0.5 * np.log(class_weights), rtol=1e-5)
    # fine-tuning from the shipped file (any copy of it) starts from the trained bias
    copy = tmp_path / "copy.weights.h5"
    copy.write_bytes((folder / entry["file"]).read_bytes())
    tuned = create_model("default-v1", pretrained=False)
    assert load_init_weights(tuned, str(copy), weights_dir=folder) == 0.5
    bias = tuned.get_layer("logits").get_weights()[1]
    np.testing.assert_allclose(bias, b0, atol=1e-5)
    # a run's own file carries no fold: loaded as it is
    assert load_init_weights(tuned, str(weights_file), weights_dir=folder) == 0.0
    np.testing.assert_array_equal(tuned.get_layer("logits").get_weights()[1], b0)
    # reports are attached only when they were made with exactly the shipped file
    summary = {
        "config": {
            "command": "python -m training.evaluate ...",
            "data": ["test"],
            "size": 256,
            "weights_sha256": {"default-v1": entry["sha256"]},
        },
        "models": {
            "gray": {"psnr": 22.0, "auc": 0.89, "cf_signed_ratio": 0.0},
            "default-v1": {
                "psnr": 23.5,
                "auc": 0.91,
                "cf_signed_ratio": 0.95,
                "psnr_gain_over_gray": 1.5,
            },
        },
    }
    report = tmp_path / "summary.json"
    report.write_text(json.dumps(summary))
    attached = attach_reports("default-v1", test_report=str(report), folder=folder)
    assert all(bar["met"] for bar in attached["test"]["bars"].values())
    summary["config"]["weights_sha256"]["default-v1"] = "0" * 64
    report.write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="other weights"):
        attach_reports("default-v1", test_report=str(report), folder=folder)


def _originals(images: list[np.ndarray]) -> list[dict]:
    return [
        {
            "cf_signed": metrics.colorfulness(im, True),
            "cf_abs": metrics.colorfulness(im, False),
        }
        for im in images
    ]


def _uniform_lab_image(lightness: float, a: float, shape=(12, 10)) -> np.ndarray:
    lab = np.zeros((*shape, 3), np.float32)
    lab[..., 0], lab[..., 1] = lightness, a
    return np.round(lab_to_rgb(lab) * 255).astype(np.uint8)


def test_summary_of_identical_images_is_perfect() -> None:
    images = [skimage.data.astronaut()[::16, ::16], skimage.data.coffee()[::16, ::16]]
    prior = np.full(NUM_BINS, 1.0 / NUM_BINS)
    results = [image_metrics(im, im.copy(), prior) for im in images]
    s = summarize([r for r, _ in results], _originals(images), [c for _, c in results])
    assert s["images"] == 2
    assert s["psnr"] == metrics.PSNR_CAP and s["psnr_capped"] == 2
    assert s["auc"] == pytest.approx(1.0) and s["auc_rebalanced"] == pytest.approx(1.0)
    assert s["ssim"] == pytest.approx(1.0) and s["ciede2000"] == pytest.approx(0.0)
    for form in ("signed", "abs"):
        assert s[f"delta_cf_{form}"] == 0.0
        assert s[f"delta_cf_{form}_per_image"] == 0.0
        assert s[f"cf_{form}_ratio"] == pytest.approx(1.0)
    assert len(s["cmf"]) == len(s["cmf_rebalanced"]) == 151
    np.testing.assert_allclose(s["cmf"], 1.0)
    np.testing.assert_allclose(s["cmf_rebalanced"], 1.0)
    assert "top1_agree" not in s  # no semantic figures without the judge


def test_summary_of_the_grey_baseline_has_zero_colorfulness() -> None:
    images = [skimage.data.chelsea()[::16, ::16], skimage.data.coffee()[::16, ::16]]
    grays = [gray_baseline(im) for im in images]
    assert all(metrics.colorfulness(g) == 0.0 for g in grays)
    rows = [image_metrics(im, g, None)[0] for im, g in zip(images, grays, strict=True)]
    originals = _originals(images)
    s = summarize(rows, originals)
    cf_gt = np.mean([o["cf_signed"] for o in originals])
    assert s["cf_signed"] == 0.0 and s["cf_abs"] == 0.0
    assert s["cf_signed_ratio"] == 0.0
    assert s["delta_cf_signed"] == pytest.approx(cf_gt)
    assert s["cf_signed_originals"] == pytest.approx(cf_gt)
    assert s["psnr_capped"] == 0 and "auc_rebalanced" not in s


def test_mean_cmf_of_known_ab_shifts() -> None:
    # uniform images shifted by 20 and 40 ab units: every pixel has the same error e_i,
    # so each image's CMF is the step [e_i <= t] and the mean curve is their average
    gt = _uniform_lab_image(60.0, 0.0)
    preds = [_uniform_lab_image(60.0, shift) for shift in (20.0, 40.0)]
    errors = [
        float(np.linalg.norm(rgb_to_lab(gt)[0, 0, 1:] - rgb_to_lab(p)[0, 0, 1:]))
        for p in preds
    ]
    assert errors == pytest.approx([20.0, 40.0], abs=1.0)
    results = [image_metrics(gt, p, None) for p in preds]
    s = summarize(
        [r for r, _ in results], _originals([gt, gt]), [c for _, c in results]
    )
    t = metrics.AUC_THRESHOLDS
    expected = np.mean([(e <= t).astype(float) for e in errors], axis=0)
    np.testing.assert_allclose(s["cmf"], expected, atol=1e-9)
    assert s["cmf"][int(np.ceil(errors[0]))] == 0.5
    assert s["auc"] == pytest.approx(metrics.auc(expected))
    assert s["auc"] == pytest.approx(
        np.mean([(150 - np.ceil(e) + 0.5) / 150 for e in errors])
    )


def test_summary_counts_agreement_fractions() -> None:
    img = skimage.data.coffee()[::32, ::32]
    row, _ = image_metrics(img, img, None)
    flags = [(True, True), (False, True), (True, True), (False, False)]
    rows = [{**row, "top1_agree": a, "top5_agree": b} for a, b in flags]
    s = summarize(rows, _originals([img] * 4))
    assert s["top1_agree"] == 0.5 and s["top5_agree"] == 0.75


def test_agreement_compares_the_ground_truths_top1() -> None:
    assert agreement([5, 1, 2, 3, 4], [5, 9, 8, 7, 6]) == (True, True)
    assert agreement([5, 1, 2, 3, 4], [9, 8, 7, 6, 5]) == (False, True)
    # only the ground truth's top-1 counts, not the overlap of the two top-5 lists
    assert agreement([5, 1, 2, 3, 4], [1, 2, 3, 4, 0]) == (False, False)


@pytest.fixture(scope="module")
def judge() -> SemanticJudge:
    judge = SemanticJudge(batch_size=4)
    judge.model  # noqa: B018 (builds Lite2 once and runs its reference check)
    return judge


@pytest.mark.slow
def test_semantic_judge_classifies_reference_images(judge) -> None:
    chelsea, coffee = skimage.data.chelsea(), skimage.data.coffee()
    top5 = judge.top5([chelsea, coffee, chelsea])
    assert top5.shape == (3, 5) and top5.dtype == np.int64
    assert top5[0, 0] == 285  # Egyptian cat
    assert top5[1, 0] == 967  # espresso
    np.testing.assert_array_equal(top5[0], top5[2])  # batching changes nothing
    assert agreement(top5[0], top5[2]) == (True, True)  # an image agrees with itself
    assert agreement(top5[0], top5[1]) == (False, False)
    assert len(judge.describe()["weights_sha256"]) == 64


def test_realism_of_one_photo_is_undefined_and_of_more_is_ordered() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 2, (30, 16))
    assert all(np.isnan(v) for v in realism(x[:1], x[:1]).values())
    same = realism(x, x.copy())
    assert same["kid"] == pytest.approx(0.0, abs=1e-12)
    assert same["fd"] == pytest.approx(0.0, abs=1e-8)
    near, far = realism(x, x + 0.1), realism(x, x + 0.5)
    assert 0 < near["kid"] < far["kid"] and 0 < near["fd"] < far["fd"]


@pytest.mark.slow
def test_judge_features_are_what_its_classifier_reads(judge) -> None:
    photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()]
    top5, feats = judge.top5_and_features(photos)
    np.testing.assert_array_equal(top5, judge.top5(photos))
    assert feats.shape == (3, 1280) and feats.dtype == np.float32
    assert feats.min() >= 0.0 and feats.max() <= 6.0  # averages of ReLU6
    # the classifier is one dense layer on them: logits = features W + b
    kernel, bias = judge.model.get_layer("fc").get_weights()
    np.testing.assert_allclose(
        feats @ kernel + bias, judge.logits(photos), rtol=1e-4, atol=1e-3
    )
    # batching changes nothing; a grey rendering moves the features
    _, one = judge.top5_and_features(photos[:1])
    np.testing.assert_allclose(one[0], feats[0], rtol=1e-4, atol=1e-5)
    _, grey = judge.top5_and_features([gray_baseline(photos[0])])
    assert np.abs(grey[0] - feats[0]).max() > 0.05


@pytest.mark.slow
def test_evaluate_reports_semantic_agreement(
    photos, weights_file, judge, tmp_path
) -> None:
    cfg = EvalConfig(
        model=(f"default-v1={weights_file}",),
        data=(str(photos),),
        size=64,
        report=False,
    )
    result = evaluate(cfg, judge=judge)
    for label in ("gray", "default-v1@w0"):
        s = result["models"][label]
        assert 0.0 <= s["top1_agree"] <= s["top5_agree"] <= 1.0
        rows = [r for r in result["rows"] if r["model"] == label]
        assert s["top1_agree"] == np.mean([r["top1_agree"] for r in rows])
        assert {r["gt_top1"] for r in rows} == {285, 967}
    assert result["config"]["semantic_judge"] == judge.describe()
    # realism: the judge's features of the same pass, FD and KID against the originals
    feats = result["features"]
    assert set(feats) == {"original", "gray", "default-v1@w0"}
    assert all(f.shape == (2, 1280) and f.dtype == np.float32 for f in feats.values())
    for label in ("gray", "default-v1@w0"):
        s = result["models"][label]
        assert s["kid"] == realism(feats["original"], feats[label])["kid"]
        fd = frechet_distance(feats["original"], feats[label])
        assert s["fd"] == pytest.approx(fd)
        assert s["fd"] > 0 and s["kid_std"] < 1e-9  # 2 photos: one subset of 2
    photos_rgb = [
        np.asarray(Image.open(p).convert("RGB")) for p in sorted(photos.iterdir())
    ]
    _, gt_feats = judge.top5_and_features(photos_rgb)
    np.testing.assert_allclose(feats["original"], gt_feats, rtol=1e-4, atol=1e-5)
    assert result["config"]["realism"]["kid_subset_size"] == 2
    write_report(result, tmp_path, html=False)
    with np.load(tmp_path / "features.npz") as saved:
        assert set(saved.files) == set(feats)
        np.testing.assert_array_equal(saved["gray"], feats["gray"])
    assert result["grid"] == []  # --no-report keeps no thumbnails
    assert result["config"]["command"] == (
        f"python -m training.evaluate --model default-v1={weights_file} "
        f"--data {photos} --size 64 --no-report"
    )


@pytest.mark.slow
def test_calibration_reports_semantic_agreement(photos, weights_file, judge) -> None:
    from core.colorizer import Colorizer

    colorizer = Colorizer.load("default-v1", weights_file)
    class_weights = np.random.default_rng(0).uniform(0.2, 5.0, NUM_BINS)
    rows = calibrate(
        colorizer, class_weights, [str(photos)], [0.0, 1.0], size=64, judge=judge
    )
    gray_agree = []
    for path in sorted(photos.iterdir()):
        gt = np.asarray(Image.open(path).convert("RGB"))
        gt_top5, gray_top5 = judge.top5([gt, gray_baseline(gt)])
        gray_agree.append(agreement(gt_top5, gray_top5))
    expected = np.mean(gray_agree, axis=0)
    for row in rows:
        assert row["gray_top1_agreement"] == expected[0]
        assert row["gray_top5_agreement"] == expected[1]
        assert 0.0 <= row["top1_agreement"] <= row["top5_agreement"] <= 1.0
        assert np.isfinite(row["kid"]) and row["kid_std"] >= 0.0
        assert np.isfinite(row["gray_kid"])
    assert (
        "top1_agreement"
        not in calibrate(colorizer, class_weights, [str(photos)], [0.0], size=64)[0]
    )


@pytest.mark.slow
def test_cli_takes_repeated_models(photos, weights_file, tmp_path, capsys) -> None:
    other = tmp_path / "other" / "best.weights.h5"
    other.parent.mkdir()
    other.write_bytes(weights_file.read_bytes())
    argv = [
        "--model",
        f"default-v1={weights_file}",
        "--model",
        f"default-v1={other}",
        "--data",
        str(photos),
        "--size",
        "64",
        "--limit",
        "1",
        "--no-semantic",
        "--no-report",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["models"]) == ["gray", "default-v1@w0", "default-v1@other"]
    assert summary["models"]["gray"]["images"] == 1
    assert summary["config"]["command"] == "python -m training.evaluate " + " ".join(
        argv
    )
    assert summary["config"]["semantic"] is False
    assert not (tmp_path / "out" / "report.html").exists()
    assert "default-v1@other" in capsys.readouterr().out


@pytest.mark.slow
def test_export_can_install_the_last_checkpoint(weights_file, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.weights.h5").write_bytes(b"not these")
    (run / "last.weights.h5").write_bytes(weights_file.read_bytes())
    (run / "config.json").write_text(json.dumps({"data": ["t"], "val": ["v"]}))
    (run / "metrics.csv").write_text(
        "epoch,step,train_loss,val_loss,seconds\n1,5,4.0,3.5,1.0\n"
        "2,10,3.0,3.2,1.0\n3,15,2.9,3.3,1.0\n"
    )
    folder = tmp_path / "weights"
    entry = export_run(run, "default-v1", folder=folder, checkpoint="last")
    assert (folder / entry["file"]).read_bytes() == weights_file.read_bytes()
    assert entry["training"]["best_epoch"] == 2
    installed = entry["training"]["installed"]
    assert installed == {
        "checkpoint": "last.weights.h5",
        "epoch": 3,
        "step": 15,
        "val_loss": 3.3,
    }
    with pytest.raises(ValueError, match="best or last"):
        export_run(run, "default-v1", folder=folder, checkpoint="middle")


def test_export_gan_run_ships_the_chosen_iteration(tmp_path) -> None:
    import json

    from core.models import create_model
    from training.export import export_gan_run

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    gen = create_model("cgan")
    for it in (100, 200):
        gen.save_weights(run / "checkpoints" / f"generator-{it:06d}.weights.h5")
    cfg = {"data": ["tiny64"], "batch_size": 16, "iterations": 200}
    (run / "config.json").write_text(json.dumps(cfg))
    log_rows = ["iteration,d_loss,g_loss,seconds"]
    log_rows += [f"{i},0.5,1.5,{i / 10}" for i in range(10, 201, 10)]
    (run / "log.csv").write_text("\n".join(log_rows) + "\n")
    folder = tmp_path / "weights"
    entry = export_gan_run(run, 100, folder=folder)
    shipped = folder / "cgan.weights.h5"
    assert entry["file"] == "cgan.weights.h5"
    assert (
        shipped.read_bytes()
        == (run / "checkpoints" / "generator-000100.weights.h5").read_bytes()
    )
    t = entry["training"]
    assert t["iteration"] == 100 and t["batch_size"] == 16
    assert t["train_seconds"] == pytest.approx(sum(i / 10 for i in range(10, 101, 10)))
    assert t["at_iteration"]["g_loss"] == 1.5
    assert json.loads((folder / "manifest.json").read_text())["cgan"] == entry
    with pytest.raises(FileNotFoundError, match="generator-000200"):
        export_gan_run(run, 150, folder=folder)


@pytest.mark.slow
def test_record_holds_the_git_state_of_the_start(
    photos, weights_file, monkeypatch
) -> None:
    import training.evaluate as evaluate_module

    started = {"photos": False}
    real_iter = evaluate_module.iter_encoded

    def iter_encoded(sources):
        for item in real_iter(sources):
            started["photos"] = True  # a commit or an edit could land from here on
            yield item

    def fake_git(*args: str) -> str:
        if args[0] == "rev-parse":
            return "later00" if started["photos"] else "start00"
        return " M edited.py" if started["photos"] else ""

    monkeypatch.setattr(evaluate_module, "iter_encoded", iter_encoded)
    monkeypatch.setattr(evaluate_module, "_git", fake_git)
    cfg = EvalConfig(
        model=(f"default-v1={weights_file}",),
        data=(str(photos),),
        size=64,
        semantic=False,
        report=False,
        limit=1,
    )
    config = evaluate(cfg)["config"]
    assert started["photos"]
    assert config["commit"] == "start00" and config["dirty"] is False


def test_simulated_hints_are_nested_patch_means() -> None:
    gt = skimage.data.coffee()[::4, ::4]
    five = simulated_hints(gt, 5, n=3)
    assert simulated_hints(gt, 2, n=3) == five[:2]  # K hints include smaller K's
    assert simulated_hints(gt, 5, n=4) != five  # another photo, other points
    for x, y, colour in five:
        patch = gt[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3].reshape(-1, 3)
        assert colour == tuple(int(c) for c in np.rint(patch.mean(axis=0)))
    assert simulated_hints(gt, 0, n=3) == []


@pytest.mark.slow
def test_hint_curve_scores_hint_models_per_hint_count(
    photos, random_v2_weights
) -> None:
    cfg = EvalConfig(
        model=(f"default={random_v2_weights}",),
        data=(str(photos),),
        size=64,
        semantic=False,
        report=False,
        hints=(0, 3, 30),
    )
    result = evaluate(cfg)
    [label] = [m for m in result["models"] if m.startswith("default")]
    curve = result["models"][label]["hint_curve"]
    assert curve["hints"] == [0, 3, 30] and curve["images"] == 2
    # K = 0 is the automatic colorization the main table scores
    assert curve["psnr"][0] == pytest.approx(result["models"][label]["psnr"])
    assert curve["psnr"][2] != curve["psnr"][0]
    assert all(0.0 <= v <= 1.0 for v in curve["stain_rate"] + curve["auc"])
    assert "with K random hints" in format_table(result["models"])
    with pytest.raises(ValueError, match="none of the models takes hints"):
        evaluate(EvalConfig(model=("default-v1",), data=(str(photos),), hints=(1,)))

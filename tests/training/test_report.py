"""The evaluation's HTML report and the Markdown results table, on tiny real runs."""

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import skimage.data
from PIL import Image

from benchmarks.results_table import COLUMNS, STD_KEYS
from benchmarks.results_table import main as results_table_main
from core.models import create_model
from training.evaluate import EvalConfig, evaluate, write_report
from training.report import write_html_report


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A random-weights model evaluated on 3 small photos, written to a folder."""
    photos = tmp_path_factory.mktemp("photos")
    for name in ("coffee", "chelsea", "astronaut"):
        im = Image.fromarray(getattr(skimage.data, name)())
        im.resize((im.width // 5, im.height // 5)).save(photos / f"{name}.png")
    weights = tmp_path_factory.mktemp("run") / "best.weights.h5"
    create_model("default-v1", pretrained=False).save_weights(weights)
    cfg = EvalConfig(
        model=(f"default-v1={weights}",),
        data=(str(photos),),
        size=64,
        semantic=False,
        grid_images=2,
    )
    out = tmp_path_factory.mktemp("report")
    write_report(evaluate(cfg), out)
    return out


class _Tags(HTMLParser):
    """Collects the tags and attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


@pytest.mark.slow
def test_report_is_self_contained(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    summary = json.loads((report_dir / "summary.json").read_text())
    assert "http://" not in page and "https://" not in page
    tags = _tags(page)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe")]
    srcs = [a["src"] for t, a in tags if t == "img"]
    # 2 plots + 2 photos x (grey, model, original)
    assert len(srcs) == 2 + 2 * 3
    for src in srcs:
        assert not src.startswith("/") and ".." not in src
        assert (report_dir / src).is_file(), src
    assert "plots/auc_curves.png" in srcs and "plots/colorfulness.png" in srcs
    assert (
        "images/000-default-v1-run0.jpg" in srcs and "images/001-original.jpg" in srcs
    )
    with Image.open(report_dir / "images/000-original.jpg") as im:
        assert max(im.size) <= 256
    # the run's record and every model's figures are on the page
    config = summary["config"]
    assert config["commit"] in page
    assert config["weights_sha256"]["default-v1@run0"] in page
    assert "--no-semantic" in config["command"]
    for label, s in summary["models"].items():
        assert label in page
        assert f"{s['psnr']:.2f}" in page and f"{100 * s['auc']:.2f}" in page
    assert "signed form" in page and "absolute-value form" in page


@pytest.mark.slow
def test_plots_and_csv_have_meta_sidecars(report_dir: Path) -> None:
    summary = json.loads((report_dir / "summary.json").read_text())
    for name in ("plots/auc_curves.png", "plots/colorfulness.png", "per_image.csv"):
        path = report_dir / name
        if path.suffix == ".png":
            with Image.open(path) as im:
                assert im.format == "PNG" and im.width > 300
        meta = json.loads(path.with_name(path.name + ".meta.json").read_text())
        assert meta["command"] == summary["config"]["command"]
        assert meta["commit"] == summary["config"]["commit"]
        assert meta["weights_sha256"] == summary["config"]["weights_sha256"]


@pytest.mark.slow
def test_summary_holds_mean_cmf_curves(report_dir: Path) -> None:
    summary = json.loads((report_dir / "summary.json").read_text())
    for s in summary["models"].values():
        cmf = s["cmf"]
        assert len(cmf) == 151 and cmf[-1] <= 1.0
        assert all(a <= b for a, b in zip(cmf, cmf[1:], strict=False))  # a CDF


def _synthetic_summary(label: str) -> dict:
    figures = {
        "images": 2,
        "psnr": 24.123456,
        "psnr_capped": 0,
        "ssim": 0.912345,
        "ciede2000": 6.54321,
        "auc": 0.923456,
        "auc_rebalanced": 0.812345,
        "cf_signed": 30.5,
        "cf_signed_originals": 35.0,
        "cf_signed_ratio": 30.5 / 35.0,
        "delta_cf_signed": 4.5,
        "cf_abs": 29.0,
        "cf_abs_originals": 33.0,
        "cf_abs_ratio": 29.0 / 33.0,
        "delta_cf_abs": 4.0,
        "top1_agree": 0.5,
        "top5_agree": 1.0,
        "stain_rate": 0.0312345,
        "kid": 0.0123456,
        "kid_std": 0.0021234,
        "fd": 12.345678,
        "cmf": [min(1.0, t / 100) for t in range(151)],
    }
    gray = {
        **figures,
        "psnr": 22.0,
        "cf_signed": 0.0,
        "cf_abs": 0.0,
        "top1_agree": 0.0,
        "stain_rate": 0.0,
    }
    return {
        "config": {
            "command": "python -m training.evaluate --model x",
            "commit": "abc1234",
            "data": ["val"],
            "size": 256,
            "weights_sha256": {label: "f" * 64},
        },
        "models": {"gray": gray, label: figures},
    }


@pytest.mark.slow
def test_report_escapes_text(tmp_path: Path) -> None:
    label = "evil<script>&"
    summary = _synthetic_summary(label)
    rows = [
        {
            "image": "a<b>",
            "model": m,
            "psnr": 20.0,
            "auc": 0.9,
            "cf_signed": 10.0,
            "cf_abs": 9.0,
            "gt_cf_signed": 12.0,
            "gt_cf_abs": 11.0,
            "top1_agree": True,
            "top5_agree": True,
        }
        for m in ("gray", label)
    ]
    cell = tmp_path / "images" / "000-x.jpg"
    cell.parent.mkdir()
    Image.fromarray(skimage.data.coffee()[::8, ::8]).save(cell)
    grid = [{"image": "a<b>", "cells": {"gray": "images/000-x.jpg"}}]
    page = write_html_report(tmp_path, summary, rows, grid).read_text()
    assert "<script>" not in page and "<b>" not in page
    assert "evil&lt;script&gt;&amp;" in page and "a&lt;b&gt;" in page
    assert "100 (by definition)" in page  # the originals' agreement
    assert "top-1 agrees: yes" in page


def _table_rows(markdown: str) -> list[list[str]]:
    lines = [ln for ln in markdown.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]


@pytest.mark.slow
def test_results_table_numbers_come_from_summaries(
    report_dir: Path, tmp_path: Path, capsys
) -> None:
    synthetic = tmp_path / "synthetic" / "summary.json"
    synthetic.parent.mkdir()
    synthetic.write_text(json.dumps(_synthetic_summary("default-v1")))
    out = tmp_path / "docs" / "results.md"
    argv = [str(report_dir / "summary.json"), str(synthetic), "--out", str(out)]
    assert results_table_main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out)
    text = out.read_text()
    assert text.startswith("# Evaluation results")
    assert "Generated by `python -m benchmarks.results_table " in text
    header, rule, *body = _table_rows(text)
    assert header[:3] == ["report", "model", "photos"]
    assert [h for _, h, _ in COLUMNS] == header[3:]
    assert set(rule) <= {"---", "---:"}
    summaries = {
        report_dir.name: json.loads((report_dir / "summary.json").read_text()),
        "synthetic": json.loads(synthetic.read_text()),
    }
    assert [(r[0], r[1]) for r in body] == [
        (name, label) for name, s in summaries.items() for label in s["models"]
    ]
    checked = {name: 0 for name in summaries}
    for report, label, photos, *cells in body:
        s = summaries[report]["models"][label]
        assert int(photos) == s["images"]
        for (key, _, kind), cell in zip(COLUMNS, cells, strict=True):
            if key not in s:
                assert cell == "-"
                continue
            scale = {"percent": 100, "kid": 1000}.get(kind, 1)
            if key in STD_KEYS:
                cell, _, std = cell.partition(" ± ")
                decimals = len(std.partition(".")[2])
                assert float(std) == pytest.approx(
                    scale * s[STD_KEYS[key]], abs=0.51 * 10**-decimals
                )
            decimals = len(cell.partition(".")[2])
            expected = scale * s[key]
            assert float(cell) == pytest.approx(expected, abs=0.51 * 10**-decimals)
            checked[report] += 1
    assert checked["synthetic"] == 2 * len(COLUMNS)
    # no judge (agreement, KID, FD): 5 columns "-"
    assert checked[report_dir.name] >= 2 * (len(COLUMNS) - 5)
    # each report's command, commit and weights hash
    for s in summaries.values():
        assert s["config"]["command"] in text
        assert f"`{s['config']['commit']}`" in text
        for sha in s["config"]["weights_sha256"].values():
            assert sha in text


def test_results_table_renders_summaries_without_the_new_figures(
    tmp_path: Path, capsys
) -> None:
    # a summary written before stain rate, KID and FD existed
    old = _synthetic_summary("default-v1")
    for figures in old["models"].values():
        for key in ("stain_rate", "kid", "kid_std", "fd"):
            del figures[key]
    path = tmp_path / "old" / "summary.json"
    path.parent.mkdir()
    path.write_text(json.dumps(old))
    assert results_table_main([str(path)]) == 0
    header, _, *body = _table_rows(capsys.readouterr().out)
    assert len(body) == 2
    for row in body:
        cells = dict(zip(header, row, strict=True))
        for title in ("stain rate (%)", "KID x1000 (± std)", "FD"):
            assert cells[title] == "-"
        assert cells["PSNR (dB)"] in ("22.00", "24.12")
    # the report page of such a summary leaves those rows out
    page = write_html_report(tmp_path / "page", old, [], []).read_text()
    assert "stain rate: pixels" not in page and "KID x 1000 (" not in page
    assert "Fréchet distance, " not in page
    assert "24.12" in page


def test_report_shows_kid_with_its_spread(tmp_path: Path) -> None:
    page = write_html_report(tmp_path, _synthetic_summary("m"), [], []).read_text()
    assert "12.35 ± 2.12" in page  # KID x 1000 ± std
    assert "12.346" in page and "3.12" in page  # FD, stain rate (%)
    assert page.count(">0 (by definition)<") == 3  # the originals' stain, KID, FD


def test_results_table_rejects_other_json(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "summary.json"
    bad.write_text(json.dumps({"epochs": 3}))
    assert results_table_main([str(bad)]) == 2
    assert "not a summary.json" in capsys.readouterr().err


def _saved_summary(folder: Path, summary: dict) -> str:
    """Write `summary` to FOLDER/summary.json (FOLDER is made); returns its path."""
    path = folder / "summary.json"
    path.parent.mkdir()
    path.write_text(json.dumps(summary))
    return str(path)


def test_results_table_shows_renamed_models_under_todays_names(
    tmp_path: Path, capsys
) -> None:
    # a report with two models whose names were swapped since: both renames at once
    summary = _synthetic_summary("default-v2")
    summary["models"]["default"] = dict(summary["models"]["default-v2"], psnr=21.5)
    summary["config"]["weights_sha256"] = {"default-v2": "a" * 64, "default": "b" * 64}
    argv = [
        _saved_summary(tmp_path / "r", summary),
        "--rename",
        "default-v2=default",
        "--rename",
        "default=default-v1",
    ]
    assert results_table_main(argv) == 0
    text = capsys.readouterr().out
    header, _, *body = _table_rows(text)
    shown = {row[1]: dict(zip(header, row, strict=True)) for row in body}
    assert set(shown) == {"gray", "default", "default-v1"}
    assert shown["default"]["PSNR (dB)"] == "24.12"
    assert shown["default-v1"]["PSNR (dB)"] == "21.50"
    assert "`default-v2` as `default`, `default` as `default-v1`" in text
    assert f"weights SHA-256, default-v1: `{'b' * 64}`" in text


def test_results_table_renames_only_the_weights_named_by_sha(
    tmp_path: Path, capsys
) -> None:
    # `default` was shipped with the first model's weights (b...), now default-v1,
    # and later with the second's (c...): only the first's reports change name
    paths = []
    for name, sha in (("first", "b" * 64), ("later", "c" * 64)):
        summary = _synthetic_summary("default")
        summary["config"]["weights_sha256"] = {"default": sha}
        paths.append(_saved_summary(tmp_path / name, summary))
    argv = [
        *paths,
        "--rename",
        "default-v2=default",
        "--rename",
        "default@bbbb=default-v1",
    ]
    assert results_table_main(argv) == 0
    text = capsys.readouterr().out
    _, _, *body = _table_rows(text)
    shown = {(row[0], row[1]) for row in body if row[1] != "gray"}
    assert shown == {("first", "default-v1"), ("later", "default")}
    assert "`default` (weights bbbb...) as `default-v1`" in text


@pytest.mark.parametrize("bad", ["default", "=x", "a=", "a=b a=c", "a@=b", "a@x=b a=c"])
def test_results_table_rejects_a_malformed_rename(tmp_path: Path, capsys, bad) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(_synthetic_summary("m")))
    renames = [x for item in bad.split() for x in ("--rename", item)]
    assert results_table_main([str(path), *renames]) == 2
    assert "--rename" in capsys.readouterr().err


def test_a_report_of_the_weights_shipped_now_keeps_its_name(tmp_path, capsys) -> None:
    from core.weights import read_manifest

    summary = _synthetic_summary("default")
    shipped = read_manifest()["default"]["sha256"]
    summary["config"]["weights_sha256"] = {"default": shipped}
    path = tmp_path / "r" / "summary.json"
    path.parent.mkdir()
    path.write_text(json.dumps(summary))
    assert results_table_main([str(path), "--rename", "default=default-v1"]) == 0
    header, _, *body = _table_rows(capsys.readouterr().out)
    assert [row[1] for row in body] == ["gray", "default"]

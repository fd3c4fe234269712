"""The judge-oracle renderings keep the photo's lightness and change only its chroma as
named; the command writes its table from a real judge run."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from benchmarks import judge_oracles
from core.colorspace import rgb_to_lab
from training.evaluate import gray_baseline


def _photo() -> np.ndarray:
    im = Image.fromarray(skimage.data.coffee())
    return np.asarray(im.resize((120, 80), Image.Resampling.LANCZOS))


def test_renderings_keep_lightness_and_change_chroma_as_named() -> None:
    rgb = _photo()
    out = judge_oracles.render_all(rgb)
    assert list(out)[0] == "grey"
    assert list(out)[1:] == list(judge_oracles.RENDERINGS)
    np.testing.assert_array_equal(out["grey"], gray_baseline(rgb))
    lab = {k: rgb_to_lab(v) for k, v in out.items()}
    truth = rgb_to_lab(rgb)
    for label, got in lab.items():
        assert got.shape == truth.shape, label
        # lightness kept, up to uint8 rounding, and to gamut clipping where a turned
        # hue leaves the sRGB gamut
        bound = 5.0 if "turned" in label else 1.0
        assert np.median(np.abs(got[..., 0] - truth[..., 0])) < bound, label
    # the true chroma round-trips; the others move it as their names say
    assert np.median(np.abs(lab["true chroma"][..., 1:] - truth[..., 1:])) < 1.0
    chroma = np.hypot(truth[..., 1], truth[..., 2]).mean()
    halved = np.hypot(
        lab["true chroma, halved"][..., 1], lab["true chroma, halved"][..., 2]
    )
    assert abs(halved.mean() / chroma - 0.5) < 0.05
    turned = lab["true chroma, hue turned 180 degrees"][..., 1:]
    colourful = np.hypot(truth[..., 1], truth[..., 2]) > 10.0
    sign = np.sign(turned[colourful]) == -np.sign(truth[..., 1:][colourful])
    assert sign.mean() > 0.8
    for label in (
        "true chroma at the model's output resolution",
        "true chroma, blurred (sigma = side / 32)",
    ):
        ab = lab[label][..., 1:]
        # smoother than the truth, with the same mean colour
        assert (
            np.abs(np.diff(ab, axis=1)).mean()
            < np.abs(np.diff(truth[..., 1:], axis=1)).mean()
        )
        np.testing.assert_allclose(
            ab.mean((0, 1)), truth[..., 1:].mean((0, 1)), atol=2.0
        )


@pytest.mark.slow
def test_command_writes_the_table_from_a_judge_run(tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(_photo()).save(folder / "coffee.png")
    out = tmp_path / "oracles.md"
    assert (
        judge_oracles.main(["--data", str(folder), "--no-model", "--out", str(out)])
        == 0
    )
    text = out.read_text()
    assert "1 photos" in text
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    assert len(rows) == 1 + 1 + len(
        judge_oracles.RENDERINGS
    )  # header, grey, renderings
    # the true chroma is the photo itself: the judge agrees with it
    assert "| true chroma | 100.0 | 100.0 | " in text
    # coffee is no animal: the animal column is empty, the other column full
    assert "| true chroma | 100.0 | 100.0 | +0.0 | - | 100.0 |" in text

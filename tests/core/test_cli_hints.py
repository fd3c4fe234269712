"""Hints on the command line: `--hints FILE` and `<stem>.hints.json` sidecars.

The file handling runs on default with random weights and a hint branch that is not
silent (so a hint visibly changes the result); whether a hint moves the colour toward
its own needs trained weights (`trained_hint_colorizer`, skipped without them).
"""

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.colorize import main
from core.colorizer import Colorizer
from core.colorspace import rgb_to_lab
from core.hintfile import hints_to_json
from core.models import create_model, get_spec

BLUE = (30, 60, 230)


@pytest.fixture(autouse=True)
def _restore_logging():
    """Undo the logging setup that main() does for the process."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def trained_weights(
    trained_hint_colorizer: Colorizer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("v2") / "trained-v2.weights.h5"
    trained_hint_colorizer.model.save_weights(path)
    return path


def _grey_photo(path: Path) -> Path:
    """A grey 160 x 120 crop of scikit-image's coffee photo (CC0), with a white cup."""
    rgb = skimage.data.coffee()[::3, ::3][:120, :160]
    lightness = rgb_to_lab(rgb)[..., 0]
    grey = np.round(np.clip(lightness / 100.0, 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey, mode="L").save(path)
    return path


def _write_hints(path: Path, hints) -> Path:
    path.write_text(hints_to_json(hints))
    return path


def _cli(photos, out: Path, weights: Path, *extra: str) -> int:
    args = [str(p) for p in photos]
    return main(
        [*args, "--out", str(out), "--model", "default", "--weights", str(weights)]
        + ["--size", "128", "--quiet", *extra]
    )


def _ab(path: Path, x: int, y: int, r: int = 4) -> np.ndarray:
    """Mean ab of a (2r+1)^2 window of an image file."""
    with Image.open(path) as image:
        lab = rgb_to_lab(np.asarray(image.convert("RGB")))
    return lab[y - r : y + r + 1, x - r : x + r + 1, 1:].reshape(-1, 2).mean(axis=0)


@pytest.mark.slow
def test_a_hints_file_moves_the_colour_at_its_point_toward_its_colour(
    tmp_path, trained_weights, capsys
):
    photo = _grey_photo(tmp_path / "in" / "coffee.png")
    hints = _write_hints(tmp_path / "blue.json", [(80, 60, BLUE)])
    target = rgb_to_lab(np.array([BLUE], np.uint8))[0, 1:]

    assert _cli([photo], tmp_path / "auto", trained_weights) == 0
    assert (
        _cli([photo], tmp_path / "hinted", trained_weights, "--hints", str(hints)) == 0
    )
    assert capsys.readouterr().out.splitlines()[-1] == "1 colorized, 0 failed"

    before = np.linalg.norm(_ab(tmp_path / "auto" / "coffee.png", 80, 60) - target)
    after = np.linalg.norm(_ab(tmp_path / "hinted" / "coffee.png", 80, 60) - target)
    hinted_ab = _ab(tmp_path / "hinted" / "coffee.png", 80, 60)
    cos = hinted_ab @ target / (np.linalg.norm(hinted_ab) * np.linalg.norm(target))
    print(f"ab distance to the hint at its point: {before:.1f} -> {after:.1f}")
    print(f"hue angle to the hint's: {np.degrees(np.arccos(cos)):.1f} degrees")
    # toward the hint: much nearer, and of its hue (the photo's lightness is kept,
    # so a light pixel cannot take a dark blue's full chroma)
    assert after < 0.7 * before
    assert cos > np.cos(np.radians(20))


@pytest.mark.slow
def test_a_point_outside_the_photo_fails_that_photo_and_the_batch_goes_on(
    tmp_path, random_v2_weights, capsys
):
    small = _grey_photo(tmp_path / "in" / "a.png")
    with Image.open(small) as image:
        image.resize((40, 30)).save(tmp_path / "in" / "b.png")
    hints = _write_hints(tmp_path / "h.json", [(1, 1, BLUE), (100, 10, BLUE)])
    out = tmp_path / "out"

    code = _cli([small, tmp_path / "in" / "b.png"], out, random_v2_weights)
    assert code == 0  # no hints anywhere: colorized automatically
    capsys.readouterr()
    code = _cli(
        [small, tmp_path / "in" / "b.png"],
        out,
        random_v2_weights,
        "--hints",
        str(hints),
        "--overwrite",
    )

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines()[-1] == "1 colorized, 1 failed"
    (line,) = [x for x in captured.err.splitlines() if x.startswith("error: ")]
    assert line == (
        f"error: {tmp_path / 'in' / 'b.png'}: {hints}: hint 2 at (100, 10) is "
        "outside the 40x30 photo"
    )


@pytest.mark.slow
def test_a_sidecar_hints_file_is_used_for_its_photo_only(
    tmp_path, random_v2_weights, capsys
):
    root = tmp_path / "in"
    one = _grey_photo(root / "one.png")
    two = _grey_photo(root / "two.png")  # the same photo, without a sidecar
    _write_hints(root / "one.hints.json", [(80, 60, BLUE), (20, 100, (230, 40, 30))])

    assert _cli([root], tmp_path / "out", random_v2_weights) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 colorized, 0 failed"
    with (
        Image.open(tmp_path / "out" / "one.png") as a,
        Image.open(tmp_path / "out" / "two.png") as b,
    ):
        hinted, auto = np.asarray(a).astype(int), np.asarray(b).astype(int)
    assert np.abs(hinted - auto).max() > 0  # the sidecar changed one.png
    assert Image.open(one).size == Image.open(two).size


@pytest.mark.slow
def test_a_bad_sidecar_fails_its_photo_with_one_line(
    tmp_path, random_v2_weights, capsys
):
    root = tmp_path / "in"
    _grey_photo(root / "good.png")
    _grey_photo(root / "bad.png")
    (root / "bad.hints.json").write_text(json.dumps([{"x": 1, "y": 2, "color": "red"}]))

    code = _cli([root], tmp_path / "out", random_v2_weights)

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines()[-1] == "1 colorized, 1 failed"
    (line,) = [x for x in captured.err.splitlines() if x.startswith("error: ")]
    assert line.startswith(f"error: {root / 'bad.png'}: {root / 'bad.hints.json'}: ")
    assert "hint 1: colour must be '#rrggbb', got 'red'" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_hints_with_a_model_without_hint_inputs_is_bad_usage(tmp_path, capsys):
    photo = _grey_photo(tmp_path / "a.png")
    hints = _write_hints(tmp_path / "h.json", [(1, 1, BLUE)])

    code = main(
        [str(photo), "--out", str(tmp_path / "out"), "--model", "default-v1"]
        + ["--hints", str(hints)]
    )

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == (
        "error: --hints needs a model with hint inputs (default); 'default-v1' has "
        "none\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ("[{", "not a JSON hints file"),
        ('[{"x": 1, "y": 2}]', "hint 1: missing 'color'"),
    ],
)
def test_an_unreadable_hints_option_is_bad_usage(tmp_path, capsys, content, expected):
    photo = _grey_photo(tmp_path / "a.png")
    hints = tmp_path / "h.json"
    if content is not None:
        hints.write_text(content)

    code = main(
        [str(photo), "--out", str(tmp_path / "o"), "--model", "default"]
        + ["--hints", str(hints)]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: --hints {hints}: ") and expected in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_a_model_without_hint_inputs_ignores_sidecars_with_a_warning(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    weights = tmp_path / "v1.weights.h5"
    Colorizer(
        create_model("default-v1", pretrained=False), get_spec("default-v1")
    ).model.save_weights(weights)
    photo = _grey_photo(tmp_path / "in" / "a.png")
    _write_hints(tmp_path / "in" / "a.hints.json", [(1, 1, BLUE)])

    code = main(
        [str(photo), "--out", str(tmp_path / "out"), "--model", "default-v1"]
        + ["--weights", str(weights), "--size", "64", "--quiet"]
    )

    captured = capsys.readouterr()
    assert code == 0
    assert (
        f"warning: {tmp_path / 'in' / 'a.hints.json'}: ignored, model 'default-v1' has "
        "no hint inputs" in captured.err
    )

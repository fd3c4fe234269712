"""Tests for the batch command line `python -m core.colorize`.

Real small photos (crops of scikit-image's camera) in tmp_path, and the default model
with random weights: the CLI's file handling is under test, not the colours. The
sampling tests use the shipped cgan (64x64, fast), whose noise seed changes the colours.
"""

import glob
import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.colorize import (
    BatchPlan,
    ColorizeConfig,
    _glob,
    find_images,
    main,
    plan_batch,
    run,
)
from core.colorizer import Colorizer
from core.models import create_model, get_spec, list_models
from tests.bombs import png_claiming

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _seed_and_restore_logging():
    """Seed Keras; undo the logging setup that main() does for the process."""
    keras.utils.set_random_seed(0)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    keras.utils.set_random_seed(0)
    return Colorizer(create_model("default", pretrained=False), get_spec("default"))


@pytest.fixture(scope="module")
def weights_file(
    colorizer: Colorizer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("weights") / "random.weights.h5"
    colorizer.model.save_weights(path)
    return path


def _photo(seed: int, size: tuple[int, int]) -> Image.Image:
    """A grey crop of the camera photo at a seeded offset, resized to size (w, h)."""
    rng = np.random.default_rng(seed)
    camera = skimage.data.camera()
    y, x = rng.integers(0, 256, size=2)
    return Image.fromarray(camera[y : y + 256, x : x + 256]).resize(size)


def _write(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _cfg(out: Path, **kwargs: object) -> ColorizeConfig:
    return ColorizeConfig(out=str(out), size=64, quiet=True, **kwargs)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# --- finding inputs (no model needed) -------------------------------------------


def test_find_images_searches_folders_recursively_case_insensitive(tmp_path):
    root = tmp_path / "photos"
    _write(root / "a.jpg", _photo(0, (40, 32)))
    _write(root / "sub" / "b.PNG", _photo(1, (40, 32)))
    _write(root / "sub" / "deeper" / "c.TiFf", _photo(2, (40, 32)))
    (root / "notes.txt").write_text("not a photo")
    _write(root / ".hidden" / "d.jpg", _photo(3, (40, 32)))
    _write(root / ".e.jpg", _photo(4, (40, 32)))

    files, errors = find_images([str(root)])

    assert errors == []
    assert [p.relative_to(root).as_posix() for p in files] == [
        "a.jpg",
        "sub/b.PNG",
        "sub/deeper/c.TiFf",
    ]


def test_find_images_expands_globs_and_reports_unmatched(tmp_path):
    root = tmp_path / "photos"
    for i, name in enumerate(["x/one.jpg", "x/y/two.jpg", "three.png"]):
        _write(root / name, _photo(i, (40, 32)))
    (tmp_path / "empty").mkdir()

    files, errors = find_images(
        [
            str(root / "**" / "*.jpg"),
            str(tmp_path / "nothing-*.jpg"),
            str(tmp_path / "missing.png"),
            str(tmp_path / "empty"),
        ]
    )

    assert [p.name for p in files] == ["one.jpg", "two.jpg"]
    assert len(errors) == 3
    assert errors[0].startswith(str(tmp_path / "nothing-*.jpg") + ": ")
    assert errors[1].startswith(str(tmp_path / "missing.png") + ": ")
    assert errors[2].startswith(str(tmp_path / "empty") + ": ")


def test_find_images_lists_a_file_found_twice_once(tmp_path):
    path = _write(tmp_path / "a.jpg", _photo(0, (40, 32)))

    files, errors = find_images([str(path), str(tmp_path), str(tmp_path / "*.jpg")])

    assert files == [path]
    assert errors == []


def test_find_images_skips_the_output_folder_inside_an_input_folder(tmp_path):
    _write(tmp_path / "a.jpg", _photo(0, (40, 32)))
    _write(tmp_path / "colorized" / "a.png", _photo(0, (40, 32)))

    files, _ = find_images([str(tmp_path)], skip=tmp_path / "colorized")

    assert [p.name for p in files] == ["a.jpg"]


def test_plan_refuses_a_second_input_with_the_same_stem(tmp_path):
    first = _write(tmp_path / "a" / "photo.jpg", _photo(0, (40, 32)))
    second = _write(tmp_path / "b" / "photo.png", _photo(1, (40, 32)))
    out = tmp_path / "out"

    plan = plan_batch([str(first), str(second)], out)

    assert [(j.source, j.target) for j in plan.jobs] == [(first, out / "photo.png")]
    assert len(plan.errors) == 1
    assert plan.errors[0].startswith(f"{second}: ")
    assert str(first) in plan.errors[0]


def test_plan_names_one_output_per_sample_and_refuses_each_clash(tmp_path):
    first = _write(tmp_path / "a" / "photo.jpg", _photo(0, (40, 32)))
    second = _write(tmp_path / "b" / "photo.png", _photo(1, (40, 32)))
    out = tmp_path / "out"

    plan = plan_batch([str(first), str(second)], out, seed=3, samples=2)

    assert [(j.source, j.target, j.seed) for j in plan.jobs] == [
        (first, out / "photo-s3.png", 3),
        (first, out / "photo-s4.png", 4),
    ]
    assert len(plan.errors) == 2
    for error, name in zip(plan.errors, ["photo-s3.png", "photo-s4.png"], strict=True):
        assert error.startswith(f"{second}: its output {out / name} ")
        assert str(first) in error


def test_plan_with_samples_refuses_an_output_that_is_an_input(tmp_path):
    jpg = _write(tmp_path / "a.jpg", _photo(0, (40, 32)))
    sample = _write(tmp_path / "a-s0.png", _photo(1, (40, 32)))

    plan = plan_batch([str(tmp_path)], tmp_path, samples=2)

    assert [j.target.name for j in plan.jobs] == [
        "a-s0-s0.png",
        "a-s0-s1.png",
        "a-s1.png",
    ]
    assert [j.seed for j in plan.jobs] == [0, 1, 1]
    assert plan.errors == (
        f"{jpg}: its output {sample} would overwrite an input file; "
        "choose another --out",
    )


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.slow
def test_an_input_is_never_overwritten(tmp_path, colorizer, overwrite):
    png = _write(tmp_path / "photo.png", _photo(0, (40, 32)))
    jpg = _write(tmp_path / "other.jpg", _photo(1, (40, 32)))
    same_stem = _write(tmp_path / "other.bmp", _photo(2, (40, 32)))
    before = {p: p.read_bytes() for p in (png, jpg, same_stem)}

    plan = plan_batch([str(tmp_path)], tmp_path)
    done, failed = run(plan, _cfg(tmp_path, overwrite=overwrite), colorizer)

    # photo.png -> photo.png is the input itself; other.bmp's output other.png
    # is new, and other.jpg's output is claimed by it
    assert (done, failed) == (1, 2)
    assert {p: p.read_bytes() for p in before} == before
    assert plan.errors[0].startswith(f"{jpg}: ")
    assert plan.errors[1].startswith(f"{png}: ")
    assert "overwrite the input" in plan.errors[1]


def test_an_input_that_another_output_would_replace_is_refused(tmp_path, colorizer):
    jpg = _write(tmp_path / "photo.jpg", _photo(0, (40, 32)))
    png = _write(tmp_path / "photo.png", _photo(1, (40, 32)))
    before = png.read_bytes()

    plan = plan_batch([str(jpg), str(png)], tmp_path)
    done, failed = run(plan, _cfg(tmp_path, overwrite=True), colorizer)

    assert (done, failed) == (0, 2)
    assert plan.jobs == ()
    assert plan.errors[0].startswith(f"{jpg}: ")
    assert png.read_bytes() == before


# --- colorizing -------------------------------------------------------------------


@pytest.mark.slow
def test_cli_colorizes_a_folder_keeping_names_and_sizes(tmp_path, weights_file, capsys):
    root = tmp_path / "photos"
    sizes = {"a": (40, 32), "b": (33, 57), "c": (64, 17)}
    _write(root / "a.jpg", _photo(0, sizes["a"]))
    _write(root / "sub" / "b.PNG", _photo(1, sizes["b"]))
    grey_alpha = _photo(2, sizes["c"]).convert("LA")
    _write(root / "sub" / "deeper" / "c.png", grey_alpha)
    out = tmp_path / "out"

    code = main(
        [str(root), "--out", str(out), "--weights", str(weights_file), "--size", "64"]
    )

    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.splitlines()[-1] == "3 colorized, 0 failed"
    assert "error" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    for stem, size in sizes.items():
        with Image.open(out / f"{stem}.png") as result:
            assert result.format == "PNG"
            assert result.size == size
            assert result.mode == ("RGBA" if stem == "c" else "RGB")


@pytest.mark.slow
def test_run_expands_a_glob_and_writes_each_match(tmp_path, colorizer):
    root = tmp_path / "photos"
    _write(root / "x" / "one.jpg", _photo(0, (40, 32)))
    _write(root / "x" / "y" / "two.jpg", _photo(1, (24, 45)))
    _write(root / "skip.png", _photo(2, (40, 32)))
    out = tmp_path / "out"

    plan = plan_batch([str(root / "**" / "*.jpg")], out)
    done, failed = run(plan, _cfg(out), colorizer)

    assert (done, failed) == (2, 0)
    assert sorted(p.name for p in out.iterdir()) == ["one.png", "two.png"]
    with Image.open(out / "two.png") as result:
        assert result.size == (24, 45)


@pytest.mark.slow
def test_bad_files_fail_with_one_line_each_while_the_rest_is_colorized(
    tmp_path, weights_file, capsys
):
    root = tmp_path / "in"
    _write(root / "good1.jpg", _photo(0, (40, 32)))
    _write(root / "good2.png", _photo(1, (48, 40)))
    png = _encoded(_photo(2, (40, 32)), "PNG")
    jpeg = _encoded(_photo(3, (40, 32)), "JPEG")
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, len(png) - 72, dtype=np.uint8).tobytes()
    bad = {
        "corrupt.png": png[:60] + garbage + png[-12:],
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "text.jpg": b"this is a text file, not a photo\n",
    }
    for name, data in bad.items():
        (root / name).write_bytes(data)
    _write(root / "huge.png", _photo(4, (80, 80)))  # 6400 pixels > --max-pixels
    out = tmp_path / "out"

    code = main(
        [
            str(root),
            str(tmp_path / "no-such-*.jpg"),
            "--out",
            str(out),
            "--weights",
            str(weights_file),
            "--size",
            "64",
            "--max-pixels",
            "5000",
        ]
    )

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines()[-1] == "2 colorized, 6 failed"
    lines = _error_lines(captured.err)
    assert len(lines) == 6, captured.err
    assert all(line.startswith("error: ") for line in lines)
    assert "Traceback" not in captured.err
    for name in [*bad, "huge.png"]:
        (line,) = [x for x in lines if x.startswith(f"error: {root / name}: ")]
    assert any(str(tmp_path / "no-such-*.jpg") in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.png"]


@pytest.mark.slow
def test_existing_output_is_kept_without_overwrite_and_replaced_with_it(
    tmp_path, colorizer, caplog
):
    source = _write(tmp_path / "in" / "photo.jpg", _photo(0, (40, 32)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"previous result")
    plan = plan_batch([str(source)], out)

    assert run(plan, _cfg(out), colorizer) == (0, 1)
    assert (out / "photo.png").read_bytes() == b"previous result"
    assert "--overwrite" in caplog.text
    assert f"error: {source}: " in caplog.text

    assert run(plan, _cfg(out, overwrite=True), colorizer) == (1, 0)
    with Image.open(out / "photo.png") as result:
        assert result.size == (40, 32)
    assert [p.name for p in out.iterdir()] == ["photo.png"]  # no temporary files


@pytest.mark.slow
def test_run_counts_plan_errors_as_failed(tmp_path, colorizer):
    source = _write(tmp_path / "photo.jpg", _photo(0, (40, 32)))
    out = tmp_path / "out"
    plan = plan_batch([str(source)], out)
    plan = BatchPlan(plan.jobs, ("x.jpg: no such file", "y.jpg: no such file"))

    assert run(plan, _cfg(out), colorizer) == (1, 2)


# --- bad input and leftovers (issue 19, section 4) ---------------------------------


def _colorize_main(inputs: list[Path], out: Path, weights: Path, *extra: str) -> int:
    args = [str(p) for p in inputs] + ["--out", str(out), "--weights", str(weights)]
    return main([*args, "--size", "64", "--quiet", *extra])


@pytest.mark.slow
def test_a_float_tiff_with_a_nan_pixel_fails_instead_of_turning_black(
    tmp_path, weights_file, capsys
):
    values = np.linspace(0.1, 0.9, 40 * 32, dtype=np.float32).reshape(32, 40)
    values[5, 7] = np.nan
    nan = tmp_path / "in" / "photo.tif"
    _write(nan, Image.fromarray(values, mode="F"))
    good = _write(tmp_path / "in" / "good.jpg", _photo(0, (40, 32)))
    out = tmp_path / "out"

    code = _colorize_main([nan, good], out, weights_file)

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines()[-1] == "1 colorized, 1 failed"
    assert _error_lines(captured.err) == [f"error: {nan}: 1 pixel is NaN or infinite"]
    assert [p.name for p in out.iterdir()] == ["good.png"]


@pytest.mark.slow
def test_multi_frame_inputs_are_colorized_from_the_first_frame_with_a_warning(
    tmp_path, weights_file, capsys
):
    frames = [_photo(i, (40, 32)) for i in range(3)]
    tif, gif = tmp_path / "in" / "pages.tif", tmp_path / "in" / "anim.gif"
    tif.parent.mkdir()
    for path in (tif, gif):
        frames[0].save(path, save_all=True, append_images=frames[1:])
    single = _write(tmp_path / "in" / "one.tif", frames[0])
    out = tmp_path / "out"

    code = _colorize_main([tif, gif, single], out, weights_file)

    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.splitlines()[-1] == "3 colorized, 0 failed"
    assert sorted(_error_lines(captured.err)) == [
        f"warning: {gif}: 3 frames, only the first is colorized",
        f"warning: {tif}: 3 frames, only the first is colorized",
    ]
    with Image.open(out / "pages.png") as pages, Image.open(out / "one.png") as one:
        np.testing.assert_array_equal(np.asarray(pages), np.asarray(one))


@pytest.mark.slow
def test_a_decompression_bomb_gets_the_max_pixels_message(
    tmp_path, weights_file, capsys
):
    bomb = tmp_path / "in" / "bomb.png"  # 200 MP, over Pillow's own refusal too
    bomb.parent.mkdir()
    bomb.write_bytes(png_claiming(20_000, 10_000))
    big = tmp_path / "in" / "big.png"  # under Pillow's refusal, over ours
    big.write_bytes(png_claiming(4_000, 3_000))
    out = tmp_path / "out"

    code = _colorize_main([bomb, big], out, weights_file, "--max-pixels", "10000000")

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines()[-1] == "0 colorized, 2 failed"
    assert _error_lines(captured.err) == [
        f"error: {bomb}: 200,000,000 pixels is over the limit of 10,000,000 "
        "(--max-pixels)",
        f"error: {big}: 4000x3000 = 12,000,000 pixels is over the limit of "
        "10,000,000 (--max-pixels)",
    ]


@pytest.mark.slow
def test_stale_temporary_files_in_the_output_folder_are_removed(
    tmp_path, weights_file, capsys
):
    photo = _write(tmp_path / "in" / "photo.jpg", _photo(0, (40, 32)))
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = out / f".old.png.{gone.pid}.k3j_9x2a.tmp"  # left by a kill -9
    fresh = out / f".new.png.{os.getppid()}.abcdefgh.tmp"  # a writer still running
    mine = out / "notes.tmp"
    for path in (stale, fresh, mine):
        path.write_bytes(b"half a png")
        then = time.time() - 3600
        os.utime(path, (then, then))

    assert _colorize_main([photo], out, weights_file) == 0

    assert capsys.readouterr().out.splitlines()[-1] == "1 colorized, 0 failed"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["photo.png", fresh.name, mine.name]
    )


def test_glob_matches_what_python_glob_matches_without_links(tmp_path, monkeypatch):
    for rel in ["a.jpg", "b.png", ".h.jpg", "s/c.jpg", "s/t/d.JPG", "s/.u/e.jpg"]:
        _write(tmp_path / "r" / rel, _photo(0, (8, 8)))
    (tmp_path / "r" / "s" / "notes.txt").write_text("not a photo")
    monkeypatch.chdir(tmp_path)
    patterns = [
        "r/**",
        "r/**/*.jpg",
        "r/**/t/*",
        "r/*/*.jpg",
        "r/s/**/",
        "r/[ab].*",
        "r/?.png",
        "r/.*",
        "**/*.JPG",
        "r/s",
    ]
    for pattern in patterns + [str(tmp_path / p) for p in patterns]:
        expected = sorted(glob.glob(pattern, recursive=True))
        assert [os.path.normpath(p) for p in _glob(pattern)] == [
            os.path.normpath(p) for p in expected
        ], pattern
    # glob.glob gives "r/missing/" here, which is no file or folder either
    assert _glob("r/missing/**") == []


@pytest.mark.slow
def test_symlink_loops_do_not_hang_the_cli(tmp_path, weights_file):
    root = tmp_path / "loop"
    _write(root / "a.jpg", _photo(0, (40, 32)))
    _write(root / "sub" / "b.png", _photo(1, (24, 45)))
    (root / "self").symlink_to(".")
    (root / "sub" / "back").symlink_to("..")
    (root / "sub" / "again").symlink_to("../sub")
    (root / "sub" / "broken").symlink_to("missing")
    (root / "sub" / "ring").symlink_to("ring")  # a link to itself
    args = ["loop/**", "loop", "loop/**/*.png", "--out", "o", "--size", "64"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}

    # Python's own glob never returns on this folder; the timeout is a safety net,
    # far above the run's time on a loaded machine
    done = subprocess.run(
        [sys.executable, "-m", "core.colorize", *args, "--weights", str(weights_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "2 colorized, 0 failed"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.png", "b.png"]


# --- sampling models ---------------------------------------------------------------


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.mark.slow
def test_cli_samples_one_png_per_seed_and_the_same_seed_repeats(tmp_path, capsys):
    photo = _write(tmp_path / "in" / "photo.jpg", _photo(0, (40, 32)))
    names = ["photo-s5.png", "photo-s6.png", "photo-s7.png"]
    runs = {}
    for out in (tmp_path / "out1", tmp_path / "out2"):
        args = [str(photo), "--out", str(out), "--model", "cgan", "--quiet"]
        code = main([*args, "--samples", "3", "--seed", "5"])

        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert captured.out.splitlines()[-1] == "3 colorized, 0 failed"
        assert sorted(p.name for p in out.iterdir()) == names
        runs[out.name] = {name: _pixels(out / name) for name in names}

    for name in names:
        assert runs["out1"][name].shape == (32, 40, 3)
        np.testing.assert_array_equal(runs["out1"][name], runs["out2"][name])
    samples = list(runs["out1"].values())
    assert any(
        not np.array_equal(samples[i], samples[j]) for i, j in [(0, 1), (0, 2), (1, 2)]
    )

    single = tmp_path / "single"
    code = main([str(photo), "--out", str(single), "--model", "cgan", "--seed", "5"])

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 colorized, 0 failed"
    assert [p.name for p in single.iterdir()] == ["photo.png"]
    np.testing.assert_array_equal(
        _pixels(single / "photo.png"), runs["out1"]["photo-s5.png"]
    )


def test_cli_samples_of_a_same_stem_input_fail_without_overwriting(tmp_path, capsys):
    first = _write(tmp_path / "a" / "photo.jpg", _photo(0, (40, 32)))
    second = _write(tmp_path / "b" / "photo.jpg", _photo(1, (24, 45)))
    out = tmp_path / "out"

    code = main(
        [str(first), str(second), "--out", str(out), "--model", "cgan"]
        + ["--samples", "2", "--quiet"]
    )

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines()[-1] == "2 colorized, 2 failed"
    lines = _error_lines(captured.err)
    assert len(lines) == 2, captured.err
    assert all(line.startswith(f"error: {second}: ") for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["photo-s0.png", "photo-s1.png"]
    for name in ("photo-s0.png", "photo-s1.png"):
        with Image.open(out / name) as result:
            assert result.size == (40, 32)  # first's, not second's (24, 45)


# --- usage --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model", "nope"], "error: unknown model 'nope'; known models: default"),
        (["--size", "0"], "error: --size must be between 32 and 2048, got 0"),
        (["--size", "4096"], "error: --size must be between 32 and 2048"),
        (["--saturation", "-1"], "error: --saturation"),
        (["--max-pixels", "0"], "error: --max-pixels"),
        (["--seed", "-1"], "error: --seed must be >= 0, got -1"),
        (["--samples", "0"], "error: --samples must be at least 1, got 0"),
        (["--samples", "2"], "error: --samples 2 needs a sampling model (cgan)"),
        (["--model", "cgan", "--samples", "0"], "error: --samples"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path, capsys, args, expected):
    photo = _write(tmp_path / "a.jpg", _photo(0, (40, 32)))

    code = main([str(photo), "--out", str(tmp_path / "out"), *args])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert len(_error_lines(captured.err)) == 1
    assert captured.err.startswith(expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("with_out", [True, False])
def test_missing_inputs_or_out_exit_2(tmp_path, capsys, with_out):
    args = ["--out", str(tmp_path)] if with_out else [str(tmp_path)]

    code = main(args)

    captured = capsys.readouterr()
    assert code == 2
    assert len(_error_lines(captured.err)) == 1
    assert captured.err.startswith("error: ")


def test_argparse_errors_exit_2(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path), "--size", "big"]) == 2
    assert "invalid int value" in capsys.readouterr().err


@pytest.mark.slow
def test_missing_or_corrupt_weights_exit_2_with_one_line(tmp_path, capsys):
    photo = _write(tmp_path / "a.jpg", _photo(0, (40, 32)))
    corrupt = tmp_path / "corrupt.weights.h5"
    corrupt.write_text("not weights")
    out = tmp_path / "out"

    for weights in (tmp_path / "absent.weights.h5", corrupt):
        code = main([str(photo), "--out", str(out), "--weights", str(weights)])

        captured = capsys.readouterr()
        assert code == 2
        lines = _error_lines(captured.err)
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("error: ")
        assert str(weights) in lines[0]
        assert "Traceback" not in captured.err
    assert not out.exists()


def test_list_models_needs_no_inputs(capsys):
    assert main(["--list-models"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_models()
    for name, line in zip(list_models(), lines, strict=True):
        assert "weights" in line
        assert line.endswith(get_spec(name).description)


def test_help_describes_the_options(capsys):
    assert main(["--help"]) == 0

    text = capsys.readouterr().out
    assert text.startswith("usage: python -m core.colorize")
    for option in (
        "--out",
        "--model",
        "--weights",
        "--size",
        "--seed",
        "--samples",
        "--overwrite",
    ):
        assert option in text
    assert "exit status" in text

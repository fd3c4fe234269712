"""`python -m survey.create` on real small photos (scikit-image's samples) with fakes
from a folder, and once with a random-weights Colorizer.
"""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.color
import skimage.data
from PIL import Image
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.imageio import ImageLoadError
from survey import create, service
from survey.create import CreateConfig, create_study, fakes_from_colorizer, main
from survey.db import create_engine
from survey.models import Image as StoredImage
from survey.models import Pair, Study
from tests.survey.conftest import T0

REPO = Path(__file__).resolve().parents[2]
PHOTOS = {
    "astronaut": (skimage.data.astronaut, ".jpg"),
    "coffee": (skimage.data.coffee, ".png"),
    "chelsea": (skimage.data.chelsea, ".jpg"),
    "rocket": (skimage.data.rocket, ".png"),
    "cells": (skimage.data.immunohistochemistry, ".jpg"),
    "wheel": (skimage.data.colorwheel, ".png"),
}


def _small(rgb: np.ndarray, longer: int = 96) -> Image.Image:
    image = Image.fromarray(rgb)
    scale = longer / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)))


def _rotate_channels(image: Image.Image) -> Image.Image:
    """The stand-in fake: R, G, B -> B, R, G."""
    r, g, b = image.convert("RGB").split()
    return Image.merge("RGB", (b, r, g))


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """Six colour photos, a grey one, a corrupt one and a hidden one."""
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for i, (stem, (load, suffix)) in enumerate(PHOTOS.items()):
        _small(load()).save(folder / ("more" if i % 2 else "") / f"{stem}{suffix}")
    _small(skimage.data.camera()).save(folder / "camera.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _small(skimage.data.astronaut()).save(folder / ".hidden.png")
    return folder


def _write_fakes(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    """Fakes at twice the photo's size (create must scale them to the photo's)."""
    folder.mkdir(parents=True)
    for stem, (load, _suffix) in PHOTOS.items():
        if stem not in skip:
            _rotate_channels(_small(load(), 192)).save(folder / f"{stem}.png")
    return folder


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _run(tmp_path: Path, photo_dir: Path, *extra: str) -> int:
    return main(
        [
            "--name",
            "pilot",
            "--photos",
            str(photo_dir),
            "--per-model",
            "2",
            "--attention-checks",
            "1",
            "--practice-trials",
            "1",
            "--size",
            "64",
            "--db",
            f"sqlite:///{tmp_path / 'survey.db'}",
            *extra,
        ]
    )


def test_create_with_ready_made_fakes(tmp_path: Path, photo_dir: Path, capsys) -> None:
    fakes = _write_fakes(tmp_path / "fakes")
    assert _run(tmp_path, photo_dir, "--model", "zhang", "--fakes", str(fakes)) == 0
    out, err = capsys.readouterr()
    assert "study pilot: 4 photos x 1 models (zhang)" in out
    assert "each participant answers 4 pairs; 2 photos skipped" in out
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors)
    assert any("camera.png: not a colour photo" in line for line in errors)
    assert any("broken.jpg" in line for line in errors)

    engine = create_engine(f"sqlite:///{tmp_path / 'survey.db'}")
    with Session(engine) as session:
        pairs = session.scalars(select(Pair)).all()
        images = {im.id: im for im in session.scalars(select(StoredImage))}
        assert sorted(p.kind for p in pairs) == [
            "attention",
            "practice",
            "test",
            "test",
            "test",
            "test",
        ]
        assert {p.photo for p in pairs} <= {
            f"{'more/' if i % 2 else ''}{stem}{suffix}"
            for i, (stem, (_load, suffix)) in enumerate(PHOTOS.items())
        }
        for pair in pairs:
            real = images[pair.real_image_id]
            fake = images[pair.fake_image_id]
            assert (real.width, real.height) == (fake.width, fake.height)
            assert max(real.width, real.height) == 64
            real_rgb, fake_rgb = _decode(real.data), _decode(fake.data)
            if pair.kind == "attention":
                assert (fake_rgb == fake_rgb[..., :1]).all()  # plainly grey
            else:  # the fake of this very photo: its channels rotated
                rotated = real_rgb[..., [2, 0, 1]]
                assert np.abs(fake_rgb - rotated).mean() < 12
            for data in (real.data, fake.data):
                assert data.startswith(b"\x89PNG") and b"tEXt" not in data
                assert all(stem.encode() not in data for stem in PHOTOS)
    engine.dispose()


def test_create_refuses_an_existing_study_name(
    tmp_path: Path, photo_dir: Path, capsys
) -> None:
    fakes = _write_fakes(tmp_path / "fakes")
    args = ("--model", "zhang", "--fakes", str(fakes))
    assert _run(tmp_path, photo_dir, *args) == 0
    capsys.readouterr()
    assert _run(tmp_path, photo_dir, *args, "--seed", "5") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: a study named 'pilot' already exists")
    engine = create_engine(f"sqlite:///{tmp_path / 'survey.db'}")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 1
        assert session.scalar(select(Study.seed)) == 0
    engine.dispose()


def test_create_two_models_from_subfolders(
    tmp_path: Path, photo_dir: Path, capsys
) -> None:
    fakes = tmp_path / "fakes"
    _write_fakes(fakes / "m1")
    _write_fakes(fakes / "m2", skip=("coffee",))
    args = ["--model", "m1", "--model", "m2", "--fakes", str(fakes)]
    code = _run(tmp_path, photo_dir, *args, "--per-model", "1")
    assert code == 0, capsys.readouterr().err
    engine = create_engine(f"sqlite:///{tmp_path / 'survey.db'}")
    with Session(engine) as session:
        pairs = session.scalars(select(Pair)).all()
        tests = [p for p in pairs if p.kind == "test"]
        assert {p.model for p in tests} == {"m1", "m2"}
        by_photo = {
            p.photo: {q.model for q in tests if q.photo == p.photo} for p in tests
        }
        assert all(models == {"m1", "m2"} for models in by_photo.values())
        assert not any(p.model == "m2" and "coffee" in p.photo for p in pairs)
        token = service.start_participant(session, "pilot", now=T0)
        assert service.describe_study(session, "pilot").trials == 1 + 1 + 2
        view = service.next_trial(session, token, now=T0)
        assert view.number == 1 and view.is_practice
    engine.dispose()


def test_create_uses_at_most_max_photos(
    tmp_path: Path, photo_dir: Path, capsys
) -> None:
    fakes = _write_fakes(tmp_path / "fakes")
    args = ("--model", "zhang", "--fakes", str(fakes), "--max-photos", "4")
    assert _run(tmp_path, photo_dir, *args) == 0
    assert "study pilot: 2 photos x 1 models" in capsys.readouterr().out
    engine = create_engine(f"sqlite:///{tmp_path / 'survey.db'}")
    with Session(engine) as session:
        assert len(set(session.scalars(select(Pair.photo)))) == 4
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "z", "--per-model", "9"], "needs 11; add photos"),
        (["--model", "z", "--name", "../etc"], "--name must be"),
        (["--model", "z", "z"], "lists a model twice"),
        (["--model", "z", "--size", "8"], "--size must be between"),
        (["--model", "z", "--display-ms", "-1"], "--display-ms must be >= 0"),
    ],
)
def test_create_usage_errors_exit_2(
    tmp_path: Path, photo_dir: Path, capsys, args: list[str], message: str
) -> None:
    fakes = _write_fakes(tmp_path / "fakes")
    assert _run(tmp_path, photo_dir, "--fakes", str(fakes), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]


def test_create_unknown_model_without_fakes(
    tmp_path: Path, photo_dir: Path, capsys
) -> None:
    assert _run(tmp_path, photo_dir, "--model", "no-such-model") == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_create_with_fakes_does_not_load_tensorflow(
    tmp_path: Path, photo_dir: Path
) -> None:
    fakes = _write_fakes(tmp_path / "fakes")
    args = [
        "--name=pilot",
        f"--photos={photo_dir}",
        "--model=zhang",
        f"--fakes={fakes}",
        "--per-model=2",
        "--size=64",
        "--attention-checks=1",
        "--practice-trials=1",
        f"--db=sqlite:///{tmp_path / 'survey.db'}",
    ]
    code = (
        "import sys\n"
        "from survey.create import main\n"
        f"rc = main({args!r})\n"
        "sys.exit(rc or ('tensorflow' in sys.modules and 99))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_create_with_a_random_weights_colorizer(
    tmp_path: Path, random_colorizer
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _small(skimage.data.chelsea(), 80).save(photos / "cat.png")
    _small(skimage.data.coffee(), 80).save(photos / "cup.jpg")
    cfg = CreateConfig(
        name="colorizer",
        photos=str(photos),
        model=("default-v1",),
        per_model=2,
        attention_checks=0,
        practice_trials=0,
        size=64,
        db=f"sqlite:///{tmp_path / 'survey.db'}",
    )
    summary = create_study(
        cfg, fake_sources={"default-v1": fakes_from_colorizer(random_colorizer, 64)}
    )
    assert (summary.test_photos, summary.trials_per_participant) == (2, 2)
    engine: Engine = create_engine(cfg.db)
    with Session(engine) as session:
        for pair in session.scalars(select(Pair)):
            real = session.get_one(StoredImage, pair.real_image_id)
            fake = session.get_one(StoredImage, pair.fake_image_id)
            assert (real.width, real.height) == (fake.width, fake.height) == (64, 42)
            # the Colorizer keeps the photo's lightness and changes only its colours
            real_rgb, fake_rgb = _decode(real.data), _decode(fake.data)
            real_l = skimage.color.rgb2lab(real_rgb.astype(np.uint8))[..., 0]
            fake_l = skimage.color.rgb2lab(fake_rgb.astype(np.uint8))[..., 0]
            assert np.abs(real_l - fake_l).mean() < 3.0
            assert not np.array_equal(real_rgb, fake_rgb)
    engine.dispose()


def test_a_sepia_photo_is_no_real_photo_of_a_study(tmp_path):
    """The survey tells colour photos as the demo does (core.colourcheck)."""
    from core import colourcheck

    assert create.is_color_photo is colourcheck.is_color_photo
    grey = skimage.data.camera()[::4, ::4].astype(np.float64)
    sepia = np.clip(grey[..., None] * [1.0, 0.95, 0.85], 0, 255).astype(np.uint8)
    Image.fromarray(sepia).save(tmp_path / "sepia.png")
    with pytest.raises(ImageLoadError, match="not a colour photo"):
        create.load_photo(tmp_path / "sepia.png", 128)

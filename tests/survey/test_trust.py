"""Issue 19 for the survey: served bytes that only the pixels tell apart, photos that
leave the page when their time is up, a participant's page with the survey alone,
a limit on admin-token guesses, and CSV cells that spreadsheets do not run.
"""

import base64
import io
import json
import logging
import re
import socket
from pathlib import Path

import gradio as gr
import httpx
import numpy as np
import pandas as pd
import pytest
import skimage.data
from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from survey import service
from survey.create import CreateConfig, build_study
from survey.encoding import (
    PNG_SIGNATURE,
    encode_png,
    encoded_length,
    is_canonical,
    png_chunks,
)
from survey.export import ExportConfig, csv_bytes, escape_cell, export_trials
from survey.models import Image as ImageRow
from survey.models import Pair, Study
from survey.server import build_survey_app, launch_survey
from survey.throttle import AdminGate, FailureLimiter
from survey.ui import Visit, answer, consent, hide_photos, open_page, results_page
from tests.survey.conftest import StudyMaker

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
ADMIN = "a-long-admin-token-123"
HTTP_TIMEOUT_S = 300  # a safety net, far above a request's time under load
IDAT_DATA = len(PNG_SIGNATURE) + 25 + 8  # where the IDAT's zlib stream begins


def _photos(size: int = 64) -> dict[str, tuple[str, Image.Image]]:
    """Real colour photos from scikit-image, scaled down (keys as under --photos)."""
    photos = {
        "astronaut": skimage.data.astronaut(),
        "cat": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "rocket": skimage.data.rocket(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
        "retina": skimage.data.retina(),
        "hubble": skimage.data.hubble_deep_field(),
        "immuno": skimage.data.immunohistochemistry(),
    }
    reals = {}
    for stem, rgb in photos.items():
        image = Image.fromarray(rgb)
        image.thumbnail((size, size))
        reals[f"photos/{stem}.jpg"] = (stem, image)
    return reals


def _washed_out(_stem: str, real: Image.Image) -> Image.Image:
    """A fake that compresses better than its photo, as colorizations do."""
    return Image.blend(real, real.convert("L").convert("RGB"), 0.6)


def _blurred(_stem: str, real: Image.Image) -> Image.Image:
    return real.resize((real.width // 4, real.height // 4)).resize(real.size)


@pytest.fixture
def real_study(engine: Engine) -> str:
    """A study of scikit-image photos: 2 models, grey attention checks, practice."""
    cfg = CreateConfig(
        name="real",
        photos="photos",
        model=("washed", "blurred"),
        per_model=2,
        attention_checks=2,
        practice_trials=2,
        display_ms=1000,
    )
    with Session(engine) as session, session.begin():
        build_study(
            session,
            cfg,
            _photos(),
            {"washed": _washed_out, "blurred": _blurred},
        )
    return "real"


def _stored_pairs(engine: Engine, study: str) -> list[tuple[bytes, bytes, str]]:
    """(real bytes, fake bytes, kind) of every pair of the study, as stored."""
    with Session(engine) as session:
        pairs = session.scalars(
            select(Pair).join(Study).where(Study.name == study).order_by(Pair.id)
        ).all()
        return [
            (
                session.get_one(ImageRow, pair.real_image_id).data,
                session.get_one(ImageRow, pair.fake_image_id).data,
                pair.kind,
            )
            for pair in pairs
        ]


def _pixel_positions(data: bytes) -> set[int]:
    """Offsets of the bytes that depend on pixels: the pixel bytes themselves (filter
    bytes and block headers excluded), Adler-32 and the IDAT's CRC."""
    width, height = (int.from_bytes(data[i : i + 4], "big") for i in (16, 20))
    stride = 1 + 3 * width
    raw_length = height * stride
    positions = set()
    at = IDAT_DATA + 2  # after the zlib header
    done = 0
    while done < raw_length:
        block = min(65_535, raw_length - done)
        at += 5  # block header: final flag, LEN, NLEN
        for i in range(block):
            if (done + i) % stride:  # not a row's filter byte
                positions.add(at + i)
        at += block
        done += block
    positions.update(range(at, at + 4 + 4))  # Adler-32, then IDAT's CRC
    return positions


def test_encoding_keeps_pixels_and_its_length_depends_on_size_only() -> None:
    rng = np.random.default_rng(0)
    flat = np.zeros((70, 300, 3), np.uint8)  # compresses to almost nothing
    noise = rng.integers(0, 256, (70, 300, 3), dtype=np.uint8)  # not at all
    for rgb in (flat, noise, skimage.data.astronaut()[:70, :300]):
        data = encode_png(Image.fromarray(rgb))
        assert len(data) == encoded_length(300, 70)
        assert png_chunks(data) == [
            (b"IHDR", 13),
            (b"IDAT", len(data) - IDAT_DATA - 16),
            (b"IEND", 0),
        ]
        with Image.open(io.BytesIO(data)) as back:
            assert back.format == "PNG" and back.mode == "RGB" and back.info == {}
            assert np.array_equal(np.asarray(back), rgb)
        assert is_canonical(data, 300, 70)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    assert not is_canonical(buffer.getvalue(), 300, 70)


def test_every_pair_of_a_created_study_has_equal_length_and_format(
    engine: Engine, real_study: str
) -> None:
    pairs = _stored_pairs(engine, real_study)
    assert {kind for *_, kind in pairs} == {"test", "attention", "practice"}
    for real, fake, _kind in pairs:
        assert real != fake
        assert len(real) == len(fake)
        with Image.open(io.BytesIO(real)) as a, Image.open(io.BytesIO(fake)) as b:
            assert (a.format, a.mode, a.size, a.info) == (b.format, b.mode, b.size, {})
    # what compressed PNGs would have given away: the fake is the smaller file
    smaller = 0
    for real, fake, _kind in pairs:
        sizes = []
        for data in (real, fake):
            buffer = io.BytesIO()
            Image.open(io.BytesIO(data)).save(buffer, format="PNG", compress_level=6)
            sizes.append(len(buffer.getvalue()))
        smaller += sizes[1] < sizes[0]
    assert smaller == len(pairs)  # so this study would have exposed every fake


def _without(data: bytes, positions: set[int]) -> bytes:
    return bytes(b for i, b in enumerate(data) if i not in positions)


def _features(data: bytes) -> dict[str, object]:
    """What a participant could read off the served bytes without looking."""
    return {
        "length": len(data),
        "header": data[: IDAT_DATA + 2],
        "chunks": png_chunks(data),
        "non-pixel bytes": _without(data, _pixel_positions(data)),
    }


def test_no_served_byte_feature_separates_real_from_fake(
    engine: Engine, real_study: str
) -> None:
    """Every feature is equal within every served pair, so a rule built on it (e.g.
    "the smaller file is the fake") can only guess: it is at chance."""
    page = consent(engine, open_page(engine, real_study, None).visit, True)
    served = 0
    while page.step == "trial":
        left, right = (base64.b64decode(b) for b in DATA_URI.findall(page.body))
        for name, value in _features(left).items():
            assert _features(right)[name] == value, name
        pairs = enumerate(zip(left, right, strict=True))
        differing = {i for i, (a, b) in pairs if a != b}
        assert differing and differing <= _pixel_positions(left)
        served += 1
        page = answer(engine, page.visit, "left")
    assert page.step == "done" and served == 8  # 2 practice, 2 checks, 2 x 2 tests


def test_an_older_study_stored_compressed_is_served_at_equal_length(
    engine: Engine, make_study: StudyMaker, tmp_path: Path
) -> None:
    """Images stored before the equal-length encoding (compressed, of different
    lengths) are re-encoded when served, and the results say so."""
    make_study("old")
    cat = np.asarray(_photos()["photos/cat.jpg"][1])[:12, :16]
    pictures = (Image.fromarray(cat), Image.new("RGB", (16, 12), (200, 40, 40)))
    with Session(engine) as session, session.begin():
        study = session.scalars(select(Study).where(Study.name == "old")).one()
        rows = []
        for picture in pictures:
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG", compress_level=9)
            rows.append(
                ImageRow(study_id=study.id, width=16, height=12, data=buffer.getvalue())
            )
        session.add_all(rows)
        session.flush()
        real_id, fake_id = (row.id for row in rows)
        session.add(
            Pair(
                study_id=study.id,
                photo="legacy.jpg",
                model="m1",
                kind="practice",
                real_image_id=real_id,
                fake_image_id=fake_id,
            )
        )
    with Session(engine) as session:
        stored = [session.get_one(ImageRow, i).data for i in (real_id, fake_id)]
        served = [service.get_image_bytes(session, i) for i in (real_id, fake_id)]
        assert len(stored[0]) != len(stored[1])
        assert len(served[0]) == len(served[1]) == encoded_length(16, 12)
        for before, after in zip(stored, served, strict=True):
            assert np.array_equal(
                np.asarray(Image.open(io.BytesIO(before)).convert("RGB")),
                np.asarray(Image.open(io.BytesIO(after))),
            )
        assert service.legacy_images(session, "old") == 2
    gate = AdminGate(ADMIN)
    shown = results_page(engine, gate, ADMIN, "old", False, tmp_path)
    assert "2 images of this study were stored as compressed PNG" in shown.html
    make_study("new")
    fresh = results_page(engine, gate, ADMIN, "new", False, tmp_path)
    assert "compressed PNG" not in fresh.html


# ---------------------------------------------------------------- display time


def test_after_the_display_time_the_page_holds_no_photo(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()  # display time 800 ms
    page = consent(engine, open_page(engine, "pilot", None).visit, True)
    view = page.visit.view
    assert view is not None and view.number == 1 and view.display_ms == 800
    assert len(DATA_URI.findall(page.body)) == 2
    # a tick of the other pairs' timer changes nothing
    assert hide_photos(page.visit, parity=0) is None
    hidden = hide_photos(page.visit, parity=1)
    assert hidden is not None and hidden.step == "trial"
    assert "data:" not in hidden.body and "<img" not in hidden.body
    assert 'data-photos="hidden"' in hidden.body and "Time is up" in hidden.body
    assert 'data-number="1"' in hidden.body
    # the answer still counts, and the next pair comes with its photos
    after = answer(engine, hidden.visit, "left")
    assert after.visit.view.number == 2 and len(DATA_URI.findall(after.body)) == 2
    # a late tick for pair 1 (odd) does not hide pair 2
    assert hide_photos(after.visit, parity=1) is None
    assert hide_photos(Visit(), parity=1) is None


# ---------------------------------------------------------------- admin token


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_admin_tokens_are_limited_per_client_and_logged_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    gate = AdminGate(ADMIN, FailureLimiter(max_failures=5, window_s=60, clock=clock))
    caplog.set_level(logging.WARNING, logger="survey.throttle")
    for i in range(5):
        clock.now += 1
        with pytest.raises(Exception, match="Wrong admin token"):
            gate.check(f"guess-{i}", "198.51.100.1")
    # locked out: even the right token is not compared
    for _ in range(3):
        with pytest.raises(Exception, match=r"Too many .* Try again in 56 seconds"):
            gate.check(ADMIN, "198.51.100.1")
    gate.check(ADMIN, "198.51.100.2")  # another client is not affected
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6  # 5 wrong tokens, 1 lockout; no line per refusal
    assert all("\n" not in line for line in lines)
    assert all(r.exc_info is None for r in caplog.records)
    assert "198.51.100.1 (5 of 5 allowed in 60 s)" in lines[4]
    assert "locked out" in lines[5]
    # once the first failure is a window old, one more guess is allowed
    clock.now += 56
    gate.check(ADMIN, "198.51.100.1")
    with pytest.raises(Exception, match="Wrong admin token"):
        gate.check("again", "198.51.100.1")
    with pytest.raises(Exception, match="Too many"):
        gate.check(ADMIN, "198.51.100.1")


def test_results_page_refuses_a_locked_out_client_without_a_traceback(
    engine: Engine, make_study: StudyMaker, tmp_path: Path
) -> None:
    make_study()
    gate = AdminGate(ADMIN, FailureLimiter(max_failures=2, window_s=60))
    for _ in range(2):
        with pytest.raises(gr.Error, match="Wrong admin token") as refused:
            results_page(engine, gate, "wrong", "pilot", False, tmp_path, "c1")
        assert refused.value.print_exception is False
    with pytest.raises(gr.Error, match="Too many wrong admin tokens") as refused:
        results_page(engine, gate, ADMIN, "pilot", False, tmp_path, "c1")
    assert refused.value.print_exception is False
    assert results_page(engine, gate, ADMIN, "pilot", False, tmp_path, "c2").csv


# ---------------------------------------------------------------- CSV injection


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("photos/cat.jpg", "photos/cat.jpg"),
        ("a=b", "a=b"),
        (-3, -3),
    ],
)
def test_escape_cell(cell: object, written: object) -> None:
    assert escape_cell(cell) == written


def test_csv_exports_escape_formula_cells(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    names = ["=cmd|' /C calc'!A0", "+SUM(1)", "-1+2", "@x", "plain"]
    reals = {
        f"{name}": (
            f"p{i}",
            Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8)),
        )
        for i, name in enumerate(names)
    }
    cfg = CreateConfig(
        name="evil",
        photos="photos",
        model=("=1+1",),
        per_model=5,
        attention_checks=0,
        practice_trials=0,
        display_ms=0,
    )
    with Session(engine) as session, session.begin():
        build_study(session, cfg, reals, {"=1+1": lambda _stem, real: real.rotate(180)})
    page = consent(engine, open_page(engine, "evil", None).visit, True)
    while page.step == "trial":
        page = answer(engine, page.visit, "left")
    out = export_trials(
        ExportConfig(study="evil", db=db_url, out=str(tmp_path / "e.csv"))
    )
    shown = results_page(engine, AdminGate(ADMIN), ADMIN, "evil", False, tmp_path)
    for path in (out, shown.csv):
        table = pd.read_csv(path, keep_default_na=False)
        assert sorted(table["photo"]) == sorted(
            "'" + n if n[0] in "=+-@" else n for n in names
        )
        assert set(table["model"]) == {"'=1+1"}
        assert table["response_ms"].dtype == np.int64  # numbers stay numbers
        for line in path.read_text().splitlines()[1:]:
            assert not any(
                cell.startswith(("=", "+", "-", "@")) for cell in line.split(",")
            )
    plain = pd.DataFrame({"n": [-1, 2], "s": ["-x", "y"]})
    assert csv_bytes(plain) == b"n,s\n-1,'-x\n2,y\n"


# ---------------------------------------------------------------- the served pages


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def survey_url(engine: Engine, db_url: str, make_study: StudyMaker):
    """The survey's own server (`survey.server`) with an admin token, in this
    process; closed at the end."""
    make_study()
    app = build_survey_app(db_url, ADMIN)
    try:
        yield launch_survey(app, "127.0.0.1", _free_port()).rstrip("/")
    finally:
        app.close()


def _page_config(url: str) -> tuple[str, dict]:
    """The HTML of a page and the Gradio config it carries."""
    page = httpx.get(url, timeout=HTTP_TIMEOUT_S).text
    config = json.loads(
        re.search(r"window\.gradio_config = (\{.*?\});</script>", page, re.S).group(1)
    )
    return page, config


def test_the_participant_page_holds_the_survey_alone(survey_url: str) -> None:
    html, config = _page_config(survey_url + "/?study=pilot")
    ids = {c["props"].get("elem_id") for c in config["components"]}
    assert "survey-pair" in ids and "survey-start" in ids
    assert "survey-admin-token" not in ids and "survey-results" not in ids
    assert not any(c["type"] == "tabs" for c in config["components"])
    # no title, model description or tab of the colorization app
    assert config["title"] == "Photo survey"
    assert "coloriz" not in html.lower() and "model" not in html.lower()
    apis = {d.get("api_name") for d in config["dependencies"]}
    assert "survey_results" not in apis
    _, admin = _page_config(survey_url + "/admin")
    admin_ids = {c["props"].get("elem_id") for c in admin["components"]}
    assert "survey-admin-token" in admin_ids and "survey-pair" not in admin_ids


def test_wrong_tokens_over_http_are_locked_out_with_one_line_each(
    survey_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    def ask(token: str) -> str:
        response = httpx.post(
            f"{survey_url}/gradio_api/run/survey_results",
            json={"data": [token, None, False], "session_hash": "attacker"},
            timeout=HTTP_TIMEOUT_S,
        )
        return response.text

    answers = [ask(f"guess-{i}") for i in range(5)] + [ask(ADMIN)]
    assert all("Wrong admin token" in a for a in answers[:5])
    assert "Too many wrong admin tokens" in answers[5]
    assert "survey-summary" not in answers[5]
    err = capfd.readouterr().err
    assert "Traceback" not in err

"""The Turing test in a real browser: Debian's Chromium, headless, driven by Playwright.

The survey's own server (`survey.server`, as `app.py` starts it) runs on a study of
scikit-image photos and ready-made fakes (no colorization needed). A participant opens
the study's link, consents, answers every pair by clicking (they spot the grey
attention check, and reload once half way), sees their score; then the results page,
opened with the admin token, shows the counts the database holds.
Screenshots are saved in the test's temporary folder (`pytest --basetemp DIR` keeps
them somewhere known).
"""

import base64
import io
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skimage.data
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.create import CreateConfig, build_study
from survey.db import create_engine, init_db
from survey.models import Trial
from survey.server import build_survey_app, launch_survey
from tests.browser import NEEDS_CHROMIUM, open_page

ADMIN = "secret"
# long enough that a loaded machine reads each pair (and reloads the page) before its
# photos go; the test waits this long once
DISPLAY_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # Chromium and a running app
    NEEDS_CHROMIUM,
    # Gradio's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _washed_out(_stem: str, real: Image.Image) -> Image.Image:
    """A ready-made fake: the photo with 60 % of its colour drained."""
    return Image.blend(real, real.convert("L").convert("RGB"), 0.6)


@pytest.fixture
def study_db(tmp_path: Path) -> Iterator[str]:
    """A SQLite file holding the study "pilot": 2 models, 4 pairs per participant."""
    url = f"sqlite:///{tmp_path / 'survey.db'}"
    photos = {
        "astronaut": skimage.data.astronaut(),
        "cat": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "rocket": skimage.data.rocket(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
    }
    reals = {}
    for stem, rgb in photos.items():
        image = Image.fromarray(rgb)
        image.thumbnail((192, 192))
        reals[f"photos/{stem}.jpg"] = (stem, image)
    cfg = CreateConfig(
        name="pilot",
        photos="photos",
        model=("m1", "m2"),
        per_model=1,
        attention_checks=1,
        practice_trials=1,
        display_ms=DISPLAY_MS,
    )
    engine = create_engine(url)
    init_db(engine)
    with Session(engine) as session, session.begin():
        build_study(session, cfg, reals, {"m1": _washed_out, "m2": _washed_out})
    engine.dispose()
    yield url


@pytest.fixture
def app_url(study_db: str) -> Iterator[str]:
    """The survey's server with the admin token, in this process; closed at the end."""
    app = build_survey_app(study_db, ADMIN)
    try:
        yield launch_survey(app, "127.0.0.1", _free_port())
    finally:
        app.close()


@pytest.fixture
def page(app_url: str):
    with open_page() as page:
        yield page


def _shown_images(page) -> list[np.ndarray]:
    """The two photos of the pair on screen, decoded from the page's data: URIs."""
    images = []
    for src in page.locator("#survey-pair img").evaluate_all(
        "images => images.map((image) => image.src)"
    ):
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)  # no URL, no file name
        png = Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :])))
        assert png.format == "PNG"
        images.append(np.asarray(png.convert("RGB")))
    return images


def _is_gray(rgb: np.ndarray) -> bool:
    return int(rgb.max(axis=-1).astype(int).sum() - rgb.min(axis=-1).sum()) == 0


def _pick(page) -> str:
    """A careful participant: the plainly grey photo when there is one, else left."""
    left, right = _shown_images(page)
    assert left.shape == right.shape
    return "right" if _is_gray(right) else "left"


def _pair_number(page) -> str:
    return page.locator("#survey-pair [data-step=trial]").get_attribute("data-number")


def _answer(page, side: str) -> None:
    """Click an answer and wait until the next pair (or the score) is on screen."""
    number = _pair_number(page)
    page.locator(f"#survey-{side}").click()
    page.wait_for_function(
        """(number) => {
            const done = document.querySelector("#survey-done [data-step=done]");
            const pair = document.querySelector("#survey-pair [data-step=trial]");
            return done !== null || (pair !== null && pair.dataset.number !== number);
        }""",
        arg=number,
    )


def _expected_counts(study_db: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """(answers, {model: (fooled, test pairs)}) straight from the database."""
    engine = create_engine(study_db)
    with Session(engine) as session:
        trials = session.scalars(select(Trial).where(Trial.choice.is_not(None))).all()
        counts: dict[str, tuple[int, int]] = {}
        for trial in trials:
            if trial.kind == "test":
                fooled, n = counts.get(trial.model, (0, 0))
                counts[trial.model] = (fooled + (not trial.is_correct), n + 1)
    engine.dispose()
    return len(trials), counts


def test_participant_completes_the_study_and_results_show_it(
    app_url, study_db, page, tmp_path
):
    outside = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if not r.url.startswith((app_url, "data:", "blob:"))
            else None
        ),
    )
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # a name in a link is shown as text, never run
    evil = "<img src=x onerror=alert(1)>"
    page.goto(app_url + "?study=" + urllib.parse.quote(evil))
    closed = page.locator("#survey-closed [data-step=closed]")
    closed.wait_for()
    assert evil in closed.inner_text()

    # the study's link opens the survey alone: no tabs, nothing of the results
    page.goto(app_url + "?study=pilot")
    page.locator("#survey-intro [data-step=intro]").wait_for()
    assert page.get_by_role("tab").count() == 0
    assert not page.get_by_text("Home", exact=True).is_visible()  # no navigation bar
    assert page.locator("#survey-admin-token").count() == 0
    assert "coloriz" not in page.title().lower()
    assert "4 pairs" in page.locator("#survey-intro").inner_text()
    start = page.locator("#survey-start")
    assert start.is_disabled()  # until the participant agrees
    page.locator("#survey-consent input").check()
    page.wait_for_function("() => !document.querySelector('#survey-start').disabled")
    start.click()

    # first pair: the address becomes the participant's own link
    page.locator("#survey-pair [data-step=trial]").wait_for()
    page.wait_for_url("**p=*")
    assert "study=pilot" in page.url
    link = page.locator("#survey-link a")
    assert link.inner_text() == page.url
    assert "Practice" in page.locator("#survey-pair").inner_text()
    first_choice = _pick(page)  # decided while the photos are there
    page.screenshot(path=tmp_path / "survey-pair.png")
    # after the display time the server sends the pair without its photos: the
    # page holds none any more; the answer buttons stay
    page.locator("#survey-pair [data-photos=hidden]").wait_for()
    assert page.locator("#survey-pair img").count() == 0
    assert "data:image/png" not in page.content()  # nor anywhere in the DOM
    assert page.locator(".survey-hidden-note").is_visible()
    assert page.locator("#survey-left").is_enabled()
    assert page.locator("#survey-right").is_enabled()
    page.screenshot(path=tmp_path / "survey-hidden.png")

    _answer(page, first_choice)
    assert "Practice:" in page.locator("#survey-notice").inner_text()
    # the next pair is shown afresh, with its own timer
    assert page.locator("#survey-pair img").count() == 2

    # a reload continues with the same pair
    number, before = _pair_number(page), _shown_images(page)
    page.reload()
    page.locator("#survey-pair [data-step=trial]").wait_for()
    assert _pair_number(page) == number
    after = _shown_images(page)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))

    while page.locator("#survey-pair [data-step=trial]").count():
        _answer(page, _pick(page))
    done = page.locator("#survey-done [data-step=done]")
    done.wait_for()
    answers, counts = _expected_counts(study_db)
    assert answers == 4
    fooled = sum(k for k, _ in counts.values())
    tests = sum(n for _, n in counts.values())
    assert done.get_attribute("data-correct") == str(tests - fooled)
    assert f"{tests - fooled} of {tests}" in done.inner_text()
    page.wait_for_timeout(300)
    page.screenshot(path=tmp_path / "survey-score.png")

    # results, on their own page: refused without the right token, then the
    # database's counts
    page.goto(app_url.rstrip("/") + "/admin")
    page.locator("#survey-admin-token input").fill("wrong")
    page.locator("#survey-show-results").click()
    page.get_by_text("Wrong admin token").first.wait_for()
    assert page.locator("#survey-results .survey-summary").count() == 0
    page.locator("#survey-admin-token input").fill(ADMIN)
    page.locator("#survey-show-results").click()
    summary = page.locator("#survey-results .survey-summary")
    summary.wait_for()
    assert summary.get_attribute("data-participants") == "1"
    assert summary.get_attribute("data-answers") == str(answers)
    rows = page.locator("#survey-results table").first.locator("tbody tr")
    shown = {}
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_inner_texts()
        k, n = cells[1].split(" / ")
        shown[cells[0]] = (int(k), int(n))
    assert shown == counts
    for toast in page.locator("[data-testid=toast-close]").all():  # may be gone
        toast.click()
    page.wait_for_timeout(500)
    page.screenshot(path=tmp_path / "survey-results.png", full_page=True)

    with page.expect_download() as download_info:
        page.locator("#survey-export").click()
    download = download_info.value
    assert download.suggested_filename == "pilot-answers.csv"
    download.save_as(tmp_path / download.suggested_filename)
    exported = pd.read_csv(tmp_path / download.suggested_filename)
    assert len(exported) == answers and set(exported["participant"]) == {0}
    assert outside == [] and dialogs == []

"""The survey tabs' handlers, called as plain functions on a real database.

No browser: `open_page`, `consent`, `answer` and `results_page` are what the page's
events call; tests/survey/test_browser.py drives the same flow through Chromium.
"""

import base64
import io
import re

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from survey import service
from survey.create import CreateConfig, build_study
from survey.db import create_engine
from survey.models import Participant, Trial
from survey.server import build_survey_app, main
from survey.throttle import AdminGate, FailureLimiter
from survey.ui import (
    PARTICIPANT_TAB,
    RESULTS_TAB,
    Page,
    Visit,
    answer,
    consent,
    hide_photos,
    open_page,
    personal_link,
    results_page,
    survey_pages,
)
from tests.survey.conftest import StudyMaker

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _start(engine: Engine, study: str = "pilot") -> Page:
    intro = open_page(engine, study, None)
    assert intro.step == "intro"
    return consent(engine, intro.visit, True)


def _trial(engine: Engine, trial_id: str) -> Trial:
    with Session(engine) as session:
        return session.scalars(select(Trial).where(Trial.key == trial_id)).one()


def _fake_side(engine: Engine, trial_id: str) -> str:
    """Test-only peek at the answer key."""
    return "left" if _trial(engine, trial_id).left_is_fake else "right"


def _answered(engine: Engine, token: str) -> list[str | None]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Trial.choice)
                .join(Participant, Participant.id == Trial.participant_id)
                .where(Participant.token == token)
                .order_by(Trial.position)
            )
        )


def _finish(engine: Engine, page: Page, pick) -> Page:
    """Answer every pair with `pick(trial_id)`; returns the final page."""
    while page.step == "trial":
        page = answer(engine, page.visit, pick(page.visit.trial_id))
    return page


def test_survey_pages_offer_results_only_with_an_admin_token(db_url: str) -> None:
    assert [title for title, _ in survey_pages(db_url, None)] == [PARTICIPANT_TAB]
    assert [title for title, _ in survey_pages(db_url, "")] == [PARTICIPANT_TAB]
    titles = [title for title, _ in survey_pages(db_url, "a-long-admin-token-123")]
    assert titles == [PARTICIPANT_TAB, RESULTS_TAB]


def test_survey_pages_render_inside_a_page(db_url: str) -> None:
    with gr.Blocks() as page:
        for _title, render in survey_pages(db_url, "a-long-admin-token-123"):
            render()
    names = {fn.api_name for fn in page.fns.values()}
    assert {"survey_open", "survey_start", "survey_left", "survey_right"} <= names
    assert "survey_results" in names


def test_instructions_describe_the_study(engine: Engine, make_study: StudyMaker):
    make_study()  # 1 practice + 1 attention + 2 models x 2 test pairs, 800 ms
    page = open_page(engine, "pilot", None)
    assert page.step == "intro" and page.visit == Visit(study="pilot")
    assert "6 pairs" in page.body
    assert "0.8 seconds" in page.body
    assert "The first pair is practice" in page.body
    assert personal_link(page.visit) == ""  # no token before consent


def test_a_link_without_a_study_opens_the_newest(engine, make_study) -> None:
    make_study("first")
    make_study("second")
    assert open_page(engine, None, None).visit.study == "second"
    assert open_page(engine, "", "").visit.study == "second"


def test_no_study_gives_a_closed_page(engine: Engine) -> None:
    page = open_page(engine, None, None)
    assert page.step == "closed" and "No study is open" in page.body


@pytest.mark.parametrize(
    "name", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "nope"]
)
def test_unknown_study_names_are_escaped(engine, make_study, name) -> None:
    make_study()
    page = open_page(engine, name, None)
    assert page.step == "closed" and "Unknown study" in page.body
    assert "<script" not in page.body and "<img" not in page.body
    if name.startswith("<"):
        assert "&lt;script&gt;" in page.body


def test_consent_is_required(engine: Engine, make_study: StudyMaker) -> None:
    make_study()
    intro = open_page(engine, "pilot", None)
    with pytest.raises(gr.Error, match="agree"):
        consent(engine, intro.visit, False)
    with pytest.raises(gr.Error, match="link"):
        consent(engine, Visit(), True)
    with Session(engine) as session:
        assert session.scalars(select(Participant)).all() == []


def test_participant_completes_the_study(engine, make_study) -> None:
    make_study()
    page = _start(engine)
    token = page.visit.token
    assert personal_link(page.visit) == f"?study=pilot&p={token}"
    seen, feedback, found = [], [], 0
    while page.step == "trial":
        number = int(re.search(r'data-number="(\d+)"', page.body).group(1))
        seen.append(number)
        images = [base64.b64decode(b) for b in DATA_URI.findall(page.body)]
        assert len(images) == 2
        sizes = {Image.open(io.BytesIO(png)).size for png in images}
        assert len(sizes) == 1  # both of a pair have the same size, both PNG
        trial = _trial(engine, page.visit.trial_id)
        # neither the image ids nor the photo's name are in the page
        for secret in (trial.real_image_id, trial.fake_image_id, trial.photo):
            assert secret not in page.body
        assert 'data-photos="shown"' in page.body
        assert page.visit.view is not None and page.visit.view.display_ms == 800
        is_practice = trial.kind == "practice"
        assert ("Practice" in page.body) == is_practice
        choice = "left" if number % 2 else "right"
        found += trial.kind == "test" and choice == _fake_side(engine, trial.key)
        page = answer(engine, page.visit, choice)
        feedback.append("Practice:" in page.notice)
    assert seen == [1, 2, 3, 4, 5, 6]
    assert feedback == [True, False, False, False, False, False]
    assert page.step == "done" and page.visit.trial_id == ""
    assert f'data-correct="{found}" data-total="4"' in page.body
    assert f"<strong>{found} of 4</strong>" in page.body
    assert None not in _answered(engine, token)


def test_practice_feedback_names_the_colorized_side(engine, make_study) -> None:
    make_study()
    page = _start(engine)
    fake = _fake_side(engine, page.visit.trial_id)
    other = "right" if fake == "left" else "left"
    wrong = answer(engine, page.visit, other)
    assert f"the {fake} photo was colorized" in wrong.notice
    assert "not this time" in wrong.notice


def test_reload_continues_with_the_same_pair(engine, make_study) -> None:
    make_study()
    page = _start(engine)
    page = answer(engine, page.visit, "left")
    again = open_page(engine, "pilot", page.visit.token)
    assert again.step == "trial"
    assert again.visit == page.visit
    assert DATA_URI.findall(again.body) == DATA_URI.findall(page.body)
    # the link without the study name works as well
    assert open_page(engine, None, page.visit.token).visit.trial_id == (
        page.visit.trial_id
    )


def test_a_finished_participant_gets_their_score_again(engine, make_study):
    make_study()
    done = _finish(engine, _start(engine), lambda _trial_id: "left")
    again = open_page(engine, "pilot", done.visit.token)
    assert again.step == "done" and again.body == done.body


def test_replayed_answer_keeps_the_first_one(engine, make_study) -> None:
    make_study()
    first = _start(engine)
    second = answer(engine, first.visit, "left")
    replay = answer(engine, first.visit, "right")  # the same pair again
    assert "already answered" in replay.notice
    assert replay.visit == second.visit  # moved on to the pending pair
    assert _answered(engine, first.visit.token)[:2] == ["left", None]


def test_forged_answers_are_refused(engine, make_study) -> None:
    make_study()
    alice = _start(engine)
    bob = _start(engine)
    forged = Visit("pilot", alice.visit.token, bob.visit.trial_id)
    with pytest.raises(gr.Error, match="not one of yours"):
        answer(engine, forged, "left")
    with pytest.raises(gr.Error, match="not valid"):
        answer(engine, Visit("pilot", "A" * 22, bob.visit.trial_id), "left")
    with pytest.raises(gr.Error, match="Reload"):
        answer(engine, Visit("pilot"), "left")
    with pytest.raises(gr.Error, match="Left or Right"):
        answer(engine, bob.visit, "middle")
    assert set(_answered(engine, alice.visit.token)) == {None}
    assert set(_answered(engine, bob.visit.token)) == {None}


@pytest.mark.parametrize("token", ["A" * 22, "../../survey.db", "<b>x</b>"])
def test_unknown_links_say_so_and_offer_the_study(engine, make_study, token):
    make_study()
    page = open_page(engine, "pilot", token)
    assert page.step == "intro" and page.visit.token == ""
    assert "link is not valid" in page.notice
    assert "<b>" not in page.notice + page.body


def _break_answers(engine: Engine) -> None:
    """Make the database refuse every answer, as a full disk or a lost server would."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_answers BEFORE UPDATE OF choice ON trials "
                    "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_answers() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'disk I/O error'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_answers BEFORE UPDATE OF choice ON trials "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_answers()"
                )
            )


def _mend_answers(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER refuse_answers"))
        else:
            conn.execute(text("DROP TRIGGER refuse_answers ON trials"))
            conn.execute(text("DROP FUNCTION refuse_answers()"))


def test_database_failure_says_not_saved_and_the_retry_counts(engine, make_study):
    make_study()
    page = _start(engine)
    _break_answers(engine)
    for _ in range(2):
        with pytest.raises(gr.Error, match="not saved"):
            answer(engine, page.visit, "left")
    assert set(_answered(engine, page.visit.token)) == {None}
    _mend_answers(engine)
    retried = answer(engine, page.visit, "left")  # the same page, clicked again
    assert retried.step == "trial" and retried.visit.trial_id != page.visit.trial_id
    assert _answered(engine, page.visit.token)[0] == "left"


def test_a_database_that_cannot_be_reached_gives_a_page_that_says_so(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'survey.db'}")
    page = open_page(engine, "pilot", None)
    assert page.step == "closed" and "cannot be reached" in page.body
    engine.dispose()


ADMIN = "a-long-admin-token-123"
GATE = AdminGate(ADMIN, FailureLimiter(max_failures=1000))  # no lockout in these


@pytest.mark.parametrize("given", [None, "", "wrong", ADMIN[:-1], ADMIN + " "])
def test_results_need_the_admin_token(engine, make_study, tmp_path, given) -> None:
    make_study()
    with pytest.raises(gr.Error, match="admin token"):
        results_page(engine, GATE, given, "pilot", False, tmp_path / "exports")
    assert not (tmp_path / "exports").exists()


def _participant(engine: Engine, pick) -> str:
    return _finish(engine, _start(engine), pick).visit.token


def test_results_count_answers_and_leave_out_failed_checks(
    engine, make_study, tmp_path
):
    make_study()

    def careful(trial_id: str) -> str:  # finds every fake: passes the check
        return _fake_side(engine, trial_id)

    def fooled(trial_id: str) -> str:  # always picks the real photo: fails it
        fake = _fake_side(engine, trial_id)
        return "right" if fake == "left" else "left"

    _participant(engine, careful)
    _participant(engine, fooled)
    shown = results_page(engine, GATE, ADMIN, "pilot", False, tmp_path)
    assert shown.studies == ["pilot"] and shown.study == "pilot"
    assert 'data-participants="2" data-answers="12"' in shown.html
    assert "1 failed an attention check and are left out" in shown.html
    # only the careful participant counts: fooled 0 times in 2 test pairs per model
    rows = re.findall(r"<td>(m\d)</td><td class=num>(\d+) / (\d+)</td>", shown.html)
    assert rows == [("m1", "0", "2"), ("m2", "0", "2")]
    everyone = results_page(engine, GATE, ADMIN, "pilot", True, tmp_path)
    rows = re.findall(r"<td>(m\d)</td><td class=num>(\d+) / (\d+)</td>", everyone.html)
    assert rows == [("m1", "2", "4"), ("m2", "2", "4")]
    csv = pd.read_csv(everyone.csv)
    assert len(csv) == 12 and set(csv["participant"]) == {0, 1}
    assert "token" not in " ".join(csv.columns)


def test_results_of_another_study_and_of_none(engine, make_study, tmp_path):
    shown = results_page(engine, GATE, ADMIN, None, False, tmp_path)
    assert shown.studies == [] and shown.csv is None
    make_study("first")
    make_study("second")
    newest = results_page(engine, GATE, ADMIN, "not-there", False, tmp_path)
    assert newest.study == "second" and "No answers yet" in newest.html
    first = results_page(engine, GATE, ADMIN, "first", False, tmp_path)
    assert first.study == "first" and first.csv.name == "first-answers.csv"


def test_results_escape_photo_names_and_untimed_pairs_stay(
    engine: Engine, tmp_path
) -> None:
    rng = np.random.default_rng(0)
    evil = "<img src=x onerror=alert(1)>"
    reals = {
        f"{evil}{i}.jpg": (
            f"p{i}",
            Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)),
        )
        for i in range(3)
    }
    cfg = CreateConfig(
        name="evil",
        photos="photos",
        model=("m1",),
        per_model=3,
        attention_checks=0,
        practice_trials=0,
        display_ms=0,  # pairs stay until answered
    )
    with Session(engine) as session, session.begin():
        build_study(session, cfg, reals, {"m1": lambda _stem, real: real.rotate(180)})
    first = _start(engine, "evil")
    assert first.visit.view is not None and first.visit.view.display_ms == 0
    assert hide_photos(first.visit, first.visit.view.number % 2) is None
    assert "each pair stays on screen" in open_page(engine, "evil", None).body.lower()
    _finish(engine, first, lambda _trial_id: "left")
    shown = results_page(engine, GATE, ADMIN, "evil", False, tmp_path)
    assert "<img" not in shown.html
    assert "&lt;img src=x onerror=alert(1)&gt;0.jpg" in shown.html


def test_a_token_from_the_service_opens_its_first_pair(engine, make_study) -> None:
    make_study()
    with Session(engine) as session, session.begin():
        token = service.start_participant(session, "pilot")
    page = open_page(engine, "pilot", token)
    assert page.step == "trial" and page.visit.token == token


def test_survey_server_serves_the_same_tabs(db_url: str, capsys) -> None:
    names = {fn.api_name for fn in build_survey_app(db_url, None).fns.values()}
    assert "survey_open" in names and "survey_results" not in names
    with_results = build_survey_app(db_url, "a-long-admin-token-123")
    assert "survey_results" in {fn.api_name for fn in with_results.fns.values()}
    assert main(["--db", "nope://x"]) == 2
    assert capsys.readouterr().err.startswith("error: bad database URL")

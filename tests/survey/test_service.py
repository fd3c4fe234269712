"""The participant flow end to end through the service functions the UI calls, each
call in its own transaction as a web request would be.
"""

import dataclasses
import datetime as dt
import io
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from survey import service
from survey.errors import (
    AlreadyAnsweredError,
    InvalidInputError,
    NotAssignedError,
    NotFoundError,
    NotShownError,
    StorageError,
    SurveyError,
)
from survey.models import Pair, Participant, Trial
from tests.survey.conftest import T0, StudyMaker

SECOND = dt.timedelta(seconds=1)


def _call(engine: Engine, fn, *args, **kwargs):
    """One request: `fn(session, *args)` in its own transaction."""
    with Session(engine) as session, session.begin():
        return fn(session, *args, **kwargs)


def _fake_side(engine: Engine, trial_id: str) -> str:
    """Test-only peek at the answer key."""
    with Session(engine) as session:
        trial = session.scalars(select(Trial).where(Trial.key == trial_id)).one()
        return "left" if trial.left_is_fake else "right"


def _other(side: str) -> str:
    return "right" if side == "left" else "left"


def _trials(engine: Engine, token: str) -> list[Trial]:
    with Session(engine) as session:
        participant = session.scalars(
            select(Participant).where(Participant.token == token)
        ).one()
        return list(
            session.scalars(
                select(Trial)
                .where(Trial.participant_id == participant.id)
                .order_by(Trial.position)
            )
        )


def test_describe_and_list_studies(engine: Engine, make_study: StudyMaker) -> None:
    make_study()
    assert _call(engine, service.list_studies) == ["pilot"]
    info = _call(engine, service.describe_study, "pilot")
    # 1 practice + 1 attention + 2 per model x 2 models
    assert info == service.StudyInfo("pilot", 6, 1, 800)
    with pytest.raises(NotFoundError):
        _call(engine, service.describe_study, "nope")


def test_plan_has_each_photo_once_and_per_model_counts(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study(per_model=3, attention=2, practice=2, photos=12)
    token = _call(engine, service.start_participant, "pilot", now=T0)
    trials = _trials(engine, token)
    assert len(trials) == 2 + 2 + 3 * 2
    assert [t.kind for t in trials[:2]] == ["practice", "practice"]
    assert Counter(t.kind for t in trials[2:]) == {"test": 6, "attention": 2}
    assert Counter(t.model for t in trials if t.kind == "test") == {"m1": 3, "m2": 3}
    assert len({t.photo for t in trials}) == len(trials)  # no photo twice
    assert [t.position for t in trials] == list(range(len(trials)))
    assert sum(t.left_is_fake for t in trials) == len(trials) // 2  # sides balanced


def test_plans_are_seeded(engine: Engine, make_study: StudyMaker) -> None:
    make_study(photos=20)
    with Session(engine) as session:
        pairs = session.scalars(select(Pair)).all()

        def plan(seed: list[int]) -> list[tuple[int, bool]]:
            rng = np.random.default_rng(seed)
            return [(p.id, side) for p, side in service.plan_trials(pairs, 2, rng)]

        assert plan([0, 1]) == plan([0, 1])
        assert plan([0, 1]) != plan([0, 2])
    first = _call(engine, service.start_participant, "pilot", now=T0)
    second = _call(engine, service.start_participant, "pilot", now=T0)
    assert first != second
    assert [(t.pair_id, t.left_is_fake) for t in _trials(engine, first)] != [
        (t.pair_id, t.left_is_fake) for t in _trials(engine, second)
    ]


def test_full_flow_practice_feedback_score_and_finish(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    token = _call(engine, service.start_participant, "pilot", now=T0)
    now, seen, tests = T0, [], 0
    while (view := _call(engine, service.next_trial, token, now=now)) is not None:
        seen.append(view.number)
        assert view.total == 6 and view.display_ms == 800
        fake = _fake_side(engine, view.trial_id)
        with Session(engine) as session:
            kind = session.scalar(select(Trial.kind).where(Trial.key == view.trial_id))
        assert view.is_practice == (kind == "practice")
        # found the fake in the first test trial only; passed the attention check
        if kind == "test":
            choice = fake if tests == 0 else _other(fake)
            tests += 1
        else:
            choice = fake
        now += 2 * SECOND
        result = _call(
            engine, service.submit_answer, token, view.trial_id, choice, now=now
        )
        assert result.feedback == (True if kind == "practice" else None)
        assert result.answered == view.number and result.total == 6
    assert seen == [1, 2, 3, 4, 5, 6]
    assert result.finished
    score = _call(engine, service.participant_score, token)
    assert score == service.Score(
        correct=1,
        answered=4,
        total=4,
        attention_passed=1,
        attention_total=1,
        flagged=False,
        finished=True,
    )
    assert score.fooled == 3
    assert all(t.response_ms == 2000 for t in _trials(engine, token))
    assert _call(engine, service.next_trial, token, now=now) is None


def test_reload_returns_the_same_pending_trial(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    token = _call(engine, service.start_participant, "pilot", now=T0)
    first = _call(engine, service.next_trial, token, now=T0)
    again = _call(engine, service.next_trial, token, now=T0 + 5 * SECOND)
    assert again == first  # same trial, same sides
    _call(
        engine,
        service.submit_answer,
        token,
        first.trial_id,
        "left",
        now=T0 + 6 * SECOND,
    )
    trial = _trials(engine, token)[0]
    assert trial.views == 2
    assert trial.response_ms == 1000  # timed from the last time it was served
    after = _call(engine, service.next_trial, token, now=T0 + 7 * SECOND)
    assert after.number == 2 and after.trial_id != first.trial_id


def test_replayed_answer_rejected_and_first_answer_stands(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    token = _call(engine, service.start_participant, "pilot", now=T0)
    view = _call(engine, service.next_trial, token, now=T0)
    _call(engine, service.submit_answer, token, view.trial_id, "left", now=T0)
    for choice in ("left", "right"):
        with pytest.raises(AlreadyAnsweredError) as err:
            _call(engine, service.submit_answer, token, view.trial_id, choice, now=T0)
        assert err.value.status == 409
    assert _trials(engine, token)[0].choice == "left"


def test_concurrent_second_answer_loses(engine: Engine, make_study: StudyMaker) -> None:
    """Two requests that both saw the trial unanswered: only one answer lands."""
    make_study()
    token = _call(engine, service.start_participant, "pilot", now=T0)
    view = _call(engine, service.next_trial, token, now=T0)
    with Session(engine) as late:
        # the late request has read the trial (unanswered) before the first commits
        stale = late.scalars(select(Trial).where(Trial.key == view.trial_id)).one()
        _call(engine, service.submit_answer, token, view.trial_id, "right", now=T0)
        assert stale.choice is None  # so only the conditional UPDATE can refuse
        with pytest.raises(AlreadyAnsweredError):
            service.submit_answer(late, token, view.trial_id, "left", now=T0)
        late.rollback()
    assert _trials(engine, token)[0].choice == "right"


def test_forged_and_malformed_requests_rejected(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    alice = _call(engine, service.start_participant, "pilot", now=T0)
    bob = _call(engine, service.start_participant, "pilot", now=T0)
    alice_view = _call(engine, service.next_trial, alice, now=T0)
    bob_next = _trials(engine, bob)[1].key  # never served to bob

    def answer(token, trial_id, choice="left") -> SurveyError:
        with pytest.raises(SurveyError) as err:
            _call(engine, service.submit_answer, token, trial_id, choice, now=T0)
        return err.value

    assert isinstance(answer(bob, alice_view.trial_id), NotAssignedError)
    assert answer(bob, alice_view.trial_id).status == 403
    assert isinstance(answer(bob, bob_next), NotShownError)
    assert isinstance(answer(alice, "A" * 22), NotFoundError)
    for bad_id in ("../../etc/passwd", "", None, 7, "x" * 200):
        assert isinstance(answer(alice, bad_id), NotFoundError)
    for bad_token in ("A" * 22, "../survey.db", None):
        assert answer(bad_token, alice_view.trial_id).status == 404
    for bad_choice in ("middle", "LEFT", None, 0):
        error = answer(alice, alice_view.trial_id, bad_choice)
        assert isinstance(error, InvalidInputError) and error.status == 422
    with pytest.raises(NotFoundError):
        _call(engine, service.start_participant, "no-such-study", now=T0)
    with pytest.raises(NotFoundError):
        _call(engine, service.next_trial, "B" * 22, now=T0)
    # nothing of the above was stored
    assert all(t.choice is None for t in _trials(engine, alice) + _trials(engine, bob))


def test_failed_attention_check_flags_participant(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    token = _call(engine, service.start_participant, "pilot", now=T0)
    while (view := _call(engine, service.next_trial, token, now=T0)) is not None:
        fake = _fake_side(engine, view.trial_id)
        with Session(engine) as session:
            kind = session.scalar(select(Trial.kind).where(Trial.key == view.trial_id))
        choice = _other(fake) if kind == "attention" else fake
        _call(engine, service.submit_answer, token, view.trial_id, choice, now=T0)
    score = _call(engine, service.participant_score, token)
    assert score.flagged and score.attention_passed == 0
    assert score.correct == score.total == 4


def test_images_are_served_by_opaque_id_only(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    token = _call(engine, service.start_participant, "pilot", now=T0)
    view = _call(engine, service.next_trial, token, now=T0)
    left = _call(engine, service.get_image_bytes, view.left_image_id)
    right = _call(engine, service.get_image_bytes, view.right_image_id)
    images = [Image.open(io.BytesIO(data)) for data in (left, right)]
    assert [im.format for im in images] == ["PNG", "PNG"]
    assert images[0].size == images[1].size == (16, 12)
    assert images[0].mode == images[1].mode == "RGB"
    assert images[0].info == images[1].info  # same encoder settings, no metadata
    # the view says nothing about which side is real, the photo or the model
    assert set(dataclasses.asdict(view)) == {
        "trial_id",
        "left_image_id",
        "right_image_id",
        "display_ms",
        "number",
        "total",
        "is_practice",
    }
    for image_id in (view.left_image_id, view.right_image_id):
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", image_id)  # secrets.token_urlsafe
    for bad in ("A" * 22, "../survey.db", "/etc/passwd", "", None):
        with pytest.raises(NotFoundError):
            _call(engine, service.get_image_bytes, bad)


def test_database_failure_while_answering_raises_and_stores_nothing(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    token = _call(engine, service.start_participant, "pilot", now=T0)
    view = _call(engine, service.next_trial, token, now=T0)
    with engine.connect() as blocker:
        # another writer holds the lock longer than this request is willing to wait
        if engine.dialect.name == "sqlite":
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
            wait = "PRAGMA busy_timeout = 50"
        else:
            blocker.execute(
                select(Trial.id).where(Trial.key == view.trial_id).with_for_update()
            )
            wait = "SET LOCAL lock_timeout = '50ms'"
        with pytest.raises(StorageError) as err:
            with Session(engine) as session, session.begin():
                session.execute(text(wait))
                service.submit_answer(session, token, view.trial_id, "left", now=T0)
        assert err.value.status == 503
        blocker.rollback()
    assert _trials(engine, token)[0].choice is None
    # the participant can simply send it again
    _call(engine, service.submit_answer, token, view.trial_id, "left", now=T0)
    assert _trials(engine, token)[0].choice == "left"

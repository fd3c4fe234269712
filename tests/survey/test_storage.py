"""The schema's own guarantees, checked by writing through SQLAlchemy Core (bypassing
the service) on SQLite and, when configured, PostgreSQL.
"""

import datetime as dt

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from survey.errors import AlreadyAnsweredError, StudyLockedError
from survey.models import Image, Pair, Participant, Study, Trial
from survey.service import next_trial, start_participant, submit_answer
from tests.survey.conftest import T0, StudyMaker


def _first_trial(engine: Engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(Trial).order_by(Trial.id)).mappings().first())


def _started(engine: Engine, make_study: StudyMaker) -> str:
    """A study with one participant (plan stored, nothing answered); their token."""
    make_study()
    with Session(engine) as session, session.begin():
        return start_participant(session, "pilot", now=T0)


def test_second_answer_for_same_participant_and_pair_rejected_by_schema(
    engine: Engine, make_study: StudyMaker
) -> None:
    _started(engine, make_study)
    row = _first_trial(engine)
    duplicate = {
        **row,
        "key": "x" * 22,
        "position": 99,
        "shown_at": T0,
        "choice": "left",
        "is_correct": row["left_is_fake"],
        "answered_at": T0,
        "response_ms": 5,
    }
    del duplicate["id"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Trial).values(**duplicate))
    with engine.connect() as conn:
        count = conn.scalar(
            select(func.count())
            .select_from(Trial)
            .where(Trial.participant_id == row["participant_id"])
            .where(Trial.pair_id == row["pair_id"])
        )
    assert count == 1


@pytest.mark.parametrize(
    "values",
    [
        {"choice": "up", "is_correct": True, "response_ms": 1},  # not a side
        {"choice": "left", "response_ms": 1},  # half an answer: no is_correct
        {"choice": "left", "is_correct": True},  # no response time
        {"response_ms": -5, "choice": "left", "is_correct": True},  # negative time
    ],
)
def test_incomplete_or_invalid_answers_rejected_by_schema(
    engine: Engine, make_study: StudyMaker, values: dict
) -> None:
    _started(engine, make_study)
    row = _first_trial(engine)
    values = {"shown_at": T0, "answered_at": T0, **values}
    if values.get("is_correct") is True:
        values["is_correct"] = row["left_is_fake"] == (values["choice"] == "left")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(update(Trial).where(Trial.id == row["id"]).values(**values))


def test_correctness_must_agree_with_choice_and_side(
    engine: Engine, make_study: StudyMaker
) -> None:
    _started(engine, make_study)
    row = _first_trial(engine)
    answer = {"shown_at": T0, "answered_at": T0, "response_ms": 10, "choice": "left"}
    truth = bool(row["left_is_fake"])  # picking left is correct iff the fake is left
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            update(Trial)
            .where(Trial.id == row["id"])
            .values(**answer, is_correct=not truth)
        )
    with engine.begin() as conn:  # the consistent answer is accepted
        conn.execute(
            update(Trial)
            .where(Trial.id == row["id"])
            .values(**answer, is_correct=truth)
        )


def _other_image(engine: Engine, pair_id: int) -> str:
    """An image of the same study that this pair does not use."""
    with engine.connect() as conn:
        pair = conn.execute(select(Pair).where(Pair.id == pair_id)).mappings().one()
        return conn.scalar(
            select(Image.id).where(
                Image.study_id == pair["study_id"],
                Image.id.not_in([pair["real_image_id"], pair["fake_image_id"]]),
            )
        )


def test_pairs_can_change_before_anyone_starts(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    with engine.connect() as conn:
        pair_id = conn.scalar(select(Pair.id).order_by(Pair.id))
    with engine.begin() as conn:
        conn.execute(
            update(Pair)
            .where(Pair.id == pair_id)
            .values(fake_image_id=_other_image(engine, pair_id))
        )


@pytest.mark.parametrize(
    "change",
    ["fake_image_id", "real_image_id", "swap", "model", "kind", "photo", "delete"],
)
def test_pairs_of_a_started_study_are_immutable_in_the_schema(
    engine: Engine, make_study: StudyMaker, change: str
) -> None:
    _started(engine, make_study)
    pair_id = _first_trial(engine)["pair_id"]
    with engine.connect() as conn:
        pair = conn.execute(select(Pair).where(Pair.id == pair_id)).mappings().one()
    values = {
        "fake_image_id": {"fake_image_id": _other_image(engine, pair_id)},
        "real_image_id": {"real_image_id": _other_image(engine, pair_id)},
        "swap": {
            "real_image_id": pair["fake_image_id"],
            "fake_image_id": pair["real_image_id"],
        },
        "model": {"model": "another-model"},
        "kind": {"kind": "practice" if pair["kind"] != "practice" else "test"},
        "photo": {"photo": "photos/elsewhere.jpg"},
    }
    statement = (
        delete(Pair).where(Pair.id == pair_id)
        if change == "delete"
        else update(Pair).where(Pair.id == pair_id).values(**values[change])
    )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(statement)
    with engine.connect() as conn:
        assert (
            conn.execute(select(Pair).where(Pair.id == pair_id)).mappings().one()
            == pair
        )


def test_orm_refuses_to_add_change_or_delete_pairs_once_started(
    engine: Engine, make_study: StudyMaker
) -> None:
    _started(engine, make_study)
    with pytest.raises(StudyLockedError), Session(engine) as session, session.begin():
        session.scalars(select(Pair)).first().model = "renamed"
    with pytest.raises(StudyLockedError), Session(engine) as session, session.begin():
        session.delete(session.scalars(select(Pair)).first())
    with pytest.raises(StudyLockedError), Session(engine) as session, session.begin():
        template = session.scalars(select(Pair)).first()
        session.add(
            Pair(
                study_id=template.study_id,
                photo="photos/new.jpg",
                model="m1",
                kind="test",
                real_image_id=template.real_image_id,
                fake_image_id=template.fake_image_id,
            )
        )


def test_images_are_write_once_and_cannot_be_deleted_while_used(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    with pytest.raises(StudyLockedError), Session(engine) as session, session.begin():
        session.scalars(select(Image)).first().data = b"other bytes"
    with engine.connect() as conn:
        image_id = conn.scalar(select(Pair.fake_image_id))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(delete(Image).where(Image.id == image_id))


def test_trial_cannot_mix_a_participant_and_a_pair_of_different_studies(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study("first")
    make_study("second", seed=1)
    with Session(engine) as session, session.begin():
        start_participant(session, "first", now=T0)
    row = _first_trial(engine)
    with engine.connect() as conn:
        second = conn.scalar(select(Study.id).where(Study.name == "second"))
        foreign = conn.execute(select(Pair).where(Pair.study_id == second)).mappings()
        foreign = foreign.first()
    for study_id in (row["study_id"], second):  # either study id breaks one key
        forged = {
            **{k: v for k, v in row.items() if k != "id"},
            "key": "y" * 22,
            "position": 50,
            "study_id": study_id,
            **{k: foreign[k] for k in ("photo", "model", "kind")},
            "pair_id": foreign["id"],
            "real_image_id": foreign["real_image_id"],
            "fake_image_id": foreign["fake_image_id"],
        }
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(Trial).values(**forged))


def test_an_answered_trial_cannot_be_changed_through_the_orm(
    engine: Engine, make_study: StudyMaker
) -> None:
    token = _started(engine, make_study)
    with Session(engine) as session, session.begin():
        view = next_trial(session, token, now=T0)
        submit_answer(session, token, view.trial_id, "left", now=T0)
    with (
        pytest.raises(AlreadyAnsweredError),
        Session(engine) as session,
        session.begin(),
    ):
        trial = session.scalars(select(Trial).where(Trial.key == view.trial_id)).one()
        trial.choice = "right"
        trial.is_correct = not trial.is_correct


def test_study_names_are_unique(engine: Engine, make_study: StudyMaker) -> None:
    make_study()
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        session.add(
            Study(name="pilot", seed=0, per_model=1, display_ms=0, image_size=8)
        )


def test_timestamps_are_stored_and_read_as_utc(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    paris = dt.timezone(dt.timedelta(hours=1))
    local = dt.datetime(2025, 3, 1, 13, 30, tzinfo=paris)
    with Session(engine) as session, session.begin():
        study_id = session.scalar(select(Study.id))
        session.add(Participant(study_id=study_id, consented_at=local))
    with Session(engine) as session:
        stored = session.scalar(select(Participant.consented_at))
    assert stored == local
    assert stored.utcoffset() == dt.timedelta(0)
    assert stored.hour == 12
    with pytest.raises(StatementError, match="timezone-aware"):
        with Session(engine) as session, session.begin():
            session.add(
                Participant(study_id=study_id, consented_at=dt.datetime(2025, 1, 1))
            )


def test_sqlite_file_uses_wal_and_enforces_foreign_keys(tmp_path) -> None:
    from survey.db import create_engine, init_db

    engine = create_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    init_db(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()

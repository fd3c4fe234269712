"""The participant flow as plain functions; the web UI calls these and nothing else.

Each function takes an open `Session` and does its work in the caller's transaction:

    with Session(engine) as session, session.begin():
        token = start_participant(session, "pilot")            # after consent
    with Session(engine) as session, session.begin():
        view = next_trial(session, token)                      # None when finished
    with Session(engine) as session, session.begin():
        result = submit_answer(session, token, view.trial_id, "left")

Flow: instructions and consent, then `start_participant` (the token goes into the
participant's link), then `next_trial` / `submit_answer` until `next_trial` returns
None, then `participant_score`. Practice trials (with feedback) come first; test and
attention-check trials follow in a seeded random order, each with the fake on a seeded
random side. A reload or a return with the same link gets the same pending trial; each
trial takes one answer.

Images are fetched by opaque id with `get_image_bytes` (PNG whose length depends on
its size only: `survey.encoding`). Errors are subclasses
of `survey.errors.SurveyError` with an HTTP-like `status`. A database failure while
saving an answer raises `StorageError`; the caller's transaction then rolls back, so
an answer is either stored or reported as not stored, never lost silently.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from survey.encoding import encoded_length, served_bytes
from survey.errors import (
    AlreadyAnsweredError,
    InvalidInputError,
    NotAssignedError,
    NotFoundError,
    NotShownError,
    StorageError,
)
from survey.models import (
    STUDY_NAME_RE,
    Image,
    Pair,
    Participant,
    Study,
    Trial,
    utcnow,
)

__all__ = [
    "CHOICES",
    "IMAGE_MEDIA_TYPE",
    "AnswerResult",
    "Score",
    "StudyInfo",
    "TrialView",
    "describe_study",
    "get_image_bytes",
    "legacy_images",
    "list_studies",
    "next_trial",
    "participant_score",
    "plan_trials",
    "start_participant",
    "submit_answer",
]

log = logging.getLogger(__name__)

CHOICES = ("left", "right")
IMAGE_MEDIA_TYPE = "image/png"
# tokens, trial ids and image ids are secrets.token_urlsafe output; anything else is
# refused before it reaches a query
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,32}")


@dataclass(frozen=True)
class StudyInfo:
    """What the instructions page needs to know about a study."""

    name: str
    trials: int  # per participant, practice included
    practice_trials: int
    display_ms: int  # 0 = the pair stays until answered


@dataclass(frozen=True)
class TrialView:
    """The pair to show now. Which side is real is deliberately not part of it."""

    trial_id: str  # opaque; pass it back to submit_answer
    left_image_id: str
    right_image_id: str
    display_ms: int  # hide both images after this long; 0 = until answered
    number: int  # 1-based position, for "number of total"
    total: int
    is_practice: bool  # practice trials get feedback after the answer


@dataclass(frozen=True)
class AnswerResult:
    """What the UI may tell the participant after an answer."""

    trial_id: str
    feedback: bool | None  # practice only: whether they found the colorized one
    answered: int
    total: int
    finished: bool


@dataclass(frozen=True)
class Score:
    """A participant's own result, over test trials (practice and checks left out)."""

    correct: int  # pairs where they found the colorized photo
    answered: int
    total: int
    attention_passed: int
    attention_total: int
    flagged: bool
    finished: bool

    @property
    def fooled(self) -> int:
        """Pairs where they took the colorized photo for the real one."""
        return self.answered - self.correct


def _check_token(value: object, what: str) -> str:
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise NotFoundError(f"unknown {what}")
    return value


def _study(session: Session, name: object) -> Study:
    if isinstance(name, str) and STUDY_NAME_RE.fullmatch(name):
        study = session.scalars(select(Study).where(Study.name == name)).one_or_none()
        if study is not None:
            return study
    raise NotFoundError(f"unknown study {str(name)[:64]!r}")


def _participant(session: Session, token: object) -> Participant:
    token = _check_token(token, "participant link")
    participant = session.scalars(
        select(Participant).where(Participant.token == token)
    ).one_or_none()
    if participant is None:
        raise NotFoundError("unknown participant link")
    return participant


def _count(session: Session, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(Trial).where(*where)) or 0


def list_studies(session: Session) -> list[str]:
    """Names of all studies, oldest first."""
    return list(session.scalars(select(Study.name).order_by(Study.id)))


def describe_study(session: Session, study_name: str) -> StudyInfo:
    """Trials per participant and display time of a study (NotFoundError if none)."""
    study = _study(session, study_name)
    kinds = dict(
        session.execute(
            select(Pair.kind, func.count())
            .where(Pair.study_id == study.id)
            .group_by(Pair.kind)
        ).all()
    )
    models = session.scalar(
        select(func.count(Pair.model.distinct())).where(
            Pair.study_id == study.id, Pair.kind == "test"
        )
    )
    practice = kinds.get("practice", 0)
    trials = practice + kinds.get("attention", 0) + study.per_model * (models or 0)
    return StudyInfo(study.name, trials, practice, study.display_ms)


def plan_trials(
    pairs: Sequence[Pair], per_model: int, rng: np.random.Generator
) -> list[tuple[Pair, bool]]:
    """One participant's trials in order, each as (pair, fake shown on the left).

    Practice pairs come first. Then `per_model` test pairs per model, drawn so that
    no photo appears twice, mixed with every attention-check pair in random order.
    Sides are balanced: half the trials (rounded up) show the fake on the left.
    """
    practice = sorted((p for p in pairs if p.kind == "practice"), key=_pair_key)
    attention = sorted((p for p in pairs if p.kind == "attention"), key=_pair_key)
    tests = {(p.photo, p.model): p for p in pairs if p.kind == "test"}
    models = sorted({model for _photo, model in tests})
    photos = sorted({photo for photo, _model in tests})
    # only photos that every model has: any of them can go to any model
    photos = [ph for ph in photos if all((ph, m) in tests for m in models)]
    needed = per_model * len(models)
    if needed > len(photos):
        raise ValueError(
            f"{needed} test trials need {needed} photos with a fake of every model, "
            f"the study has {len(photos)}"
        )
    chosen = [photos[i] for i in rng.permutation(len(photos))[:needed]]
    test = [tests[(photo, models[i // per_model])] for i, photo in enumerate(chosen)]
    body = test + attention
    body = [body[i] for i in rng.permutation(len(body))]
    practice = [practice[i] for i in rng.permutation(len(practice))]
    order = practice + body
    n = len(order)
    sides = rng.permutation(np.arange(n) < (n + 1) // 2)
    return [(pair, bool(left)) for pair, left in zip(order, sides, strict=True)]


def _pair_key(pair: Pair) -> tuple[str, str]:
    return pair.photo, pair.model


def start_participant(
    session: Session, study_name: str, now: dt.datetime | None = None
) -> str:
    """Register a participant who has just given consent; returns their link token.

    Their plan of trials is drawn now from the study's seed and the participant's id
    and stored, so a reload can never change which pairs or sides they get.
    """
    now = now or utcnow()
    study = _study(session, study_name)
    pairs = session.scalars(
        select(Pair).where(Pair.study_id == study.id).order_by(Pair.id)
    ).all()
    participant = Participant(study_id=study.id, consented_at=now)
    session.add(participant)
    session.flush()
    rng = np.random.default_rng([study.seed, participant.id])
    for position, (pair, left_is_fake) in enumerate(
        plan_trials(pairs, study.per_model, rng)
    ):
        session.add(
            Trial(
                participant_id=participant.id,
                study_id=study.id,
                pair_id=pair.id,
                photo=pair.photo,
                model=pair.model,
                kind=pair.kind,
                real_image_id=pair.real_image_id,
                fake_image_id=pair.fake_image_id,
                position=position,
                left_is_fake=left_is_fake,
            )
        )
    session.flush()
    log.info("participant %d started study %s", participant.id, study.name)
    return participant.token


def next_trial(
    session: Session, token: str, now: dt.datetime | None = None
) -> TrialView | None:
    """The participant's pending trial (the same one after a reload), or None when
    every trial is answered. Records when it was served, for the response time.
    """
    now = now or utcnow()
    participant = _participant(session, token)
    trial = session.scalars(
        select(Trial)
        .where(Trial.participant_id == participant.id, Trial.choice.is_(None))
        .order_by(Trial.position)
        .limit(1)
    ).first()
    if trial is None:
        if participant.finished_at is None:
            participant.finished_at = now
        return None
    trial.shown_at = now
    trial.views += 1
    study = session.get_one(Study, participant.study_id)
    fake, real = trial.fake_image_id, trial.real_image_id
    left, right = (fake, real) if trial.left_is_fake else (real, fake)
    return TrialView(
        trial_id=trial.key,
        left_image_id=left,
        right_image_id=right,
        display_ms=study.display_ms,
        number=trial.position + 1,
        total=_count(session, Trial.participant_id == participant.id),
        is_practice=trial.kind == "practice",
    )


def submit_answer(
    session: Session,
    token: str,
    trial_id: str,
    choice: str,
    now: dt.datetime | None = None,
) -> AnswerResult:
    """Store the participant's answer: `choice` is the side they judged colorized.

    Raises InvalidInputError (choice not "left"/"right"), NotFoundError (unknown token
    or trial id), NotAssignedError (another participant's trial), NotShownError (a
    trial never served), AlreadyAnsweredError (a replay or double click; the first
    answer stands) and StorageError (the database failed; nothing was stored).
    """
    now = now or utcnow()
    if choice not in CHOICES:
        raise InvalidInputError(f"choice must be 'left' or 'right', got {choice!r:.20}")
    participant = _participant(session, token)
    trial_id = _check_token(trial_id, "trial")
    trial = session.scalars(select(Trial).where(Trial.key == trial_id)).one_or_none()
    if trial is None:
        raise NotFoundError("unknown trial")
    if trial.participant_id != participant.id:
        log.warning(
            "participant %d sent an answer for a trial not theirs", participant.id
        )
        raise NotAssignedError("this pair is not one of yours")
    if trial.choice is not None:
        raise AlreadyAnsweredError("this pair has already been answered")
    if trial.shown_at is None:
        raise NotShownError("this pair has not been shown yet")
    is_correct = (choice == "left") == trial.left_is_fake
    response_ms = max(0, round((now - trial.shown_at).total_seconds() * 1000))
    try:
        # conditional: of two concurrent answers exactly one finds choice still NULL
        stored = session.execute(
            update(Trial)
            .where(Trial.id == trial.id, Trial.choice.is_(None))
            .values(
                choice=choice,
                is_correct=is_correct,
                answered_at=now,
                response_ms=response_ms,
            )
        )
        if stored.rowcount != 1:
            raise AlreadyAnsweredError("this pair has already been answered")
        if trial.kind == "attention" and not is_correct:
            participant.flagged = True
        remaining = _count(
            session, Trial.participant_id == participant.id, Trial.choice.is_(None)
        )
        if remaining == 0:
            participant.finished_at = now
        session.flush()
    except (IntegrityError, OperationalError) as err:
        log.error("answer of participant %d not stored: %s", participant.id, err)
        raise StorageError("your answer could not be saved; please try again") from err
    total = _count(session, Trial.participant_id == participant.id)
    return AnswerResult(
        trial_id=trial.key,
        feedback=is_correct if trial.kind == "practice" else None,
        answered=total - remaining,
        total=total,
        finished=remaining == 0,
    )


def participant_score(session: Session, token: str) -> Score:
    """The participant's own score for the final page."""
    participant = _participant(session, token)
    trials = session.execute(
        select(Trial.kind, Trial.choice, Trial.is_correct).where(
            Trial.participant_id == participant.id
        )
    ).all()
    tests = [t for t in trials if t.kind == "test"]
    checks = [t for t in trials if t.kind == "attention"]
    return Score(
        correct=sum(t.is_correct is True for t in tests),
        answered=sum(t.choice is not None for t in tests),
        total=len(tests),
        attention_passed=sum(t.is_correct is True for t in checks),
        attention_total=len(checks),
        flagged=participant.flagged,
        finished=participant.finished_at is not None,
    )


def get_image_bytes(session: Session, image_id: str) -> bytes:
    """The PNG bytes of an image, looked up by its opaque id only (NotFoundError).

    These are the stored bytes, canonical as `survey.encoding` writes them; an image
    of a study stored before that encoding is re-encoded here, so the two photos of
    every pair served have the same length and format whatever their study's age.
    """
    image_id = _check_token(image_id, "image")
    row = session.execute(
        select(Image.data, Image.width, Image.height).where(Image.id == image_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError("unknown image")
    return served_bytes(row.data, row.width, row.height)


def legacy_images(session: Session, study_name: str) -> int:
    """How many images of a study are stored in an older, compressed encoding.

    Answers to pairs served before the equal-length encoding may have been guided by
    the files' sizes (the fake was the smaller file); the results page says so.
    """
    study = _study(session, study_name)
    rows = session.execute(
        select(Image.width, Image.height, func.length(Image.data)).where(
            Image.study_id == study.id
        )
    ).all()
    return sum(length != encoded_length(w, h) for w, h, length in rows)

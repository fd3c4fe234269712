"""The survey's database schema (SQLAlchemy 2 ORM): studies, images, pairs,
participants and trials.

A study holds image pairs: the real colour photo and a fake of the same photo (a
model's colorization, or a plainly grey copy for attention checks). Each participant
gets a fixed, seeded plan of trials when they start; a trial row is the pair, the side
the fake is shown on and, once answered, the choice and its timing.

What the schema itself enforces (on SQLite and PostgreSQL alike, whatever code writes):

- one answer per participant and pair: `UNIQUE (participant_id, pair_id)` on trials,
  and each trial row holds at most one answer;
- an answer is complete or absent (choice, correctness, answer time and response time
  all set or all NULL), `choice` is "left" or "right", `is_correct` agrees with the
  choice and the side the fake was on;
- a trial's pair and participant belong to the same study, and a pair's two images to
  the pair's study (composite foreign keys);
- pairs are immutable once a participant has started the study: each trial copies the
  pair's content (photo, model, kind, both image ids) under a composite foreign key
  with ON UPDATE RESTRICT / ON DELETE RESTRICT, so the database rejects changing or
  deleting a pair that any trial refers to; images, participants and studies that
  something refers to cannot be deleted either (ON DELETE RESTRICT everywhere).

What code enforces (ORM hooks below, and `survey.service`):

- a study that participants have started gets no new pairs, and its pairs are not
  changed or deleted through the ORM (`StudyLockedError`, before the database would
  refuse anyway);
- images are write-once;
- an answered trial is never updated (the service answers with a conditional
  `UPDATE ... WHERE choice IS NULL`, so two concurrent answers cannot both land).

Timestamps are timezone-aware UTC in Python and stored as UTC.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    event,
    exists,
    inspect,
    select,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    mapped_column,
    object_session,
)

from survey.errors import AlreadyAnsweredError, StudyLockedError

__all__ = [
    "KINDS",
    "STUDY_NAME_RE",
    "Base",
    "Image",
    "Pair",
    "Participant",
    "Study",
    "Trial",
    "UTCDateTime",
    "new_token",
    "utcnow",
]

KINDS = ("test", "attention", "practice")
# study names end up in export file names: no path separators, no leading dot
STUDY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOKEN_BYTES = 16  # secrets.token_urlsafe(16): 22 characters, 128 random bits


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def new_token() -> str:
    """An opaque random id (URL-safe, 22 characters) for links and served images."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes stored as UTC; naive ones are refused, results are aware UTC.

    (SQLite keeps no time zone, so results without one are read back as UTC.)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime, got naive {value}")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    # constraint names fixed here, so errors and migrations name them the same way on
    # every database
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dt.datetime: UTCDateTime()}


class Study(Base):
    """One Turing test: its pairs, its participants and how trials are run."""

    __tablename__ = "studies"
    __table_args__ = (
        CheckConstraint("per_model >= 1", name="per_model"),
        CheckConstraint("display_ms >= 0", name="display_ms"),
        CheckConstraint("image_size >= 1", name="image_size"),
        CheckConstraint("seed >= 0", name="seed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    seed: Mapped[int] = mapped_column(BigInteger)
    per_model: Mapped[int]  # test trials per model per participant
    display_ms: Mapped[int]  # how long a pair is shown; 0 = until answered
    image_size: Mapped[int]  # longer side of the served images, in pixels

    def __repr__(self) -> str:
        return f"Study(id={self.id!r}, name={self.name!r})"


class Image(Base):
    """A served image: PNG bytes under an opaque random id, never a file name."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("id", "study_id"),  # target of the pairs' composite keys
        CheckConstraint("width >= 1 AND height >= 1", name="size"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_token)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="RESTRICT", onupdate="RESTRICT")
    )
    width: Mapped[int]
    height: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    def __repr__(self) -> str:
        return f"Image(id={self.id!r}, {self.width}x{self.height})"


class Pair(Base):
    """A real photo and a fake of it. `photo` (the source's key) is never served."""

    __tablename__ = "pairs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["real_image_id", "study_id"],
            ["images.id", "images.study_id"],
            ondelete="RESTRICT",
            onupdate="RESTRICT",
        ),
        ForeignKeyConstraint(
            ["fake_image_id", "study_id"],
            ["images.id", "images.study_id"],
            ondelete="RESTRICT",
            onupdate="RESTRICT",
        ),
        UniqueConstraint("study_id", "kind", "photo", "model"),
        # target of the trials' composite key: the whole content of a pair
        UniqueConstraint(
            "id",
            "study_id",
            "photo",
            "model",
            "kind",
            "real_image_id",
            "fake_image_id",
            name="uq_pairs_content",
        ),
        CheckConstraint("real_image_id <> fake_image_id", name="two_images"),
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        CheckConstraint("photo <> '' AND model <> ''", name="labels"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="RESTRICT", onupdate="RESTRICT")
    )
    photo: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # one of KINDS
    real_image_id: Mapped[str] = mapped_column(String(32))
    fake_image_id: Mapped[str] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"Pair(id={self.id!r}, kind={self.kind!r}, model={self.model!r})"


class Participant(Base):
    """One person's session; `token` is the secret in their link."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("id", "study_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="RESTRICT", onupdate="RESTRICT")
    )
    token: Mapped[str] = mapped_column(String(32), unique=True, default=new_token)
    consented_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    flagged: Mapped[bool] = mapped_column(default=False)  # failed an attention check

    def __repr__(self) -> str:
        return f"Participant(id={self.id!r}, flagged={self.flagged!r})"


class Trial(Base):
    """One pair in one participant's plan, and their answer once given."""

    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("participant_id", "pair_id"),  # one answer per person, pair
        UniqueConstraint("participant_id", "position"),
        ForeignKeyConstraint(
            ["participant_id", "study_id"],
            ["participants.id", "participants.study_id"],
            ondelete="RESTRICT",
            onupdate="RESTRICT",
        ),
        ForeignKeyConstraint(
            [
                "pair_id",
                "study_id",
                "photo",
                "model",
                "kind",
                "real_image_id",
                "fake_image_id",
            ],
            [
                "pairs.id",
                "pairs.study_id",
                "pairs.photo",
                "pairs.model",
                "pairs.kind",
                "pairs.real_image_id",
                "pairs.fake_image_id",
            ],
            ondelete="RESTRICT",
            onupdate="RESTRICT",
            name="fk_trials_pair_content",
        ),
        CheckConstraint("position >= 0", name="position"),
        CheckConstraint("views >= 0", name="views"),
        CheckConstraint("choice IN ('left', 'right')", name="choice"),
        CheckConstraint("response_ms >= 0", name="response_ms"),
        CheckConstraint(
            "(choice IS NULL AND is_correct IS NULL AND answered_at IS NULL"
            " AND response_ms IS NULL)"
            " OR (choice IS NOT NULL AND is_correct IS NOT NULL"
            " AND answered_at IS NOT NULL AND response_ms IS NOT NULL"
            " AND shown_at IS NOT NULL)",
            name="answer_complete",
        ),
        # correct = the participant picked the side the fake was on
        CheckConstraint(
            "is_correct IS NULL OR is_correct = ((choice = 'left') = left_is_fake)",
            name="is_correct",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True, default=new_token)
    participant_id: Mapped[int]
    study_id: Mapped[int]
    pair_id: Mapped[int]
    # copies of the pair's content, pinned by the composite foreign key
    photo: Mapped[str] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    real_image_id: Mapped[str] = mapped_column(String(32))
    fake_image_id: Mapped[str] = mapped_column(String(32))
    position: Mapped[int]  # 0-based order in the participant's plan
    left_is_fake: Mapped[bool]
    shown_at: Mapped[dt.datetime | None]  # last time the pair was served
    views: Mapped[int] = mapped_column(default=0)  # times served (reloads add one)
    choice: Mapped[str | None] = mapped_column(String(5))  # side judged colorized
    is_correct: Mapped[bool | None]
    answered_at: Mapped[dt.datetime | None]
    response_ms: Mapped[int | None]  # answered_at - shown_at

    def __repr__(self) -> str:
        return (
            f"Trial(id={self.id!r}, participant_id={self.participant_id!r}, "
            f"position={self.position!r}, choice={self.choice!r})"
        )


def _has_net_changes(target: Any) -> bool:
    session = object_session(target)
    return session is None or session.is_modified(target, include_collections=False)


def _study_started(connection: Connection, study_id: int) -> bool:
    return bool(connection.scalar(select(exists().where(Trial.study_id == study_id))))


def _refuse_if_started(connection: Connection, target: Pair) -> None:
    history = inspect(target).attrs.study_id.history
    for study_id in {*history.non_added(), *history.added} - {None}:
        if _study_started(connection, study_id):
            raise StudyLockedError(
                f"study {study_id} has participants; its pairs cannot change "
                "(create a new study instead)"
            )


@event.listens_for(Pair, "before_insert")
@event.listens_for(Pair, "before_delete")
def _refuse_adding_or_deleting_pairs(
    _mapper: Mapper[Pair], connection: Connection, target: Pair
) -> None:
    _refuse_if_started(connection, target)


@event.listens_for(Pair, "before_update")
def _refuse_updating_pairs(
    _mapper: Mapper[Pair], connection: Connection, target: Pair
) -> None:
    if _has_net_changes(target):
        _refuse_if_started(connection, target)


@event.listens_for(Image, "before_update")
def _refuse_image_changes(
    _mapper: Mapper[Image], _connection: Connection, target: Image
) -> None:
    if _has_net_changes(target):
        raise StudyLockedError(f"image {target.id} is write-once")


@event.listens_for(Trial, "before_update")
def _refuse_changing_answers(
    _mapper: Mapper[Trial], _connection: Connection, target: Trial
) -> None:
    previous = inspect(target).attrs.choice.history.non_added()
    if previous and previous[0] is not None and _has_net_changes(target):
        raise AlreadyAnsweredError("this pair has already been answered")

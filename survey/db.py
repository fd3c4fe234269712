"""Database engines for the survey: any SQLAlchemy URL, SQLite by default.

    engine = create_engine("sqlite:///survey.db")        # or postgresql+psycopg://...
    init_db(engine)                                       # create missing tables

A SQLite file is opened in WAL mode (readers do not block the writer, and a crash
never leaves a half-written answer) with foreign keys switched on, which SQLite leaves
off by default and the schema relies on. That `connect` hook is the only
dialect-specific code in the survey.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

from core.errors import UserError
from survey.errors import InvalidInputError, NotFoundError, SurveyError
from survey.models import Base

__all__ = [
    "COMMAND_ERRORS",
    "DEFAULT_URL",
    "command_error",
    "create_engine",
    "db_error_message",
    "init_db",
]

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///survey.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another one to finish


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    """Per connection: foreign keys on, WAL journal, wait for locks rather than fail."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # in-memory databases answer "memory" and stay so; that is fine for tests
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def create_engine(url: str = DEFAULT_URL, *, must_exist: bool = False) -> Engine:
    """An engine for `url` (e.g. `sqlite:///survey.db`, `postgresql+psycopg://...`).

    must_exist: for read-only commands, refuse a SQLite file that does not exist
    instead of silently creating an empty database.
    Raises InvalidInputError for a malformed URL or a driver that is not installed,
    and NotFoundError for a missing SQLite file when `must_exist`.
    """
    try:
        parsed = make_url(url)
        engine = sqlalchemy.create_engine(parsed)
    except (ArgumentError, ValueError) as err:
        raise InvalidInputError(f"bad database URL {url!r}: {err}") from err
    except ModuleNotFoundError as err:
        raise InvalidInputError(
            f"database URL {url!r} needs the Python package {err.name!r}; "
            "install it (e.g. `pip install 'psycopg[binary]'` for PostgreSQL)"
        ) from err
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if must_exist and not in_memory and not Path(database).is_file():
            raise NotFoundError(f"no survey database at {database}")
        event.listen(engine, "connect", _sqlite_on_connect)
    log.debug("engine for %s", parsed.render_as_string(hide_password=True))
    return engine


def init_db(engine: Engine) -> None:
    """Create the survey tables that do not exist yet (existing data is untouched)."""
    Base.metadata.create_all(engine)


# what the survey's command lines report as one `error:` line and exit 2
COMMAND_ERRORS = (SurveyError, DBAPIError)


class CommandError(UserError):
    """One of COMMAND_ERRORS as `core.cli.run_main` reports it: its one-line message."""


@contextmanager
def command_errors(url: str) -> Iterator[None]:
    """Inside the block, COMMAND_ERRORS become CommandError with `command_error`'s
    message (the database named by `url`), for `core.cli.run_main`."""
    try:
        yield
    except COMMAND_ERRORS as err:
        raise CommandError(command_error(url, err)) from err


def command_error(url: str, err: Exception) -> str:
    """The one-line message of one of COMMAND_ERRORS (the database named by `url`)."""
    if isinstance(err, DBAPIError):
        return db_error_message(url, err)
    return str(err)


def db_error_message(url: str, err: DBAPIError) -> str:
    """One line for users: which database (password hidden) and the driver's reason."""
    try:
        where = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        where = "the database"
    lines = str(err.orig or err).strip().splitlines()
    return f"{where}: {lines[0] if lines else type(err).__name__}"

"""Errors the survey reports to its callers, each with an HTTP-like `status`.

The web UI catches `SurveyError` and shows `str(err)` with `err.status`; the command
lines print `error: <message>` and exit 2. Messages are one line and never contain a
file name, a path or which image of a pair is real.
"""

from __future__ import annotations

__all__ = [
    "AlreadyAnsweredError",
    "InvalidInputError",
    "NotAssignedError",
    "NotFoundError",
    "NotShownError",
    "StorageError",
    "StudyExistsError",
    "StudyLockedError",
    "SurveyError",
]


class SurveyError(Exception):
    """Base class; `status` is the HTTP status a web front end should answer with."""

    status = 400


class InvalidInputError(SurveyError):
    """A malformed value from a participant or a researcher (e.g. choice "middle")."""

    status = 422


class NotFoundError(SurveyError):
    """An unknown (or malformed) study name, participant token, trial id or image id."""

    status = 404


class NotAssignedError(SurveyError):
    """An answer for a trial that belongs to another participant (a forged answer)."""

    status = 403


class NotShownError(SurveyError):
    """An answer for a trial whose images were never served to this participant."""

    status = 409


class AlreadyAnsweredError(SurveyError):
    """A second answer for the same trial: a replay or a double click."""

    status = 409


class StudyExistsError(SurveyError):
    """`survey.create` was asked for a study name that is already taken."""

    status = 409


class StudyLockedError(SurveyError):
    """A change to the pairs or images of a study that participants have started."""

    status = 409


class StorageError(SurveyError):
    """The database refused or failed a write: the answer was NOT saved."""

    status = 503

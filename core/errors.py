"""Errors raised for users: input that is wrong, as opposed to a bug.

A command line's `main()` prints a `UserError` as one line, `error: <message>`, with
exit status 2 (docs/design.md 7.4); any other exception keeps its traceback. Raise
`InvalidInputError` for a wrong value (an option, a file's content, a model that does
not fit), `MissingInputError` for a file or folder that is not there and
`OutputExistsError` for an output that would be overwritten; each is also the built-in
error it refines (ValueError, FileNotFoundError, FileExistsError), so callers that
catch those still do.
"""

from __future__ import annotations

__all__ = ["InvalidInputError", "MissingInputError", "OutputExistsError", "UserError"]


class UserError(Exception):
    """Something the user gave is wrong; the message says what came and what was
    expected, in one line."""


class InvalidInputError(UserError, ValueError):
    """A value the user gave (an option, a file's content) is not usable."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user named is not there."""


class OutputExistsError(UserError, FileExistsError):
    """An output the user named exists already and is not to be overwritten."""

"""The opening and the end shared by the command lines (`main(argv) -> int`).

    def main(argv: list[str] | None = None) -> int:
        return run_main(_parser(), argv, _run)

`run_main` parses the arguments (a usage error returns argparse's status 2, `--help`
0), configures logging (the only place a program does), quiets TensorFlow's Python
loggers (per-collective and per-save notes; its C++ start-up notes are core.quiet's),
and runs the program. An error raised for the user (`core.errors.UserError`, and the
types a program adds in `errors`) becomes one line `error: <message>` on stderr and
exit status 2; any other exception is a bug and keeps its traceback (docs/design.md
7.4).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from core.errors import UserError

__all__ = ["LOG_FORMAT", "TIMED_LOG_FORMAT", "quiet_tensorflow", "run_main"]

LOG_FORMAT = "%(message)s"
TIMED_LOG_FORMAT = "%(asctime)s %(message)s"  # for long runs (training, benchmarks)
QUIET_LOGGERS = ("tensorflow", "absl")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's and absl's Python loggers to warnings and errors."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def run_main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    run: Callable[[argparse.Namespace], int],
    *,
    level: int = logging.INFO,
    log_format: str = LOG_FORMAT,
    force_logging: bool = False,
    errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Parse `argv` (sys.argv[1:] when None) with `parser`, set up logging, return
    `run(args)`'s exit status.

    level, log_format: the root logger's (`logging.basicConfig`; force_logging
    replaces handlers already there). errors: exception types besides `UserError`
    that this program reports as one line with status 2.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or an argparse usage error (2)
        return int(exit_.code or 0)
    logging.basicConfig(level=level, format=log_format, force=force_logging)
    quiet_tensorflow()
    try:
        return run(args)
    except (UserError, *errors) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

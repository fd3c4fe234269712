"""core.cli.run_main: the shared opening and error handling of the command lines."""

import argparse
import logging

import pytest

from core.cli import run_main
from core.errors import InvalidInputError, MissingInputError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prog")
    parser.add_argument("--n", type=int, default=1)
    return parser


def test_usage_errors_and_help_return_argparse_status(capsys) -> None:
    assert run_main(_parser(), ["--n", "x"], lambda args: 0) == 2
    assert "invalid int value" in capsys.readouterr().err
    assert run_main(_parser(), ["--help"], lambda args: 1) == 0
    assert "--n" in capsys.readouterr().out


def test_the_program_gets_the_parsed_arguments_and_gives_the_status() -> None:
    assert run_main(_parser(), ["--n", "7"], lambda args: args.n) == 7


@pytest.mark.parametrize(
    "error", [InvalidInputError("--n 0: expected 1 or more"), MissingInputError("x")]
)
def test_a_user_error_is_one_line_and_status_2(capsys, error) -> None:
    def run(args: argparse.Namespace) -> int:
        raise error

    assert run_main(_parser(), [], run) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {error}"]


def test_a_bug_keeps_its_traceback() -> None:
    def run(args: argparse.Namespace) -> int:
        return int("not a number")  # a ValueError no user caused

    with pytest.raises(ValueError, match="not a number"):
        run_main(_parser(), [], run)


def test_a_program_may_add_its_own_user_errors(capsys) -> None:
    def run(args: argparse.Namespace) -> int:
        raise KeyError("no entry 'x'")

    assert run_main(_parser(), [], run, errors=(KeyError,)) == 2
    assert capsys.readouterr().err.strip() == "error: \"no entry 'x'\""


def test_tensorflow_loggers_are_kept_to_warnings() -> None:
    logging.getLogger("tensorflow").setLevel(logging.INFO)
    run_main(_parser(), [], lambda args: 0)
    assert logging.getLogger("tensorflow").level == logging.WARNING
    assert logging.getLogger("absl").level == logging.WARNING

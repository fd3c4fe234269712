"""Start the web app: `python app.py`, then open http://127.0.0.1:7860.

    python app.py [--host 127.0.0.1] [--port 7860] [--db URL] [--survey-port 7861]
                  [--weights NAME=FILE ...] [--max-pixels N] [--max-bytes N]

The page colorizes one photo (every model with shipped weights to choose from, and all
of them side by side), or many photos into a zip. The Turing-test survey runs beside
it on a page of its own, on --survey-port: participants open `/?study=NAME` there and
see the survey alone, nothing of the colorization app; the results are at `/admin`
there when SURVEY_ADMIN_TOKEN is set. It runs offline: no analytics, no share link,
nothing downloaded at start-up.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

from core.cli import run_main
from core.config import add_dataclass_args, dataclass_from_args
from core.errors import InvalidInputError
from demo.limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_TIME_LIMIT_S,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppConfig:
    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address to listen on (0.0.0.0: every network interface)"},
    )
    port: int = field(default=7860, metadata={"help": "port to listen on"})
    survey_port: int = field(
        default=7861,
        metadata={
            "help": "port of the survey's own page (participants' links point there)"
        },
    )
    db: str = field(
        default="sqlite:///survey.db",
        metadata={
            "help": "survey database (SQLAlchemy URL, e.g. sqlite:///survey.db or "
            "postgresql+psycopg://user:pw@host/survey); the survey page reads and "
            "writes it, and its results page (/admin) exists when the environment "
            "variable SURVEY_ADMIN_TOKEN holds the admin token"
        },
    )
    weights: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "NAME=FILE: also offer model NAME with this weights file, e.g. "
            "default=runs/default/best.weights.h5 (models whose weights ship in "
            "core/weights/ are always offered)"
        },
    )
    max_pixels: int = field(
        default=DEFAULT_MAX_PIXELS,
        metadata={"help": "largest photo accepted, in pixels"},
    )
    max_bytes: int = field(
        default=DEFAULT_MAX_BYTES, metadata={"help": "largest file accepted, in bytes"}
    )
    concurrency: int = field(
        default=DEFAULT_CONCURRENCY,
        metadata={"help": "photos colorized at the same time; other requests queue"},
    )
    queue_size: int = field(
        default=DEFAULT_QUEUE_SIZE,
        metadata={"help": "requests that may wait; more are asked to try again later"},
    )
    time_limit: float = field(
        default=DEFAULT_TIME_LIMIT_S,
        metadata={
            "help": "seconds one request may take before it is stopped with a message "
            "(0: no limit)"
        },
    )


def parse_weights(items: tuple[str, ...]) -> dict[str, Path]:
    """`NAME=FILE` items as {name: path}; ValueError with a one-line message."""
    weights = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file:
            raise ValueError(f"--weights expects NAME=FILE, got {item!r}")
        weights[name] = Path(file)
    return weights


def _usage_error(cfg: AppConfig) -> str | None:
    for flag, port in (("--port", cfg.port), ("--survey-port", cfg.survey_port)):
        if not 0 <= port <= 65535:
            return f"{flag} must be between 0 and 65535, got {port}"
    if cfg.port == cfg.survey_port != 0:
        return f"--port and --survey-port must differ, both are {cfg.port}"
    for flag, value in (
        ("--max-pixels", cfg.max_pixels),
        ("--max-bytes", cfg.max_bytes),
        ("--concurrency", cfg.concurrency),
        ("--queue-size", cfg.queue_size),
    ):
        if value < 1:
            return f"{flag} must be at least 1, got {value}"
    if not cfg.time_limit >= 0:
        return f"--time-limit must be 0 or more seconds, got {cfg.time_limit}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
    )
    add_dataclass_args(parser, AppConfig)
    return run_main(parser, argv, _run, level=logging.WARNING, force_logging=True)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(AppConfig, args)
    log.setLevel(logging.INFO)  # this program's notes, without every HTTP request
    problem = _usage_error(cfg)
    try:
        weights = parse_weights(cfg.weights)
    except ValueError as err:
        problem = problem or str(err)
    if problem is not None:
        raise InvalidInputError(problem)

    from demo.tempdirs import private_temp

    # uploads, results and exports live in a private (0700) folder of this process,
    # removed at exit and on SIGTERM (after a kill -9, by the next start)
    with private_temp():
        return _serve(cfg, weights)


def _serve(cfg: AppConfig, weights: dict[str, Path]) -> int:
    """Build the page and serve it until stopped; a model or database error is a
    UserError (one line, status 2 from run_main)."""
    # imported here: gradio and TensorFlow take seconds to load, --help should not
    import os

    from demo import build_demo, launch_options
    from survey import ADMIN_TOKEN_ENV, build_survey_app, command_errors, launch_survey

    # the admin token comes from the environment: a command line shows in `ps`;
    # unknown models, missing or damaged weights and database errors are UserErrors
    with command_errors(cfg.db):
        survey = build_survey_app(cfg.db, os.environ.get(ADMIN_TOKEN_ENV) or None)
    demo = build_demo(
        weights=weights,
        max_pixels=cfg.max_pixels,
        max_bytes=cfg.max_bytes,
        concurrency_limit=cfg.concurrency,
        queue_size=cfg.queue_size,
        time_limit_s=cfg.time_limit or None,
    )
    try:
        survey_url = launch_survey(survey, cfg.host, cfg.survey_port)
    except OSError as err:
        raise InvalidInputError(
            f"cannot listen on {cfg.host}:{cfg.survey_port} (--survey-port): {err}"
        ) from err
    # quiet: Gradio's own lines invite a public share link, against this app's
    # offline promise; the addresses are printed here instead
    demo.launch(
        server_name=cfg.host,
        server_port=cfg.port,
        quiet=True,
        prevent_thread_lock=True,
        **launch_options(max_bytes=cfg.max_bytes),
    )
    print(f"colorize app: http://{cfg.host}:{cfg.port}", flush=True)
    print(f"survey: participants open {survey_url}?study=NAME", flush=True)
    print("stop with Ctrl+C", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

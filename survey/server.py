"""The survey on a web page of its own, without the colorization models.

    python -m survey.server [--db sqlite:///survey.db] [--host 127.0.0.1] [--port 7861]
    SURVEY_ADMIN_TOKEN=... python -m survey.server ...    # adds the results page

Participants open `/?study=NAME`: the page holds the Turing test alone (no tabs, no
colorization, nothing about the models). With an admin token the results are on a
page of their own, `/admin`, which no participant's page links to or loads. `app.py`
starts the same server next to the colorization app, so a study can also run where
TensorFlow is not installed, and the load test (`python -m benchmarks.survey_load`)
starts it. The admin token is read from the environment rather than the command
line, where `ps` would show it.

Prints the page's address once it is listening. Exit status: 0 after the server
stops (Ctrl-C); 2 bad usage, a database that cannot be opened or a port in use.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass, field

import gradio as gr

from core.cli import run_main
from core.config import add_dataclass_args, dataclass_from_args
from survey.db import DEFAULT_URL, CommandError, command_errors
from survey.ui import survey_pages

__all__ = [
    "ADMIN_TOKEN_ENV",
    "PAGE_TITLE",
    "RESULTS_PATH",
    "ServerConfig",
    "build_survey_app",
    "launch_survey",
    "main",
]

log = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "SURVEY_ADMIN_TOKEN"
QUEUE_SIZE = 64  # result pages that may wait; participants' events skip the queue
PAGE_TITLE = "Photo survey"  # the browser's tab; says nothing about colorization
RESULTS_PATH = "admin"
# Gradio 6.31 shows a navigation bar on every page of a multipage app, even with
# gr.Navbar(visible=False); nothing may lead a participant to the results page
HIDE_NAVBAR = ".nav-holder { display: none !important; }"


@dataclass(frozen=True)
class ServerConfig:
    db: str = field(default=DEFAULT_URL, metadata={"help": "SQLAlchemy database URL"})
    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address to listen on (0.0.0.0: every network interface)"},
    )
    port: int = field(default=7861, metadata={"help": "port to listen on"})


def build_survey_app(db_url: str, admin_token: str | None) -> gr.Blocks:
    """The survey's pages: the Turing test at `/`, the results at `/admin` (only
    when an admin token is given). Gradio sends each page only its own components
    and events, so a participant's page holds nothing of the results page."""
    pages = survey_pages(db_url, admin_token)
    (_, participant), *rest = pages
    with gr.Blocks(title=PAGE_TITLE, analytics_enabled=False) as app:
        participant()
    for title, render in rest:
        with app.route(title, RESULTS_PATH, show_in_navbar=False):
            render()
    app.queue(max_size=QUEUE_SIZE)
    return app


def launch_survey(app: gr.Blocks, host: str, port: int) -> str:
    """Start serving `app` in the background; returns its address.

    Raises OSError when the port cannot be listened on.
    """
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=["settings"],
        css=HIDE_NAVBAR,
        prevent_thread_lock=True,
        quiet=True,
    )
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m survey.server",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_args(parser, ServerConfig)
    return run_main(parser, argv, _run, level=logging.WARNING, force_logging=True)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(ServerConfig, args)
    if not 0 <= cfg.port <= 65535:
        raise CommandError(f"--port must be between 0 and 65535, got {cfg.port}")
    with command_errors(cfg.db):
        app = build_survey_app(cfg.db, os.environ.get(ADMIN_TOKEN_ENV) or None)
    try:
        url = launch_survey(app, cfg.host, cfg.port)
    except OSError as err:
        raise CommandError(f"cannot listen on {cfg.host}:{cfg.port}: {err}") from err
    print(url, flush=True)  # the address to share (with ?study=NAME)
    app.block_thread()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The survey on a web page of its own, without the colorization models.

    python -m survey.server [--db sqlite:///survey.db] [--host 127.0.0.1] [--port 7861]
    SURVEY_ADMIN_TOKEN=... python -m survey.server ...    # adds the results tab

The page holds the same tabs that `app.py` adds to the colorization app
(`survey.ui.survey_tabs`), so a study can run where TensorFlow is not installed, and
the load test (`python -m benchmarks.survey_load`) starts it. The admin token is read
from the environment rather than the command line, where `ps` would show it.

Prints the page's address once it is listening. Exit status: 0 after the server
stops (Ctrl-C); 2 bad usage, a database that cannot be opened or a port in use.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field

import gradio as gr

from core.config import add_dataclass_args, dataclass_from_args
from survey.db import COMMAND_ERRORS, DEFAULT_URL, command_error
from survey.ui import survey_tabs

__all__ = ["ADMIN_TOKEN_ENV", "ServerConfig", "build_survey_app", "main"]

log = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "SURVEY_ADMIN_TOKEN"
QUEUE_SIZE = 64  # result pages that may wait; participants' events skip the queue


@dataclass(frozen=True)
class ServerConfig:
    db: str = field(default=DEFAULT_URL, metadata={"help": "SQLAlchemy database URL"})
    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address to listen on (0.0.0.0: every network interface)"},
    )
    port: int = field(default=7861, metadata={"help": "port to listen on"})


def build_survey_app(db_url: str, admin_token: str | None) -> gr.Blocks:
    """A page with the survey's tabs only (the results tab when a token is given)."""
    tabs = survey_tabs(db_url, admin_token)
    with gr.Blocks(title="Turing test", analytics_enabled=False) as app:
        with gr.Tabs():
            for title, render in tabs:
                with gr.Tab(title):
                    render()
    app.queue(max_size=QUEUE_SIZE)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m survey.server",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_args(parser, ServerConfig)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or an argparse usage error (2)
        return int(exit_.code or 0)
    cfg = dataclass_from_args(ServerConfig, args)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
    if not 0 <= cfg.port <= 65535:
        print(
            f"error: --port must be between 0 and 65535, got {cfg.port}",
            file=sys.stderr,
        )
        return 2
    try:
        app = build_survey_app(cfg.db, os.environ.get(ADMIN_TOKEN_ENV) or None)
    except COMMAND_ERRORS as err:
        print(f"error: {command_error(cfg.db, err)}", file=sys.stderr)
        return 2
    try:
        _, url, _ = app.launch(
            server_name=cfg.host,
            server_port=cfg.port,
            share=False,
            ssr_mode=False,
            pwa=False,
            mcp_server=False,
            enable_monitoring=False,
            footer_links=["settings"],
            prevent_thread_lock=True,
            quiet=True,
        )
    except OSError as err:
        print(f"error: cannot listen on {cfg.host}:{cfg.port}: {err}", file=sys.stderr)
        return 2
    print(url, flush=True)  # the address to share (with ?study=NAME)
    app.block_thread()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the survey's pages share: HTML templates, one transaction per request, errors.

Templates live in `survey/templates/` and are rendered by Jinja2 (it comes with
Gradio) with autoescape on: every value put into a page is escaped, study names and
photo file names included; HTML made by another template goes in as `Markup`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import jinja2
from markupsafe import Markup
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from survey.errors import StorageError

__all__ = ["TEMPLATES", "Markup", "page_error", "render", "style", "transaction"]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")

T = TypeVar("T")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,  # a value a template needs and did not get
    )


def render(template: str, **values: Any) -> Markup:
    """`survey/templates/<template>` filled with `values`, every one escaped unless
    it is `Markup`; surrounding whitespace stripped."""
    return Markup(_environment().get_template(template).render(**values).strip())


@functools.cache
def style(name: str) -> str:
    """`survey/templates/<name>` (a CSS file) inside a <style> element."""
    return f"<style>\n{(TEMPLATES / name).read_text()}</style>"


def page_error(message: str) -> gr.Error:
    """The message for the participant's or admin's page; Gradio logs no traceback
    for it (the handlers log what the operator needs as one line)."""
    return gr.Error(message, print_exception=False)


def transaction(engine: Engine, work: Callable[[Session], T]) -> T:
    """`work(session)` in one transaction; a database failure becomes StorageError."""
    try:
        with Session(engine) as session, session.begin():
            return work(session)
    except (DBAPIError, PoolTimeoutError) as err:
        log.error("survey database failed: %s", err)
        raise StorageError("the survey database failed; nothing was stored") from err

"""The survey's pages: the Turing test for participants, and its results.

    from survey.server import build_survey_app
    app = build_survey_app("sqlite:///survey.db", admin_token)   # uses survey_pages

`survey_pages` opens the database (creating missing tables) and returns
(title, render) pairs; each `render()` adds its components and events to the page
being built. The results page exists only when an admin token is given; wrong tokens
are limited per client (`survey.throttle`) and logged as one line each.

The survey's web code is in three parts:

- `survey.participant`: the participant's flow, handlers of an Engine (`open_page`,
  `consent`, `answer`, `hide_photos`) returning the `Page` to show;
- `survey.results`: the results page's handler (`results_page`) and tables;
- this module: the components of both pages and their wiring; `survey.web`: what
  they share (Jinja2 templates in `survey/templates/`, autoescaped; transactions).

Participant flow: a link `/?study=NAME` opens the instructions and consent; after
consent the participant gets a token and the page's address becomes their own link
`/?study=NAME&p=TOKEN` (shown on the page), so a reload or a later visit continues
where they stopped. Each pair is shown side by side for the study's display time;
then the page's display timer asks the server for the pair without its photos
(`hide_photos`), so the page no longer holds them, and the answer buttons stay. The
last page shows their score. Images travel inside the page as `data:` URIs of the
stored PNGs, which `survey.encoding` makes the same length and format for both photos
of a pair: no URL, file name, id or byte count tells the two apart.

Every value from the page is validated by `survey.service`; everything shown is
escaped. Expected errors are shown to the user and never logged with a traceback.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from sqlalchemy import Engine

from survey import service
from survey.db import create_engine, init_db
from survey.participant import (
    Page,
    Visit,
    answer,
    consent,
    hide_photos,
    open_page,
    personal_link,
)
from survey.results import Results, results_page
from survey.throttle import AdminGate
from survey.web import style

__all__ = [
    "PARTICIPANT_TAB",
    "RESULTS_TAB",
    "Page",
    "Results",
    "Visit",
    "answer",
    "consent",
    "open_page",
    "personal_link",
    "results_page",
    "hide_photos",
    "survey_pages",
]

log = logging.getLogger(__name__)

PARTICIPANT_TAB = "Turing test"
RESULTS_TAB = "Survey results"
SHORT_ADMIN_TOKEN = 16  # a shorter token is accepted, with a warning in the log
RESULTS_CONCURRENCY = 2  # result pages computed at once (bootstrap: 10,000 resamples)

# shows the link relative to the page as an absolute one, as the browser resolves it
LINK_TEMPLATE = (
    '${value ? \'<p class="survey-link">Your personal link, to continue later: '
    "<a href=\"' + value + '\">' + new URL(value, window.location.href).href + "
    "'</a></p>' : ''}"
)

# after consent the address bar shows the personal link, so a reload continues
_KEEP_LINK_JS = """(link) => {
  if (link) window.history.replaceState(null, "", link);
}"""


# ---------------------------------------------------------------- tabs


def survey_pages(
    db_url: str, admin_token: str | None
) -> list[tuple[str, Callable[[], None]]]:
    """The survey's pages as (title, render) pairs: the Turing test for participants,
    then the results when an admin token is given (`survey.server` puts them at `/`
    and `/admin`). Each `render()` adds its components and events to the page being
    built.

    db_url: SQLAlchemy URL of the survey database (missing tables are created).
    admin_token: the secret that opens the results; None or "" leaves the results
    page out, and no results are served at all.
    Raises InvalidInputError for a malformed URL and sqlalchemy's OperationalError
    when the database cannot be opened.
    """
    engine = create_engine(db_url)
    init_db(engine)
    pages = [(PARTICIPANT_TAB, lambda: _render_participant(engine))]
    if admin_token:
        if len(admin_token) < SHORT_ADMIN_TOKEN:
            log.warning(
                "the admin token has %d characters; use at least %d (e.g. python -c "
                "'import secrets; print(secrets.token_urlsafe())')",
                len(admin_token),
                SHORT_ADMIN_TOKEN,
            )
        gate = AdminGate(admin_token)
        pages.append((RESULTS_TAB, lambda: _render_results(engine, gate)))
    return pages


def _timer_updates(view: service.TrialView | None) -> tuple[gr.Timer, gr.Timer]:
    """The display timers for the pair on screen: the one of its parity (odd, even)
    switched on with the study's display time, the other off; both off otherwise."""
    if view is None or view.display_ms <= 0:
        return gr.Timer(active=False), gr.Timer(active=False)
    on = gr.Timer(view.display_ms / 1000.0, active=True)
    off = gr.Timer(active=False)
    return (on, off) if view.number % 2 else (off, on)


def _render_participant(engine: Engine) -> None:
    """The Turing test: layout and events (called inside the app's tab)."""
    visit = gr.State(Visit())
    notice = gr.HTML(
        "",
        html_template=style("participant.css") + "${value}",
        js_on_load=None,
        elem_id="survey-notice",
    )
    closed = gr.HTML(
        '<p class="survey-study">Loading the study\u2026</p>',
        js_on_load=None,
        elem_id="survey-closed",
    )
    with gr.Column(visible=False, elem_id="survey-intro-box") as intro_box:
        intro = gr.HTML("", js_on_load=None, elem_id="survey-intro")
        agree = gr.Checkbox(
            label="I have read this and agree to take part.",
            value=False,
            elem_id="survey-consent",
        )
        start = gr.Button(
            "Start", variant="primary", interactive=False, elem_id="survey-start"
        )
    with gr.Column(visible=False) as trial_box:
        pair = gr.HTML("", js_on_load=None, elem_id="survey-pair")
        with gr.Row(elem_id="survey-answers"):
            left = gr.Button(
                "\u25c0  The left one", variant="primary", elem_id="survey-left"
            )
            right = gr.Button(
                "The right one  \u25b6", variant="primary", elem_id="survey-right"
            )
    with gr.Column(visible=False, elem_id="survey-done-box") as done_box:
        done = gr.HTML("", js_on_load=None, elem_id="survey-done")
    link = gr.HTML(
        "", html_template=LINK_TEMPLATE, js_on_load=None, elem_id="survey-link"
    )
    # one-shot display timers, odd pairs on one, even pairs on the other: a timer
    # restarts only when it is switched on, and the next pair switches on the other
    timers = (gr.Timer(1.0, active=False), gr.Timer(1.0, active=False))

    outputs = [
        visit,
        notice,
        closed,
        intro_box,
        intro,
        agree,
        trial_box,
        pair,
        done_box,
        done,
        link,
        *timers,
    ]

    def show(page: Page) -> tuple[Any, ...]:
        step = page.step
        return (
            page.visit,
            page.notice,
            gr.update(
                value=page.body if step == "closed" else "", visible=step == "closed"
            ),
            gr.update(visible=step == "intro"),
            page.body if step == "intro" else gr.update(),
            False if step == "intro" else gr.update(),
            gr.update(visible=step == "trial"),
            page.body if step == "trial" else gr.update(),
            gr.update(visible=step == "done"),
            page.body if step == "done" else gr.update(),
            personal_link(page.visit),
            *_timer_updates(page.visit.view if step == "trial" else None),
        )

    def on_time_up(parity: int):
        def hide(current: Visit):
            page = hide_photos(current, parity)
            stop = gr.Timer(active=False)
            if page is None:
                return gr.update(), stop
            return page.body, stop

        return hide

    def on_open(request: gr.Request):
        query = request.query_params if request is not None else {}
        return show(open_page(engine, query.get("study"), query.get("p")))

    def on_start(current: Visit, agreed: bool):
        return show(consent(engine, current, agreed))

    def on_left(current: Visit):
        return show(answer(engine, current, "left"))

    def on_right(current: Visit):
        return show(answer(engine, current, "right"))

    # the survey's events skip the queue: they are short database calls and must
    # not wait behind colorizations; `undocumented` keeps them off the API page
    fast = {"queue": False, "api_visibility": "undocumented"}
    gr.on(
        triggers=None,
        fn=on_open,
        outputs=outputs,
        api_name="survey_open",
        show_progress="hidden",
        **fast,
    )
    for parity, timer in ((1, timers[0]), (0, timers[1])):
        timer.tick(
            on_time_up(parity),
            inputs=visit,
            outputs=[pair, timer],
            show_progress="hidden",
            queue=False,
            api_visibility="private",
        )
    agree.change(
        lambda a: gr.update(interactive=bool(a)),
        inputs=agree,
        outputs=start,
        queue=False,
        api_visibility="private",
    )
    start.click(
        on_start,
        inputs=[visit, agree],
        outputs=outputs,
        api_name="survey_start",
        show_progress="minimal",
        **fast,
    ).then(None, inputs=link, js=_KEEP_LINK_JS)
    left.click(
        on_left,
        inputs=visit,
        outputs=outputs,
        api_name="survey_left",
        show_progress="minimal",
        **fast,
    )
    right.click(
        on_right,
        inputs=visit,
        outputs=outputs,
        api_name="survey_right",
        show_progress="minimal",
        **fast,
    )


def _render_results(engine: Engine, gate: AdminGate) -> None:
    """The results page: admin token, study, tables and CSV download."""
    # exports live as long as the page; TemporaryDirectory removes them when it goes
    exports = tempfile.TemporaryDirectory(prefix="survey-exports-")
    with gr.Row(equal_height=True):
        token = gr.Textbox(
            label="Admin token", type="password", scale=3, elem_id="survey-admin-token"
        )
        study = gr.Dropdown(
            label="Study", choices=[], value=None, scale=3, elem_id="survey-study"
        )
        flagged = gr.Checkbox(
            label="Include participants who failed an attention check",
            scale=3,
            elem_id="survey-include-flagged",
        )
        show_button = gr.Button(
            "Show results", variant="primary", scale=1, elem_id="survey-show-results"
        )
    report = gr.HTML(
        "<p>Enter the admin token given when the app was started.</p>",
        html_template=style("results.css") + "${value}",
        js_on_load=None,
        elem_id="survey-results",
    )
    download = gr.DownloadButton(
        "Download all answers (CSV)",
        value=None,
        interactive=False,
        elem_id="survey-export",
    )

    def on_show(given: str, name: str | None, include: bool, request: gr.Request):
        client = request.client.host if request and request.client else ""
        results = results_page(
            engine, gate, given, name, bool(include), Path(exports.name), client
        )
        return (
            gr.update(choices=results.studies, value=results.study or None),
            results.html,
            gr.update(
                value=str(results.csv) if results.csv else None,
                interactive=results.csv is not None,
            ),
        )

    gr.on(
        triggers=[show_button.click, token.submit, study.input, flagged.input],
        fn=on_show,
        inputs=[token, study, flagged],
        outputs=[study, report, download],
        api_name="survey_results",
        api_visibility="undocumented",
        concurrency_id="survey-results",
        concurrency_limit=RESULTS_CONCURRENCY,
    )

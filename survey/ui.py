"""The survey's pages: the Turing test for participants, and its results.

    from survey.server import build_survey_app
    app = build_survey_app("sqlite:///survey.db", admin_token)   # uses survey_pages

`survey_pages` opens the database (creating missing tables) and returns
(title, render) pairs; each `render()` adds its components and events to the page
being built. The results page exists only when an admin token is given; wrong tokens
are limited per client (`survey.throttle`) and logged as one line each.

Participant flow: a link `/?study=NAME` opens the instructions and consent; after
consent the participant gets a token and the page's address becomes their own link
`/?study=NAME&p=TOKEN` (shown on the page), so a reload or a later visit continues
where they stopped. Each pair is shown side by side for the study's display time;
then the page's display timer asks the server for the pair without its photos
(`hide_photos`), so the page no longer holds them, and the answer buttons stay. The
last page shows their score. Images travel inside the page as `data:` URIs of the
stored PNGs, which `survey.encoding` makes the same length and format for both photos
of a pair: no URL, file name, id or byte count tells the two apart.

Handlers come first as plain functions of an Engine (`open_page`, `consent`,
`answer`, `hide_photos`, `results_page`), then the page builders and the wiring.
Every value from the page is validated by `survey.service`; everything shown is
escaped. A database failure while answering raises `gr.Error("... not saved ...")`
and leaves the page as it was, so the participant simply answers again. Expected
errors are shown to the user and never logged with a traceback.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from core.atomic import atomic_write_bytes
from survey import service, stats
from survey.db import create_engine, init_db
from survey.errors import (
    AlreadyAnsweredError,
    InvalidInputError,
    NotAssignedError,
    NotFoundError,
    NotShownError,
    StorageError,
)
from survey.export import csv_bytes
from survey.models import STUDY_NAME_RE
from survey.throttle import AdminGate, AdminRefused

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
SECONDS_PER_PAIR = 5  # for the "about N minutes" estimate on the instructions page
SHORT_ADMIN_TOKEN = 16  # a shorter token is accepted, with a warning in the log
RESULTS_CONCURRENCY = 2  # result pages computed at once (bootstrap: 10,000 resamples)

NOT_SAVED = "Your answer was not saved. Please click your choice again."
DATABASE_DOWN = (
    "The survey's database cannot be reached right now. Please try again in a minute."
)
BAD_LINK = (
    "This participant link is not valid. Check that you opened the whole link, "
    "or start again from the study's link."
)
SESSION_LOST = (
    "This page lost track of your place. Reload the page to continue where you stopped."
)

T = TypeVar("T")


def _error(message: str) -> gr.Error:
    """The message for the participant's or admin's page; Gradio logs no traceback
    for it (the handlers log what the operator needs as one line)."""
    return gr.Error(message, print_exception=False)


# ---------------------------------------------------------------- participant handlers


@dataclass(frozen=True)
class Visit:
    """Who is on the page and which pair they see (the page's server-side state)."""

    study: str = ""  # a valid study name, or "" when the page has none
    token: str = ""  # the participant's secret, once they have consented
    trial_id: str = ""  # the pair on screen
    view: service.TrialView | None = None  # what was served for it (no answer key)


@dataclass(frozen=True)
class Page:
    """What the participant's page shows after a handler.

    step: "intro" (instructions and consent), "trial", "done" or "closed" (nothing to
    take part in; `body` says why). body: HTML of the step. notice: HTML above it
    (practice feedback, a note about a replayed answer), "" for none.
    """

    step: str
    visit: Visit
    body: str
    notice: str = ""


def personal_link(visit: Visit) -> str:
    """The participant's own link relative to the page: `?study=NAME&p=TOKEN`.

    "" before consent. Both parts are validated names and tokens, so the link needs
    no further escaping beyond URL encoding.
    """
    if not visit.token:
        return ""
    query = {"study": visit.study} if visit.study else {}
    query["p"] = visit.token
    return "?" + urllib.parse.urlencode(query)


def _transaction(engine: Engine, work: Callable[[Session], T]) -> T:
    """`work(session)` in one transaction; a database failure becomes StorageError."""
    try:
        with Session(engine) as session, session.begin():
            return work(session)
    except (DBAPIError, PoolTimeoutError) as err:
        log.error("survey database failed: %s", err)
        raise StorageError("the survey database failed; nothing was stored") from err


def _valid_study(name: object) -> str:
    """The name when it could be a study name, else ""."""
    if isinstance(name, str) and STUDY_NAME_RE.fullmatch(name.strip()):
        return name.strip()
    return ""


def _closed(visit: Visit, title: str, text: str, notice: str = "") -> Page:
    body = (
        '<section class="survey-card" data-step="closed">'
        f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p></section>"
    )
    return Page("closed", visit, body, notice)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _trial_page(
    session: Session, visit: Visit, view: service.TrialView, notice: str = ""
) -> Page:
    left = _data_uri(service.get_image_bytes(session, view.left_image_id))
    right = _data_uri(service.get_image_bytes(session, view.right_image_id))
    return Page(
        "trial",
        replace(visit, trial_id=view.trial_id, view=view),
        _pair_html(view, (left, right)),
        notice,
    )


def hide_photos(visit: Visit, parity: int) -> Page | None:
    """The pair on screen without its photos, once its display time is over.

    parity: 1 or 0, the display timer's (odd or even pairs), so that a late tick
    for one pair never hides the next one. None when there is nothing to hide: no
    pair on screen, an untimed study, or a pair of the other parity.
    """
    view = visit.view if isinstance(visit, Visit) else None
    if view is None or view.display_ms <= 0 or view.number % 2 != parity:
        return None
    return Page("trial", visit, _pair_html(view, None))


def _done_page(session: Session, visit: Visit, notice: str = "") -> Page:
    score = service.participant_score(session, visit.token)
    return Page(
        "done", replace(visit, trial_id="", view=None), _score_html(score), notice
    )


def _continue(session: Session, visit: Visit, notice: str = "") -> Page:
    """The participant's pending pair, or their score when every pair is answered."""
    view = service.next_trial(session, visit.token)
    if view is None:
        return _done_page(session, visit, notice)
    return _trial_page(session, visit, view, notice)


def _intro_page(session: Session, visit: Visit, notice: str = "") -> Page:
    info = service.describe_study(session, visit.study)
    return Page("intro", visit, _intro_html(info), notice)


def open_page(engine: Engine, study: str | None, token: str | None) -> Page:
    """The page for a visit to `/?study=NAME&p=TOKEN` (both optional).

    With a valid token: the participant's pending pair (a reload gets the same one)
    or, when they are done, their score. With a study name: its instructions and
    consent. With neither: the newest study. Never raises for bad input: an unknown
    study or token gives a page that says so.
    """
    name = _valid_study(study)
    token = token.strip() if isinstance(token, str) else ""
    notice = ""
    try:
        if token:
            try:
                return _transaction(engine, lambda s: _continue(s, Visit(name, token)))
            except NotFoundError:
                log.info("visit with an unknown participant link")
                notice = _notice(BAD_LINK, "error")
        if not study:  # a link without a study: the newest one
            studies = _transaction(engine, service.list_studies)
            if not studies:
                return _closed(
                    Visit(),
                    "No study is open",
                    "There is no survey to take part in yet.",
                    notice,
                )
            name = studies[-1]
        if name:
            return _transaction(engine, lambda s: _intro_page(s, Visit(name), notice))
    except NotFoundError:
        log.info("visit for an unknown study")
    except StorageError:
        return _closed(Visit(name), "Please try again later", DATABASE_DOWN, notice)
    return _closed(
        Visit(),
        "Unknown study",
        f"There is no study called \u201c{str(study)[:64]}\u201d. "
        "Check the link you were given.",
        notice,
    )


def consent(engine: Engine, visit: Visit, agreed: bool) -> Page:
    """Register a participant who agreed, and show their first pair.

    Raises gr.Error (the page stays as it is) without consent, without a study, or
    when the database fails (then nobody was registered).
    """
    if agreed is not True:
        raise _error("Please tick the box to agree before you start.")
    if not isinstance(visit, Visit) or not visit.study:
        raise _error("Open the survey from the link you were given first.")
    if visit.token:  # already registered: a second click on Start
        return _show_pending(engine, visit)

    def start(session: Session) -> Page:
        token = service.start_participant(session, visit.study)
        return _continue(session, replace(visit, token=token))

    try:
        return _transaction(engine, start)
    except NotFoundError as err:
        raise _error("This study does not exist any more.") from err
    except StorageError as err:
        raise _error(
            "The survey could not start: its database cannot be reached. "
            "Please try again."
        ) from err


def _show_pending(engine: Engine, visit: Visit, notice: str = "") -> Page:
    """The participant's pending pair (or score) again, e.g. after a replayed answer."""
    try:
        return _transaction(engine, lambda s: _continue(s, visit, notice))
    except NotFoundError as err:
        raise _error(BAD_LINK) from err
    except StorageError as err:
        raise _error(DATABASE_DOWN) from err


def answer(engine: Engine, visit: Visit, choice: str) -> Page:
    """Store the participant's answer for the pair on screen and show the next one.

    choice: "left" or "right", the side they judged colorized. A pair answered
    before (a replay, a double click, a second tab) keeps its first answer and the
    page moves on to the pending pair with a note. Raises gr.Error, leaving the page
    as it was, when nothing was stored: a database failure ("not saved, try again"),
    an unknown token, or a pair that is not theirs.
    """
    if not isinstance(visit, Visit) or not visit.token or not visit.trial_id:
        raise _error(SESSION_LOST)

    def submit(session: Session) -> Page:
        result = service.submit_answer(session, visit.token, visit.trial_id, choice)
        notice = ""
        if result.feedback is not None:
            notice = _practice_feedback(choice, result.feedback)
        return _continue(session, visit, notice)

    try:
        return _transaction(engine, submit)
    except AlreadyAnsweredError:
        log.info("a replayed answer was refused")
        note = _notice(
            "You had already answered that pair; your first answer counts.", "info"
        )
        return _show_pending(engine, visit, note)
    except StorageError as err:
        raise _error(NOT_SAVED) from err
    except NotFoundError as err:
        raise _error(BAD_LINK) from err
    except NotAssignedError as err:
        raise _error("That pair is not one of yours; nothing was saved.") from err
    except NotShownError as err:
        raise _error("That pair has not been shown yet; reload the page.") from err
    except InvalidInputError as err:
        raise _error("Answer with the Left or Right button.") from err


# ---------------------------------------------------------------- participant HTML


def _notice(text: str, kind: str) -> str:
    """A one-line message above the page; kind: "info", "good", "bad" or "error"."""
    return f'<p class="survey-notice survey-{kind}">{html.escape(text)}</p>'


def _practice_feedback(choice: str, correct: bool) -> str:
    other = "right" if choice == "left" else "left"
    if correct:
        return _notice(f"Practice: right, the {choice} photo was colorized.", "good")
    return _notice(f"Practice: not this time, the {other} photo was colorized.", "bad")


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g} second" + ("" if ms == 1000 else "s")


def _intro_html(info: service.StudyInfo) -> str:
    minutes = max(1, math.ceil(info.trials * SECONDS_PER_PAIR / 60))
    shown = (
        f"Each pair is shown for {_seconds(info.display_ms)}; then the photos are "
        "hidden and you can still answer."
        if info.display_ms
        else "Each pair stays on screen until you answer."
    )
    practice = ""
    if info.practice_trials:
        first = (
            "The first pair is"
            if info.practice_trials == 1
            else f"The first {info.practice_trials} pairs are"
        )
        practice = (
            f"<li>{first} practice: you will be told whether you were right. "
            "Practice does not count.</li>"
        )
    return (
        f'<section class="survey-card" data-step="intro" '
        f'data-study="{html.escape(info.name)}">'
        "<h2>Can you spot the colorized photo?</h2>"
        "<p>In each pair below, one photo is a real colour photograph. The other is "
        "the same photo in black and white, coloured in by a computer. Click the one "
        "you think was <strong>colorized</strong>. Go with your first impression.</p>"
        "<ul>"
        f"<li>{info.trials} pairs, about {minutes} minute"
        f"{'' if minutes == 1 else 's'} in all.</li>"
        f"<li>{html.escape(shown)}</li>"
        f"{practice}"
        "<li>If one photo of a pair is plainly grey, pick that one: such pairs "
        "check that everything works for you.</li>"
        "<li>You can stop at any time and come back later with your personal link; "
        "you will continue where you stopped.</li>"
        "</ul>"
        "<h3>What is recorded</h3>"
        "<p>Your answers and how long each took, under a random number. Not your "
        "name, not your e-mail address. The answers are analysed together, "
        "anonymously, to measure how convincing colorizations are. You can stop at "
        "any time; taking part is voluntary.</p>"
        f'<p class="survey-study">Study: {html.escape(info.name)}</p>'
        "</section>"
    )


def _figure(side: str, uri: str | None) -> str:
    """One side of the pair: the photo, or an empty frame once time is up."""
    if uri is None:
        content = '<div class="survey-gone" role="img" aria-label="Photo hidden"></div>'
    else:
        content = f'<img src="{uri}" alt="{side} photo">'
    return f"<figure>{content}<figcaption>{side}</figcaption></figure>"


def _pair_html(view: service.TrialView, uris: tuple[str, str] | None) -> str:
    """The pair page; `uris` (left, right) as data: URIs, or None once time is up,
    when the page holds no photo at all, only the frames and the question."""
    badge = '<span class="survey-badge">Practice</span>' if view.is_practice else ""
    done = (view.number - 1) / max(1, view.total) * 100.0
    state = "shown" if uris is not None else "hidden"
    left, right = uris if uris is not None else (None, None)
    hidden_note = (
        '<p class="survey-hidden-note">Time is up: the photos are hidden. '
        "You can still answer.</p>"
        if uris is None
        else ""
    )
    return (
        f'<section class="survey-trial" data-step="trial" data-photos="{state}" '
        f'data-number="{view.number}" data-total="{view.total}">'
        '<div class="survey-head">'
        f'<span class="survey-count">Pair {view.number} of {view.total}</span>{badge}'
        "</div>"
        f'<div class="survey-progress"><span style="width: {done:.1f}%"></span></div>'
        f'<div class="survey-pair">{_figure("Left", left)}{_figure("Right", right)}'
        "</div>"
        f"{hidden_note}"
        '<p class="survey-question">Which one is colorized?</p>'
        "</section>"
    )


def _score_html(score: service.Score) -> str:
    if score.total == 0:
        result = "<p>Thank you for taking part.</p>"
    else:
        share = score.correct / score.total * 100.0
        result = (
            f'<p class="survey-score"><strong>{score.correct} of {score.total}</strong>'
            "</p>"
            f"<p>You found the colorized photo in {share:.0f}% of the pairs; the "
            f"computer fooled you {score.fooled} time"
            f"{'' if score.fooled == 1 else 's'}. Guessing would find about half. "
            "Practice pairs are not counted.</p>"
        )
    return (
        f'<section class="survey-card survey-done" data-step="done" '
        f'data-correct="{score.correct}" data-total="{score.total}">'
        "<h2>Thank you!</h2>"
        f"{result}"
        "<p>Your answers are saved. You can close this page.</p>"
        "</section>"
    )


# `${` and backticks must not appear here, since Gradio evaluates the template as a
# JavaScript template string
PAGE_STYLE = """<style>
.survey-card h2 { margin-top: 0.2rem; }
.survey-study { color: var(--body-text-color-subdued); font-size: 0.85rem; }
.survey-notice { margin: 0 0 0.6rem; padding: 0.55rem 0.8rem;
  border-radius: var(--radius-md); border: 1px solid var(--border-color-primary); }
.survey-info { background: var(--background-fill-secondary); }
.survey-good { background: #e8f5e9; border-color: #81c784; color: #1b5e20; }
.survey-bad { background: #fff3e0; border-color: #ffb74d; color: #8a4b00; }
.survey-error { background: #fdecea; border-color: #e57373; color: #8e1c1c; }
.survey-head { display: flex; align-items: center; gap: 0.6rem; margin-bottom: 0.4rem; }
.survey-count { font-weight: 600; }
.survey-badge { font-size: 0.75rem; padding: 0.1rem 0.5rem; border-radius: 999px;
  background: var(--color-accent-soft); color: var(--color-accent); }
.survey-progress { height: 6px; border-radius: 3px; overflow: hidden;
  background: var(--border-color-primary); margin-bottom: 0.9rem; }
.survey-progress span { display: block; height: 100%;
  background: var(--color-accent); }
.survey-pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem;
  align-items: stretch; }
.survey-pair figure { margin: 0 !important; padding: 0.6rem; display: flex;
  flex-direction: column; align-items: center; justify-content: center;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg);
  background: var(--background-fill-secondary); }
.survey-pair img { display: block; width: 100%; max-width: 512px; height: 48vh;
  object-fit: contain; margin: 0 !important; }
.survey-pair figcaption { margin: 0.4rem 0 0 !important; font-weight: 600;
  color: var(--body-text-color-subdued); }
.survey-gone { width: 100%; max-width: 512px; height: 48vh; }
.survey-hidden-note { text-align: center; margin: 0.6rem 0 0 !important;
  color: var(--body-text-color-subdued); }
.survey-question { text-align: center; font-size: 1.25rem; font-weight: 600;
  margin: 0.8rem 0 0; }
.survey-score { font-size: 2.2rem; margin: 0.3rem 0; }
.survey-link { color: var(--body-text-color-subdued); font-size: 0.85rem;
  text-align: center; word-break: break-all; }
#survey-answers button { min-height: 3.2rem; font-size: 1.05rem; }
#survey-intro-box, #survey-done-box, #survey-closed { max-width: 48rem;
  margin: 0 auto; width: 100%; }
</style>"""

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


# ---------------------------------------------------------------- results handlers


@dataclass(frozen=True)
class Results:
    """The results tab's content for one study."""

    studies: list[str]  # every study, oldest first
    study: str  # the one shown ("" when there is none)
    html: str
    csv: Path | None  # every answered trial of the study, flagged ones included


def results_page(
    engine: Engine,
    gate: AdminGate,
    given_token: object,
    study: object,
    include_flagged: bool,
    export_dir: Path,
    client: str = "",
) -> Results:
    """Fool rates and the other tables of `study` (the newest one when not given),
    and its answers as CSV in `export_dir`, for someone who knows the admin token.

    gate: the admin token and its limit on wrong guesses; client: who asks (an IP
    address), whose wrong guesses are counted. Raises gr.Error for a missing or
    wrong token, a client with too many wrong tokens, an unknown study or an
    unreachable database.
    """
    try:
        gate.check(given_token, client)
    except AdminRefused as err:
        raise _error(str(err)) from None
    try:
        studies = _transaction(engine, service.list_studies)
    except StorageError as err:
        raise _error(DATABASE_DOWN) from err
    if not studies:
        return Results(
            [],
            "",
            _section(
                "No studies yet",
                "<p>Create one with <code>python -m survey.create</code>.</p>",
            ),
            None,
        )
    name = study if isinstance(study, str) and study in studies else studies[-1]
    try:
        trials = stats.load_trials(engine, name)
        legacy = _transaction(engine, lambda s: service.legacy_images(s, name))
    except NotFoundError as err:
        raise _error("That study does not exist.") from err
    except (DBAPIError, PoolTimeoutError, StorageError) as err:
        log.error("results of %s not loaded: %s", name, err)
        raise _error(DATABASE_DOWN) from err
    csv = export_dir / f"{name}-answers.csv"
    atomic_write_bytes(csv, csv_bytes(trials))
    report = _legacy_note(legacy) + _results_html(name, trials, include_flagged)
    return Results(studies, name, report, csv)


# ---------------------------------------------------------------- results HTML


def _legacy_note(images: int) -> str:
    """A warning for a study whose images were stored compressed (before issue 19)."""
    if not images:
        return ""
    return (
        '<p class="survey-legacy">'
        f"{images} image{'' if images == 1 else 's'} of this study "
        f"{'was' if images == 1 else 'were'} stored as compressed PNG, in which the "
        "colorized photo tends to be the smaller file. They are now served "
        "re-encoded at equal length, but answers given before that change may have "
        "been guided by file size.</p>"
    )


def _pct(x: float) -> str:
    return "" if pd.isna(x) else f"{x * 100:.1f}%"


def _interval(low: float, high: float) -> str:
    return f"{low * 100:.1f}\u2013{high * 100:.1f}%"


def _ms(x: float) -> str:
    return "" if pd.isna(x) else f"{x:,.0f} ms"


def _table(headers: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    """An HTML table, every cell escaped; columns from `numeric_from` right-aligned."""
    head = "".join(
        f"<th{' class=num' if i >= numeric_from else ''}>{html.escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i >= numeric_from else ''}>"
            f"{html.escape(str(cell))}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, content: str, open_: bool = True) -> str:
    return (
        f'<details class="survey-section"{" open" if open_ else ""}>'
        f"<summary>{html.escape(title)}</summary>{content}</details>"
    )


def _results_html(study: str, trials: pd.DataFrame, include_flagged: bool) -> str:
    exclude = not include_flagged
    people = stats.per_participant(trials)
    flagged = int(people["flagged"].sum())
    summary = (
        f'<p class="survey-summary" data-participants="{len(people)}" '
        f'data-answers="{len(trials)}">'
        f"<strong>{html.escape(study)}</strong>: {len(people)} participant"
        f"{'' if len(people) == 1 else 's'} with answers "
        f"({int(people['finished'].sum())} finished, {flagged} failed an attention "
        f"check{' and are left out' if exclude and flagged else ''}), "
        f"{len(trials)} answers in all.</p>"
    )
    if trials.empty:
        return summary + "<p>No answers yet.</p>"
    rates = stats.fool_rates(trials, exclude)
    model_rows = [
        [
            r.model,
            f"{r.k} / {r.n}",
            _pct(r.rate),
            _interval(r.wilson_low, r.wilson_high),
            _interval(r.bootstrap_low, r.bootstrap_high),
            r.participants,
        ]
        for r in rates.itertuples()
    ]
    images = stats.per_image(trials, exclude)
    image_rows = [
        [
            r.model,
            r.photo,
            f"{r.k} / {r.n}",
            _pct(r.rate),
            _interval(r.wilson_low, r.wilson_high),
        ]
        for r in images.itertuples()
    ]
    people_rows = [
        [
            r.participant,
            "yes" if r.finished else "no",
            "yes" if r.flagged else "no",
            r.n,
            r.fooled,
            _pct(r.rate),
            r.attention_failed,
            _ms(r.median_response_ms),
        ]
        for r in people.itertuples()
    ]
    times = stats.response_times(trials, exclude)
    time_rows = [
        [
            r.model,
            r.n,
            _ms(r.median_ms),
            _ms(r.mean_ms),
            f"{_ms(r.q25_ms)} \u2013 {_ms(r.q75_ms)}",
        ]
        for r in times.itertuples()
    ]
    none = "<p>No answered test pairs" + (
        " (participants who failed an attention check are left out).</p>"
        if exclude
        else ".</p>"
    )
    return (
        summary
        + _section(
            "Fool rate per model",
            (
                _table(
                    [
                        "Model",
                        "Fooled / answers",
                        "Fool rate",
                        "Wilson 95%",
                        "Bootstrap 95%",
                        "Participants",
                    ],
                    model_rows,
                )
                if model_rows
                else none
            )
            + '<p class="survey-help">Fool rate: share of test pairs in which the '
            "colorized photo was taken for the real one (50% = indistinguishable). "
            "Bootstrap: participants resampled 10,000 times.</p>",
        )
        + _section(
            "Per photo",
            _table(
                ["Model", "Photo", "Fooled / answers", "Fool rate", "Wilson 95%"],
                image_rows,
                numeric_from=2,
            )
            if image_rows
            else none,
            open_=False,
        )
        + _section(
            "Per participant (all, flagged ones included)",
            _table(
                [
                    "#",
                    "Finished",
                    "Failed a check",
                    "Test pairs",
                    "Fooled",
                    "Fool rate",
                    "Checks failed",
                    "Median time",
                ],
                people_rows,
            ),
            open_=False,
        )
        + _section(
            "Response times (test pairs)",
            _table(["Model", "Answers", "Median", "Mean", "Middle half"], time_rows)
            if time_rows
            else none,
        )
    )


RESULTS_STYLE = """<style>
#survey-results .survey-summary { margin: 0.2rem 0 0.8rem; }
#survey-results .survey-section { margin: 0 0 0.8rem; padding: 0.4rem 0.8rem;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); }
#survey-results summary { cursor: pointer; font-weight: 600; padding: 0.2rem 0; }
#survey-results table { width: 100%; border-collapse: collapse; font-size: 0.9rem;
  margin: 0.4rem 0; }
#survey-results table, #survey-results thead, #survey-results tr {
  border: none !important; }
#survey-results th, #survey-results td { padding: 0.35rem 0.6rem; text-align: left;
  border: none !important; border-bottom: 1px solid var(--border-color-primary)
  !important; }
#survey-results th { font-weight: 600; color: var(--body-text-color-subdued); }
#survey-results .num { text-align: right; font-variant-numeric: tabular-nums; }
#survey-results .survey-help { color: var(--body-text-color-subdued);
  font-size: 0.8rem; }
</style>"""


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
        html_template=PAGE_STYLE + "${value}",
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
        html_template=RESULTS_STYLE + "${value}",
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

"""The participant's flow: handlers of the Turing test page and its HTML.

Handlers are plain functions of an Engine (`open_page`, `consent`, `answer`,
`hide_photos`) returning a `Page`: the step to show and its HTML, rendered from
`survey/templates/` with every value escaped. `survey.ui` lays out the components and
wires them to these. Images travel inside the page as `data:` URIs of the stored PNGs,
which `survey.encoding` makes the same length and format for both photos of a pair.
A database failure while answering raises `gr.Error("... not saved ...")` and leaves
the page as it was, so the participant simply answers again.
"""

from __future__ import annotations

import base64
import logging
import math
import urllib.parse
from dataclasses import dataclass, replace

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey import service
from survey.errors import (
    AlreadyAnsweredError,
    InvalidInputError,
    NotAssignedError,
    NotFoundError,
    NotShownError,
    StorageError,
)
from survey.models import STUDY_NAME_RE
from survey.web import page_error, render, transaction

__all__ = [
    "BAD_LINK",
    "DATABASE_DOWN",
    "NOT_SAVED",
    "SESSION_LOST",
    "Page",
    "Visit",
    "answer",
    "consent",
    "hide_photos",
    "open_page",
    "personal_link",
]

log = logging.getLogger(__name__)

SECONDS_PER_PAIR = 5  # for the "about N minutes" estimate on the instructions page

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


def _valid_study(name: object) -> str:
    """The name when it could be a study name, else ""."""
    if isinstance(name, str) and STUDY_NAME_RE.fullmatch(name.strip()):
        return name.strip()
    return ""


def _closed(visit: Visit, title: str, text: str, notice: str = "") -> Page:
    body = render("closed.html", title=title, text=text)
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
                return transaction(engine, lambda s: _continue(s, Visit(name, token)))
            except NotFoundError:
                log.info("visit with an unknown participant link")
                notice = _notice(BAD_LINK, "error")
        if not study:  # a link without a study: the newest one
            studies = transaction(engine, service.list_studies)
            if not studies:
                return _closed(
                    Visit(),
                    "No study is open",
                    "There is no survey to take part in yet.",
                    notice,
                )
            name = studies[-1]
        if name:
            return transaction(engine, lambda s: _intro_page(s, Visit(name), notice))
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
        raise page_error("Please tick the box to agree before you start.")
    if not isinstance(visit, Visit) or not visit.study:
        raise page_error("Open the survey from the link you were given first.")
    if visit.token:  # already registered: a second click on Start
        return _show_pending(engine, visit)

    def start(session: Session) -> Page:
        token = service.start_participant(session, visit.study)
        return _continue(session, replace(visit, token=token))

    try:
        return transaction(engine, start)
    except NotFoundError as err:
        raise page_error("This study does not exist any more.") from err
    except StorageError as err:
        raise page_error(
            "The survey could not start: its database cannot be reached. "
            "Please try again."
        ) from err


def _show_pending(engine: Engine, visit: Visit, notice: str = "") -> Page:
    """The participant's pending pair (or score) again, e.g. after a replayed answer."""
    try:
        return transaction(engine, lambda s: _continue(s, visit, notice))
    except NotFoundError as err:
        raise page_error(BAD_LINK) from err
    except StorageError as err:
        raise page_error(DATABASE_DOWN) from err


def answer(engine: Engine, visit: Visit, choice: str) -> Page:
    """Store the participant's answer for the pair on screen and show the next one.

    choice: "left" or "right", the side they judged colorized. A pair answered
    before (a replay, a double click, a second tab) keeps its first answer and the
    page moves on to the pending pair with a note. Raises gr.Error, leaving the page
    as it was, when nothing was stored: a database failure ("not saved, try again"),
    an unknown token, or a pair that is not theirs.
    """
    if not isinstance(visit, Visit) or not visit.token or not visit.trial_id:
        raise page_error(SESSION_LOST)

    def submit(session: Session) -> Page:
        result = service.submit_answer(session, visit.token, visit.trial_id, choice)
        notice = ""
        if result.feedback is not None:
            notice = _practice_feedback(choice, result.feedback)
        return _continue(session, visit, notice)

    try:
        return transaction(engine, submit)
    except AlreadyAnsweredError:
        log.info("a replayed answer was refused")
        note = _notice(
            "You had already answered that pair; your first answer counts.", "info"
        )
        return _show_pending(engine, visit, note)
    except StorageError as err:
        raise page_error(NOT_SAVED) from err
    except NotFoundError as err:
        raise page_error(BAD_LINK) from err
    except NotAssignedError as err:
        raise page_error("That pair is not one of yours; nothing was saved.") from err
    except NotShownError as err:
        raise page_error("That pair has not been shown yet; reload the page.") from err
    except InvalidInputError as err:
        raise page_error("Answer with the Left or Right button.") from err


# ---------------------------------------------------------------- HTML


def _notice(text: str, kind: str) -> str:
    """A one-line message above the page; kind: "info", "good", "bad" or "error"."""
    return render("notice.html", text=text, kind=kind)


def _practice_feedback(choice: str, correct: bool) -> str:
    other = "right" if choice == "left" else "left"
    if correct:
        return _notice(f"Practice: right, the {choice} photo was colorized.", "good")
    return _notice(f"Practice: not this time, the {other} photo was colorized.", "bad")


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g} second" + ("" if ms == 1000 else "s")


def _intro_html(info: service.StudyInfo) -> str:
    """The instructions and consent text of a study (`templates/intro.html`)."""
    shown = (
        f"Each pair is shown for {_seconds(info.display_ms)}; then the photos are "
        "hidden and you can still answer."
        if info.display_ms
        else "Each pair stays on screen until you answer."
    )
    return render(
        "intro.html",
        name=info.name,
        trials=info.trials,
        minutes=max(1, math.ceil(info.trials * SECONDS_PER_PAIR / 60)),
        shown=shown,
        practice_trials=info.practice_trials,
    )


def _pair_html(view: service.TrialView, uris: tuple[str, str] | None) -> str:
    """The pair page (`templates/pair.html`); `uris` (left, right) as data: URIs, or
    None once time is up, when the page holds no photo at all, only the frames and
    the question."""
    left, right = uris if uris is not None else (None, None)
    return render(
        "pair.html",
        left=left,
        right=right,
        number=view.number,
        total=view.total,
        practice=view.is_practice,
        done=f"{(view.number - 1) / max(1, view.total) * 100.0:.1f}",
    )


def _score_html(score: service.Score) -> str:
    """The last page: the participant's score (`templates/score.html`)."""
    share = score.correct / score.total * 100.0 if score.total else 0.0
    return render(
        "score.html",
        correct=score.correct,
        total=score.total,
        fooled=score.fooled,
        share=f"{share:.0f}",
    )

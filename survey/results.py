"""The results page's handler and HTML: fool rates and tables of one study.

`results_page` checks the admin token (`survey.throttle`), loads the study's answers
(`survey.stats`), writes them as CSV and renders the tables from
`survey/templates/results.html`, every cell escaped (photo file names and study names
come from whoever created the study).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from core.atomic import atomic_write_bytes
from survey import service, stats
from survey.errors import NotFoundError, StorageError
from survey.export import csv_bytes
from survey.participant import DATABASE_DOWN
from survey.throttle import AdminGate, AdminRefused
from survey.web import page_error, render, transaction

__all__ = ["Results", "results_page"]

log = logging.getLogger(__name__)


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
        raise page_error(str(err)) from None
    try:
        studies = transaction(engine, service.list_studies)
    except StorageError as err:
        raise page_error(DATABASE_DOWN) from err
    if not studies:
        return Results(
            [],
            "",
            render("no_studies.html"),
            None,
        )
    name = study if isinstance(study, str) and study in studies else studies[-1]
    try:
        trials = stats.load_trials(engine, name)
        legacy = transaction(engine, lambda s: service.legacy_images(s, name))
    except NotFoundError as err:
        raise page_error("That study does not exist.") from err
    except (DBAPIError, PoolTimeoutError, StorageError) as err:
        log.error("results of %s not loaded: %s", name, err)
        raise page_error(DATABASE_DOWN) from err
    csv = export_dir / f"{name}-answers.csv"
    atomic_write_bytes(csv, csv_bytes(trials))
    report = _legacy_note(legacy) + _results_html(name, trials, include_flagged)
    return Results(studies, name, report, csv)


# ---------------------------------------------------------------- HTML


def _legacy_note(images: int) -> str:
    """A warning for a study whose images were stored compressed (before issue 19)."""
    return render("legacy_note.html", images=images) if images else ""


def _pct(x: float) -> str:
    return "" if pd.isna(x) else f"{x * 100:.1f}%"


def _interval(low: float, high: float) -> str:
    return f"{low * 100:.1f}\u2013{high * 100:.1f}%"


def _ms(x: float) -> str:
    return "" if pd.isna(x) else f"{x:,.0f} ms"


def _results_html(study: str, trials: pd.DataFrame, include_flagged: bool) -> str:
    """The study's tables (`templates/results.html`), every cell escaped."""
    exclude = not include_flagged
    people = stats.per_participant(trials)
    values = {
        "study": study,
        "exclude": exclude,
        "participants": len(people),
        "answers": len(trials),
        "finished": int(people["finished"].sum()),
        "flagged": int(people["flagged"].sum()),
    }
    if trials.empty:
        return render("results.html", **values)
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
    return render(
        "results.html",
        **values,
        model_rows=model_rows,
        image_rows=image_rows,
        people_rows=people_rows,
        time_rows=time_rows,
    )

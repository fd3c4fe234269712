"""The Turing-test survey (issue 6): paired real/fake trials, votes, fool rates.

Code outside `survey/` (`app.py`, `benchmarks/`) uses only the names below, imported
from `survey` itself (`from survey import build_survey_app`); the modules are the
survey's own business and may change (`tests/test_boundaries.py` checks it).
Importing `survey` loads nothing: each name loads its module on first use.

- serving: `build_survey_app(db_url, admin_token)` builds the participant's page and
  the results page, `launch_survey(app, host, port)` serves them on a port of their
  own; `ADMIN_TOKEN_ENV` names the environment variable holding the admin token.
- storage: `create_engine(url)`, `init_db(engine)`, the tables `Study`,
  `Participant`, `Trial`; `db_error_message(url, err)` says in one line what went
  wrong with a database; inside `with command_errors(url):` survey and database
  errors become `core.errors.UserError`s with that line (for `core.cli.run_main`).
- studies: `CreateConfig` and `build_study(engine, config, ...)` (what
  `python -m survey.create` does).
- errors: `SurveyError`, the base of the errors raised for callers.

Modules, for those working on the survey:

- `survey.models`: the SQLAlchemy schema (studies, images, pairs, participants,
  trials) and what it enforces; `survey.db`: engines for any URL (SQLite by default).
- `survey.create`: `python -m survey.create` builds a study from photos and fakes.
- `survey.service`: the participant flow the web UI calls (`start_participant`,
  `next_trial`, `submit_answer`, `participant_score`, `get_image_bytes`).
- `survey.stats`: `load_trials` as a DataFrame, fool rates with Wilson and bootstrap
  intervals (`python -m survey.stats`); `survey.export`: CSV or Parquet files.
- `survey.encoding`: the image bytes stored and served (equal length within a pair).
- `survey.ui`, `survey.server`: the participant's page and the results page
  (`python -m survey.server`; `app.py` starts it too): `survey.participant` (the
  participant's handlers), `survey.results` (the results page), `survey.web` and
  `survey/templates/` (Jinja2 HTML templates, autoescaped; the pages' styles);
  `survey.throttle`: the limit on admin-token guesses.
- `survey.errors`: the errors callers catch, each with an HTTP-like `status`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_PUBLIC = {
    "ADMIN_TOKEN_ENV": "survey.server",
    "build_survey_app": "survey.server",
    "launch_survey": "survey.server",
    "create_engine": "survey.db",
    "db_error_message": "survey.db",
    "command_errors": "survey.db",
    "init_db": "survey.db",
    "Participant": "survey.models",
    "Study": "survey.models",
    "Trial": "survey.models",
    "CreateConfig": "survey.create",
    "build_study": "survey.create",
    "SurveyError": "survey.errors",
}

__all__ = [
    "ADMIN_TOKEN_ENV",
    "CreateConfig",
    "Participant",
    "Study",
    "SurveyError",
    "Trial",
    "build_study",
    "build_survey_app",
    "command_errors",
    "create_engine",
    "db_error_message",
    "init_db",
    "launch_survey",
]

if TYPE_CHECKING:
    from survey.create import CreateConfig, build_study
    from survey.db import command_errors, create_engine, db_error_message, init_db
    from survey.errors import SurveyError
    from survey.models import Participant, Study, Trial
    from survey.server import ADMIN_TOKEN_ENV, build_survey_app, launch_survey


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'survey' has no attribute {name!r}")

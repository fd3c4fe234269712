"""The Turing-test survey (issue 6): paired real/fake trials, votes, fool rates.

Modules (import them directly; importing `survey` itself loads nothing):

- `survey.models`: the SQLAlchemy schema (studies, images, pairs, participants,
  trials) and what it enforces; `survey.db`: engines for any URL (SQLite by default).
- `survey.create`: `python -m survey.create` builds a study from photos and fakes.
- `survey.service`: the participant flow the web UI calls (`start_participant`,
  `next_trial`, `submit_answer`, `participant_score`, `get_image_bytes`).
- `survey.stats`: `load_trials` as a DataFrame, fool rates with Wilson and bootstrap
  intervals (`python -m survey.stats`); `survey.export`: CSV or Parquet files.
- `survey.encoding`: the image bytes stored and served (equal length within a pair).
- `survey.ui`, `survey.server`: the participant's page and the results page
  (`python -m survey.server`; `app.py` starts it too); `survey.throttle`: the limit on
  admin-token guesses.
- `survey.errors`: the errors callers catch, each with an HTTP-like `status`.
"""

__all__ = [
    "create",
    "db",
    "encoding",
    "errors",
    "export",
    "models",
    "server",
    "service",
    "stats",
    "throttle",
    "ui",
]

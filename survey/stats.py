"""Turing-test results as pandas DataFrames: fool rates with confidence intervals.

    from survey.stats import load_trials, fool_rates
    trials = load_trials("sqlite:///survey.db", "pilot")   # one row per answered trial
    fool_rates(trials)                                      # one row per model

    python -m survey.stats --study pilot [--table models|images|participants|times]

Fool rate = fraction of test trials in which the colorization was judged real
(docs/design.md 6.2), with a Wilson 95 % interval and a participant-level bootstrap
(resample participants, pool their trials; B = 10,000, fixed seed, 2.5/97.5
percentiles). Practice and attention-check trials are never scored; participants who
failed an attention check are left out unless `exclude_flagged=False`
(`--include-flagged`).

The trials table is anonymised: participants are numbered 0, 1, ... in the order they
started; their link tokens never leave the database.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.cli import run_main
from core.config import add_dataclass_args, dataclass_from_args
from survey.db import DEFAULT_URL, command_errors, create_engine
from survey.errors import InvalidInputError, NotFoundError
from survey.models import STUDY_NAME_RE, Participant, Study, Trial

__all__ = [
    "TABLES",
    "TRIAL_COLUMNS",
    "StatsConfig",
    "bootstrap_interval",
    "fool_rates",
    "load_trials",
    "main",
    "per_image",
    "per_participant",
    "response_times",
    "wilson_interval",
]

log = logging.getLogger(__name__)

Z_95 = 1.96
BOOTSTRAP_B = 10_000  # docs/design.md 6.3
_BOOTSTRAP_CELLS = 4_000_000  # resampled indices held at once (32 MB of int64)

# column -> dtype of the trials table (`load_trials`, `survey.export`)
TRIAL_COLUMNS: dict[str, str] = {
    "participant": "int64",  # 0-based, in the order participants started
    "flagged": "bool",  # failed an attention check
    "finished": "bool",  # answered every trial
    "position": "int64",  # 0-based place in the participant's plan
    "kind": "str",  # test, attention or practice
    "model": "str",  # for attention checks: "gray"
    "photo": "str",  # the photo's path under --photos
    "left_is_fake": "bool",
    "choice": "str",  # side judged colorized: left or right
    "is_correct": "bool",  # found the fake
    "fooled": "bool",  # took the fake for the real photo (not is_correct)
    "response_ms": "int64",  # from serving the pair to the answer
    "views": "int64",  # times the pair was served (reloads add one)
    "shown_at": "datetime64[us, UTC]",
    "answered_at": "datetime64[us, UTC]",
}
TABLES = ("models", "images", "participants", "times")


def load_trials(url: str | Engine, study: str) -> pd.DataFrame:
    """Every answered trial of `study`, one row each, columns as in TRIAL_COLUMNS.

    url: a database URL (a missing SQLite file is an error, not a new database) or
    an Engine. Raises NotFoundError for an unknown study or database.
    """
    engine = create_engine(url, must_exist=True) if isinstance(url, str) else url
    try:
        with Session(engine) as session:
            study_id = None
            if STUDY_NAME_RE.fullmatch(study):
                study_id = session.scalar(select(Study.id).where(Study.name == study))
            if study_id is None:
                raise NotFoundError(f"unknown study {study[:64]!r}")
            number = {
                pid: i
                for i, pid in enumerate(
                    session.scalars(
                        select(Participant.id)
                        .where(Participant.study_id == study_id)
                        .order_by(Participant.id)
                    )
                )
            }
            rows = session.execute(
                select(
                    Trial.participant_id,
                    Participant.flagged,
                    Participant.finished_at.is_not(None),
                    Trial.position,
                    Trial.kind,
                    Trial.model,
                    Trial.photo,
                    Trial.left_is_fake,
                    Trial.choice,
                    Trial.is_correct,
                    Trial.response_ms,
                    Trial.views,
                    Trial.shown_at,
                    Trial.answered_at,
                )
                .join(Participant, Participant.id == Trial.participant_id)
                .where(Trial.study_id == study_id, Trial.choice.is_not(None))
                .order_by(Trial.participant_id, Trial.position)
            ).all()
    finally:
        if isinstance(url, str):
            engine.dispose()
    names = [c for c in TRIAL_COLUMNS if c != "fooled"]
    data = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    data["participant"] = [number[pid] for pid in data["participant"]]
    data["fooled"] = [not correct for correct in data["is_correct"]]
    return pd.DataFrame(
        {
            name: pd.Series(data[name], dtype=dtype)
            for name, dtype in TRIAL_COLUMNS.items()
        }
    )


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (docs/design.md 6.3).

    Returns (low, high) within [0, 1]; k = 32, n = 100 gives (0.237, 0.417).
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need n >= 1 and 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_interval(
    df: pd.DataFrame, B: int = BOOTSTRAP_B, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Participant-level bootstrap interval of the fool rate of `df`'s trials.

    df: trials with columns `participant` and `fooled` (already filtered to one
    model's scored trials). Resamples participants with replacement B times, pools
    their trials, and returns the (1 - level)/2 and (1 + level)/2 percentiles.
    """
    if df.empty:
        raise ValueError("no trials to bootstrap")
    if B < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need B >= 1 and 0 < level < 1, got B={B}, level={level}")
    grouped = df.groupby("participant")["fooled"].agg(["sum", "count"])
    k = grouped["sum"].to_numpy(dtype=np.int64)
    n = grouped["count"].to_numpy(dtype=np.int64)
    rng = np.random.default_rng(seed)
    rates = np.empty(B)
    chunk = max(1, _BOOTSTRAP_CELLS // len(k))
    for start in range(0, B, chunk):
        stop = min(B, start + chunk)
        idx = rng.integers(0, len(k), size=(stop - start, len(k)))
        rates[start:stop] = k[idx].sum(axis=1) / n[idx].sum(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(rates, [tail, 100.0 - tail])
    return float(low), float(high)


def _scored(df: pd.DataFrame, exclude_flagged: bool) -> pd.DataFrame:
    """Test trials only; without flagged participants unless asked."""
    keep = df["kind"] == "test"
    if exclude_flagged:
        keep &= ~df["flagged"]
    return df[keep]


def fool_rates(
    df: pd.DataFrame,
    exclude_flagged: bool = True,
    B: int = BOOTSTRAP_B,
    seed: int = 0,
) -> pd.DataFrame:
    """Fool rate per model: k, n, participants, rate, Wilson and bootstrap bounds.

    df: the trials table of `load_trials`. Every model's bootstrap uses `seed`.
    """
    rows = []
    for model, trials in _scored(df, exclude_flagged).groupby("model", sort=True):
        k, n = int(trials["fooled"].sum()), len(trials)
        wilson = wilson_interval(k, n)
        boot = bootstrap_interval(trials, B=B, seed=seed)
        rows.append(
            (model, k, n, trials["participant"].nunique(), k / n, *wilson, *boot)
        )
    columns = [
        "model",
        "k",
        "n",
        "participants",
        "rate",
        "wilson_low",
        "wilson_high",
        "bootstrap_low",
        "bootstrap_high",
    ]
    return pd.DataFrame(rows, columns=columns)


def per_image(df: pd.DataFrame, exclude_flagged: bool = True) -> pd.DataFrame:
    """Fool rate per (model, photo) with its Wilson interval."""
    rows = []
    for (model, photo), trials in _scored(df, exclude_flagged).groupby(
        ["model", "photo"], sort=True
    ):
        k, n = int(trials["fooled"].sum()), len(trials)
        rows.append((model, photo, k, n, k / n, *wilson_interval(k, n)))
    columns = ["model", "photo", "k", "n", "rate", "wilson_low", "wilson_high"]
    return pd.DataFrame(rows, columns=columns)


def per_participant(df: pd.DataFrame) -> pd.DataFrame:
    """Per participant (flagged ones included): test trials, fooled, rate, failed
    attention checks and median response time of test trials.
    """
    rows = []
    for participant, trials in df.groupby("participant", sort=True):
        test = trials[trials["kind"] == "test"]
        attention = trials[trials["kind"] == "attention"]
        k, n = int(test["fooled"].sum()), len(test)
        rows.append(
            (
                participant,
                bool(trials["flagged"].iloc[0]),
                bool(trials["finished"].iloc[0]),
                n,
                k,
                k / n if n else math.nan,
                int(attention["fooled"].sum()),
                float(test["response_ms"].median()) if n else math.nan,
            )
        )
    columns = [
        "participant",
        "flagged",
        "finished",
        "n",
        "fooled",
        "rate",
        "attention_failed",
        "median_response_ms",
    ]
    return pd.DataFrame(rows, columns=columns)


def response_times(df: pd.DataFrame, exclude_flagged: bool = True) -> pd.DataFrame:
    """Response times of test trials per model: n, median, mean and quartiles (ms)."""
    rows = []
    for model, trials in _scored(df, exclude_flagged).groupby("model", sort=True):
        ms = trials["response_ms"].astype(float)
        q25, median, q75 = ms.quantile([0.25, 0.5, 0.75])
        rows.append((model, len(ms), median, ms.mean(), q25, q75))
    columns = ["model", "n", "median_ms", "mean_ms", "q25_ms", "q75_ms"]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class StatsConfig:
    study: str = field(metadata={"help": "study name"})
    table: str = field(
        default="models",
        metadata={"help": f"which table to print: {', '.join(TABLES)}"},
    )
    include_flagged: bool = field(
        default=False,
        metadata={"help": "keep participants who failed an attention check"},
    )
    bootstrap: int = field(
        default=BOOTSTRAP_B, metadata={"help": "bootstrap resamples (B)"}
    )
    seed: int = field(default=0, metadata={"help": "bootstrap seed"})
    db: str = field(default=DEFAULT_URL, metadata={"help": "SQLAlchemy database URL"})


def _table(cfg: StatsConfig) -> pd.DataFrame:
    if cfg.table not in TABLES:
        raise InvalidInputError(f"--table must be one of {', '.join(TABLES)}")
    if cfg.bootstrap < 1:
        raise InvalidInputError(f"--bootstrap must be >= 1, got {cfg.bootstrap}")
    trials = load_trials(cfg.db, cfg.study)
    exclude = not cfg.include_flagged
    if cfg.table == "models":
        return fool_rates(trials, exclude, B=cfg.bootstrap, seed=cfg.seed)
    if cfg.table == "images":
        return per_image(trials, exclude)
    if cfg.table == "participants":
        return per_participant(trials)
    return response_times(trials, exclude)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m survey.stats", description=__doc__.split("\n\n")[0]
    )
    add_dataclass_args(parser, StatsConfig)
    return run_main(parser, argv, _run, level=logging.WARNING, force_logging=True)


def _run(args: argparse.Namespace) -> int:
    cfg = dataclass_from_args(StatsConfig, args)
    with command_errors(cfg.db):
        table = _table(cfg)
    if table.empty:
        hint = "" if cfg.include_flagged else " (flagged participants left out)"
        print(f"no answered test trials{hint}")
        return 0
    with pd.option_context("display.width", 200, "display.precision", 3):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

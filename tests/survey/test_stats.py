"""Fool rates and their intervals against hand-computed values, and the anonymised
trials table read back from a real database.
"""

import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from survey import service
from survey.errors import NotFoundError
from survey.models import Participant
from survey.stats import (
    TRIAL_COLUMNS,
    bootstrap_interval,
    fool_rates,
    load_trials,
    main,
    per_image,
    per_participant,
    response_times,
    wilson_interval,
)
from tests.survey.conftest import T0, StudyMaker


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (32, 100, 0.237, 0.417),  # docs/design.md 6.3
        (0, 20, 0.0, 0.161),  # docs/design.md 6.3
        # by hand: centre = (0.5 + 1.96^2/20) / (1 + 1.96^2/10) = 0.5,
        # half = 1.96 / 1.38416 * sqrt(0.025 + 3.8416/400) = 0.263410
        (5, 10, 0.236590, 0.763410),
        # by hand: centre = 1.096040/1.192080 = 0.919435, half = 0.080565
        (20, 20, 0.838870, 1.0),
    ],
)
def test_wilson_interval_matches_hand_computed_values(
    k: int, n: int, low: float, high: float
) -> None:
    got_low, got_high = wilson_interval(k, n)
    tolerance = 5e-4 if (k, n) in ((32, 100), (0, 20)) else 1e-5
    assert got_low == pytest.approx(low, abs=tolerance)
    assert got_high == pytest.approx(high, abs=tolerance)


def test_wilson_interval_contains_rate_and_narrows_with_n() -> None:
    for n in (1, 7, 50, 1000):
        for k in range(0, n + 1, max(1, n // 7)):
            low, high = wilson_interval(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0
    widths = [np.diff(wilson_interval(n // 3, n))[0] for n in (9, 90, 900)]
    assert widths[0] > widths[1] > widths[2]


@pytest.mark.parametrize(("k", "n"), [(0, 0), (-1, 5), (6, 5)])
def test_wilson_interval_refuses_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(k, n)


def _trials(fooled_by_participant: list[list[bool]], **columns) -> pd.DataFrame:
    """A trials table of test trials for one model, one row per answer."""
    rows = [
        {"participant": p, "fooled": f, "kind": "test", "model": "m", "flagged": False}
        for p, answers in enumerate(fooled_by_participant)
        for f in answers
    ]
    df = pd.DataFrame(rows)
    for name, value in columns.items():
        df[name] = value
    return df


def test_bootstrap_is_seeded_and_contains_the_rate() -> None:
    rng = np.random.default_rng(0)
    df = _trials([list(rng.random(10) < p) for p in rng.uniform(0.1, 0.6, 25)])
    rate = df["fooled"].mean()
    first = bootstrap_interval(df, B=2000, seed=3)
    assert first == bootstrap_interval(df, B=2000, seed=3)
    assert first != bootstrap_interval(df, B=2000, seed=4)
    assert first[0] < rate < first[1]
    assert 0.0 <= first[0] and first[1] <= 1.0


def test_bootstrap_is_wider_than_wilson_when_participants_differ() -> None:
    # half the participants are always fooled, half never: 200 trials, rate 0.5.
    # Wilson treats the trials as independent (about +-0.07); resampling 20
    # participants gives sd sqrt(0.25 / 20) = 0.112, so about +-0.22
    df = _trials([[True] * 10] * 10 + [[False] * 10] * 10)
    low, high = bootstrap_interval(df, B=4000, seed=0)
    wilson_low, wilson_high = wilson_interval(100, 200)
    assert high - low > 2.5 * (wilson_high - wilson_low)
    assert low == pytest.approx(0.5 - 1.96 * math.sqrt(0.25 / 20), abs=0.03)


def test_bootstrap_of_one_participant_is_their_rate() -> None:
    df = _trials([[True, False, False, False]])
    assert bootstrap_interval(df, B=100) == (0.25, 0.25)
    with pytest.raises(ValueError, match="no trials"):
        bootstrap_interval(df.iloc[:0])


def _table() -> pd.DataFrame:
    """Three participants, two models; participant 2 failed the attention check."""
    rows = []
    answers = {
        0: [("a", True), ("a", False), ("b", True), ("b", True)],
        1: [("a", False), ("a", False), ("b", True), ("b", False)],
        2: [("a", True), ("a", True), ("b", True), ("b", True)],
    }
    for participant, trials in answers.items():
        flagged = participant == 2
        rows.append((participant, flagged, "practice", "a", "x", True, 100))
        rows.append((participant, flagged, "attention", "gray", "y", flagged, 100))
        for i, (model, fooled) in enumerate(trials):
            photo = f"p{(i + participant) % 4}"
            rows.append((participant, flagged, "test", model, photo, fooled, 1000 + i))
    df = pd.DataFrame(
        rows,
        columns=["participant", "flagged", "kind", "model", "photo", "fooled", "ms"],
    )
    df["finished"] = True
    return df.rename(columns={"ms": "response_ms"})


def test_fool_rates_per_model_exclude_flagged_and_unscored_trials() -> None:
    rates = fool_rates(_table(), B=500).set_index("model")
    assert rates.loc["a", ["k", "n", "participants"]].tolist() == [1, 4, 2]
    assert rates.loc["b", ["k", "n", "participants"]].tolist() == [3, 4, 2]
    assert rates.loc["a", "rate"] == 0.25
    assert rates.loc["a", ["wilson_low", "wilson_high"]].tolist() == pytest.approx(
        wilson_interval(1, 4)
    )
    assert "gray" not in rates.index  # attention checks are not a model
    everyone = fool_rates(_table(), exclude_flagged=False, B=500).set_index("model")
    assert everyone.loc["a", ["k", "n", "participants"]].tolist() == [3, 6, 3]
    for model in "ab":
        low, high = everyone.loc[model, ["bootstrap_low", "bootstrap_high"]]
        assert low <= everyone.loc[model, "rate"] <= high


def test_per_image_participant_and_response_time_tables() -> None:
    df = _table()
    images = per_image(df).set_index(["model", "photo"])
    assert images["n"].sum() == 8 and images["k"].sum() == 4
    assert images.loc[("b", "p2"), ["k", "n"]].tolist() == [1, 1]  # participant 0
    people = per_participant(df).set_index("participant")
    assert people.loc[2, ["flagged", "n", "fooled", "attention_failed"]].tolist() == [
        True,
        4,
        4,
        1,
    ]
    assert people.loc[1, "rate"] == 0.25
    assert people.loc[0, "median_response_ms"] == 1001.5
    times = response_times(df).set_index("model")
    assert times.loc["a", "n"] == 4
    assert times.loc["a", "median_ms"] == 1000.5  # trials 0, 1 of participants 0, 1
    assert times.loc["b", ["q25_ms", "q75_ms"]].tolist() == [1002.0, 1003.0]


def test_empty_tables_keep_their_columns() -> None:
    empty = _table().iloc[:0]
    assert list(fool_rates(empty).columns)[:5] == [
        "model",
        "k",
        "n",
        "participants",
        "rate",
    ]
    assert len(per_image(empty)) == len(response_times(empty)) == 0


def _answer_all(engine: Engine, token: str, choice: str) -> None:
    while True:
        with Session(engine) as session, session.begin():
            view = service.next_trial(session, token, now=T0)
            if view is None:
                return
            service.submit_answer(session, token, view.trial_id, choice, now=T0)


def test_load_trials_is_anonymised_and_has_one_row_per_answer(
    engine: Engine, make_study: StudyMaker
) -> None:
    make_study()
    tokens = []
    for _ in range(3):
        with Session(engine) as session, session.begin():
            tokens.append(service.start_participant(session, "pilot", now=T0))
    _answer_all(engine, tokens[0], "left")
    _answer_all(engine, tokens[2], "right")
    with Session(engine) as session, session.begin():  # participant 1: one answer
        view = service.next_trial(session, tokens[1], now=T0)
        service.submit_answer(session, tokens[1], view.trial_id, "left", now=T0)

    df = load_trials(engine, "pilot")
    assert list(df.columns) == list(TRIAL_COLUMNS)
    for column, dtype in TRIAL_COLUMNS.items():
        if dtype == "str":  # pandas 3 "str", pandas 2 object
            assert pd.api.types.is_string_dtype(df[column]), column
        else:
            assert str(df[column].dtype) == dtype, column
    assert len(df) == 6 + 1 + 6
    assert df.groupby("participant").size().to_dict() == {0: 6, 1: 1, 2: 6}
    assert df.groupby("participant")["finished"].first().tolist() == [True, False, True]
    text = df.to_csv()
    assert not any(token in text for token in tokens)
    assert (df["fooled"] == ~df["is_correct"]).all()
    assert (df["is_correct"] == ((df["choice"] == "left") == df["left_is_fake"])).all()
    assert (df["answered_at"] == pd.Timestamp(T0)).all()
    with Session(engine) as session:
        flagged = session.scalars(select(Participant.flagged).order_by(Participant.id))
        assert df.groupby("participant")["flagged"].first().tolist() == list(flagged)


def test_load_trials_refuses_unknown_study_or_database(
    engine: Engine, make_study: StudyMaker, tmp_path
) -> None:
    make_study()
    for name in ("other", "../pilot", ""):
        with pytest.raises(NotFoundError):
            load_trials(engine, name)
    missing = tmp_path / "missing.db"
    with pytest.raises(NotFoundError, match="no survey database"):
        load_trials(f"sqlite:///{missing}", "pilot")
    assert not missing.exists()


def test_stats_command_prints_a_table(
    engine: Engine, make_study: StudyMaker, db_url: str, capsys
) -> None:
    make_study()
    with Session(engine) as session, session.begin():
        token = service.start_participant(session, "pilot", now=T0)
    _answer_all(engine, token, "left")
    everyone = ["--study", "pilot", "--db", db_url, "--include-flagged"]
    assert main([*everyone, "--bootstrap", "200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["model", "k", "n", "participants", "rate"]
    assert [line.split()[0] for line in lines[1:]] == ["m1", "m2"]
    for table in ("images", "participants", "times"):
        assert main([*everyone, "--table", table]) == 0
    capsys.readouterr()
    assert main(["--study", "pilot", "--db", db_url, "--table", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: --table must be one of")

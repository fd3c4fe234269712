"""`python -m survey.export`: files that round-trip through pandas, one-line errors."""

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey import service
from survey.export import main
from survey.stats import TRIAL_COLUMNS, load_trials
from tests.survey.conftest import T0, StudyMaker


@pytest.fixture
def answered(engine: Engine, make_study: StudyMaker) -> Engine:
    """The pilot study with two participants who answered everything."""
    make_study()
    for choice in ("left", "right"):
        with Session(engine) as session, session.begin():
            token = service.start_participant(session, "pilot", now=T0)
        while True:
            with Session(engine) as session, session.begin():
                view = service.next_trial(session, token, now=T0)
                if view is None:
                    break
                service.submit_answer(session, token, view.trial_id, choice, now=T0)
    return engine


def test_csv_export_round_trips_through_pandas(
    answered: Engine, db_url: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "exports" / "pilot.csv"
    assert (
        main(["--study", "pilot", "--format", "csv", "--db", db_url, "--out", str(out)])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    dates = [c for c, dtype in TRIAL_COLUMNS.items() if dtype.startswith("datetime")]
    back = pd.read_csv(out, parse_dates=dates)
    expected = load_trials(answered, "pilot")
    assert len(back) == 12
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_parquet_export_keeps_dtypes(
    answered: Engine, db_url: str, tmp_path: Path
) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "pilot.parquet"
    assert (
        main(
            [
                "--study",
                "pilot",
                "--format",
                "parquet",
                "--db",
                db_url,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(
        back, load_trials(answered, "pilot"), check_dtype=False
    )
    assert back["answered_at"].dt.tz is not None


def test_default_output_is_named_after_the_study(
    answered: Engine, db_url: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--study", "pilot", "--db", db_url]) == 0
    assert (tmp_path / "pilot.csv").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "nope"], "unknown study 'nope'"),
        (["--study", "pilot", "--format", "xlsx"], "--format must be csv or parquet"),
    ],
)
def test_errors_are_one_line_with_exit_2(
    answered: Engine, db_url: str, tmp_path: Path, capsys, args, message
) -> None:
    out = tmp_path / "out.csv"
    assert main([*args, "--db", db_url, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_missing_database_file_is_an_error_not_a_new_database(
    tmp_path: Path, capsys
) -> None:
    db = tmp_path / "typo.db"
    assert main(["--study", "pilot", "--db", f"sqlite:///{db}"]) == 2
    assert "no survey database" in capsys.readouterr().err
    assert not db.exists()

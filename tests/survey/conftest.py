"""Survey fixtures: a database per test (SQLite file, and PostgreSQL when configured)
and small studies of synthetic photos built through `survey.create.build_study`.

PostgreSQL runs when SURVEY_TEST_PG_URL is set (CI: `eval "$(bash .ci/postgres.sh)"`);
its tables are dropped and created again for every test.
"""

import datetime as dt
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.create import CreateConfig, build_study
from survey.db import create_engine, init_db
from survey.models import Base

PG_URL = os.environ.get("SURVEY_TEST_PG_URL", "")
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)  # tests never read the wall clock

DATABASES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.slow,  # the default run checks SQLite; CI runs both
            pytest.mark.skipif(
                not PG_URL,
                reason="SURVEY_TEST_PG_URL not set; start a server with "
                'eval "$(bash .ci/postgres.sh)"',
            ),
        ],
    ),
]


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file in tmp_path, or the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'survey.db'}"
        return
    engine = create_engine(PG_URL)
    Base.metadata.drop_all(engine)
    engine.dispose()
    yield PG_URL
    engine = create_engine(PG_URL)
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on `db_url` with the survey tables created."""
    engine = create_engine(db_url)
    init_db(engine)
    yield engine
    engine.dispose()


def _photo(rng: np.random.Generator) -> Image.Image:
    """A tiny random colour image (12 x 16)."""
    return Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))


def _swap_channels(_stem: str, real: Image.Image) -> Image.Image:
    """A stand-in fake: the same photo with its colours rotated (R -> G -> B)."""
    r, g, b = real.split()
    return Image.merge("RGB", (b, r, g))


StudyMaker = Callable[..., str]


@pytest.fixture
def make_study(engine: Engine) -> StudyMaker:
    """make_study(name="pilot", models=("m1", "m2"), per_model=2, attention=1,
    practice=1, photos=8, seed=0) stores a study and returns its name.
    """

    def make(
        name: str = "pilot",
        models: tuple[str, ...] = ("m1", "m2"),
        per_model: int = 2,
        attention: int = 1,
        practice: int = 1,
        photos: int = 8,
        seed: int = 0,
    ) -> str:
        rng = np.random.default_rng(seed)
        reals = {f"photos/p{i}.jpg": (f"p{i}", _photo(rng)) for i in range(photos)}
        cfg = CreateConfig(
            name=name,
            photos="photos",
            model=models,
            per_model=per_model,
            attention_checks=attention,
            practice_trials=practice,
            display_ms=800,
            seed=seed,
        )
        with Session(engine) as session, session.begin():
            build_study(session, cfg, reals, dict.fromkeys(models, _swap_channels))
        return name

    return make

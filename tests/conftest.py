"""Shared fixtures: deterministic seeds, the root logger restored after every test,
and a small random-weight Colorizer; a run that leaves a new file or folder at the top
of the checkout fails."""

import logging
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# nothing in the tests may reach the internet (gradio_client asks the Hugging Face hub)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import keras  # noqa: E402 (after TF_CPP_MIN_LOG_LEVEL, which TensorFlow reads on import)
import numpy as np  # noqa: E402 (as above)
import pytest  # noqa: E402 (as above)

from core.colorizer import Colorizer  # noqa: E402 (as above)
from core.models import create_model, get_spec  # noqa: E402 (as above)

ROOT = Path(__file__).resolve().parents[1]
_TOP_LEVEL = pytest.StashKey[set[str]]()
# written by the tools themselves, not by a test
CACHES = {".pytest_cache", ".ruff_cache", "__pycache__"}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_TOP_LEVEL] = {p.name for p in ROOT.iterdir()}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test left something at the top of the checkout (tests
    write under tmp_path; e.g. a main() run in the checkout makes `survey.db`)."""
    before = session.stash.get(_TOP_LEVEL, None)
    if before is None:
        return
    new = sorted({p.name for p in ROOT.iterdir()} - before - CACHES)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"tests left {', '.join(new)} in {ROOT}: write under tmp_path"
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line(f"ERROR: {message}", red=True, bold=True)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed Python, NumPy and TensorFlow (through Keras) before every test."""
    keras.utils.set_random_seed(0)
    np.random.seed(0)  # noqa: NPY002 (legacy global state some libraries still read)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo the logging set-up of a command's main() called in-process.

    `logging.basicConfig(force=True)` in a main() binds a handler to the sys.stderr of
    that moment, which under capsys/capfd is a capture stream closed after the test:
    left in place, a later test's log records print "--- Logging error ---" tracebacks.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator for the test's own random inputs."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def random_colorizer() -> Colorizer:
    """default-v1 (the first default) with random weights: enough for shape and range
    checks of a model without hint inputs."""
    keras.utils.set_random_seed(0)
    return Colorizer(
        create_model("default-v1", pretrained=False), get_spec("default-v1")
    )


@pytest.fixture(scope="session")
def trained_hint_colorizer() -> Colorizer:
    """default with its shipped, trained weights."""
    return Colorizer.load("default")


def audible_hint_model(seed: int = 3) -> keras.Model:
    """default with random weights and hint injections that are not zero, so that
    hints reach the output everywhere (a fresh model's injections start at zero)."""
    keras.utils.set_random_seed(seed)
    model = create_model("default", pretrained=False)
    for layer in model.layers:
        if layer.name.endswith("_inject"):
            kernel, bias = layer.get_weights()
            layer.set_weights([np.full_like(kernel, 0.05), bias])
    return model


@pytest.fixture(scope="session")
def hint_colorizer() -> Colorizer:
    """A Colorizer of `audible_hint_model`."""
    return Colorizer(audible_hint_model(), get_spec("default"))


@pytest.fixture(scope="session")
def random_v2_weights(tmp_path_factory: pytest.TempPathFactory):
    """`audible_hint_model`'s weights in a file (for NAME=FILE and --weights)."""
    path = tmp_path_factory.mktemp("v2") / "random-v2.weights.h5"
    audible_hint_model().save_weights(path)
    return path

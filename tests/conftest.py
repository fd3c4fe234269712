"""Shared fixtures: deterministic seeds and a small random-weight Colorizer."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# nothing in the tests may reach the internet (gradio_client asks the Hugging Face hub)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import keras  # noqa: E402 (after TF_CPP_MIN_LOG_LEVEL, which TensorFlow reads on import)
import numpy as np  # noqa: E402 (as above)
import pytest  # noqa: E402 (as above)

from core.colorizer import Colorizer  # noqa: E402 (as above)
from core.models import create_model, get_spec  # noqa: E402 (as above)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed Python, NumPy and TensorFlow (through Keras) before every test."""
    keras.utils.set_random_seed(0)
    np.random.seed(0)  # noqa: NPY002 (legacy global state some libraries still read)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator for the test's own random inputs."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def random_colorizer() -> Colorizer:
    """The default model with random weights: enough for shape and range checks."""
    keras.utils.set_random_seed(0)
    return Colorizer(create_model("default", pretrained=False), get_spec("default"))


@pytest.fixture(scope="session")
def trained_hint_colorizer() -> Colorizer:
    """default-v2 with trained weights: the shipped file, else $COLORIZE_V2_WEIGHTS.

    Until default-v2's weights ship, point COLORIZE_V2_WEIGHTS at a training run's
    weights (e.g. runs/v2/last.weights.h5); without either the test is skipped.
    """
    from core.weights import MissingWeightsError

    try:
        return Colorizer.load("default-v2")
    except MissingWeightsError:
        pass
    fallback = os.environ.get("COLORIZE_V2_WEIGHTS", "")
    if not fallback or not os.path.isfile(fallback):
        pytest.skip(
            "needs trained default-v2 weights: core/weights/default-v2.weights.h5 is "
            "not shipped yet and COLORIZE_V2_WEIGHTS does not name a weights file"
        )
    return Colorizer.load("default-v2", weights=fallback)

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

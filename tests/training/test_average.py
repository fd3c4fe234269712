"""Weight averaging of runs of one model (training.average)."""

import keras
import numpy as np
import pytest

from core.models import create_model
from training.average import average_weights, main

# two default models built and saved, then averaged by the command
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two weight files of the default model with different random weights."""
    folder = tmp_path_factory.mktemp("runs")
    paths, values = [], []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = create_model("default-v1", pretrained=False)
        rng = np.random.default_rng(seed)
        for v in model.weights:  # BN statistics too: every variable differs
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
        path = folder / f"run{seed}.weights.h5"
        model.save_weights(path)
        paths.append(str(path))
        values.append([v.numpy() for v in model.weights])
    return paths, values


def test_weighted_mean_of_every_variable(two_runs, tmp_path) -> None:
    paths, (a, b) = two_runs
    out = tmp_path / "soup.weights.h5"
    average_weights("default-v1", paths, str(out), mix=[1, 3])
    model = create_model("default-v1", pretrained=False)
    model.load_weights(out)
    for got, x, y in zip((v.numpy() for v in model.weights), a, b, strict=True):
        np.testing.assert_allclose(got, 0.25 * x + 0.75 * y, rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["soup.weights.h5"]  # no temp file


def test_bad_inputs_fail_in_one_line(two_runs, tmp_path, capsys) -> None:
    paths, _ = two_runs
    out = str(tmp_path / "x.weights.h5")
    assert main([*paths, "--out", out, "--mix", "1"]) == 2
    assert main([*paths, "--out", out, "--mix", "0", "0"]) == 2
    assert main([paths[0], str(tmp_path / "missing.weights.h5"), "--out", out]) == 2
    assert main([*paths, "--out", str(tmp_path / "x.h5")]) == 2
    assert main([*paths, "--out", out, "--model", "cgan"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 5 and all(e.startswith("error: ") for e in errors)
    assert not (tmp_path / "x.weights.h5").exists()

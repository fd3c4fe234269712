"""Hash-checked weights loading, the shipped manifest, and atomic writes."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from core.atomic import atomic_write_bytes
from core.colorizer import Colorizer
from core.models import UnknownModelError, create_model, get_spec
from core.weights import (
    WEIGHTS_DIR,
    MissingWeightsError,
    WeightsChecksumError,
    file_sha256,
    load_weights,
    manifest_entry,
    read_manifest,
    weights_path,
)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A folder with a random default model's weights and a manifest naming them."""
    folder = tmp_path_factory.mktemp("weights")
    spec = get_spec("default-v1")
    model = create_model("default-v1", pretrained=False)
    path = weights_path(spec, folder)
    model.save_weights(path)
    manifest = {"default-v1": {"file": path.name, "sha256": file_sha256(path)}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, model.get_weights()


@pytest.fixture(scope="module")
def target():
    """A second default model that the tests load weights into."""
    return create_model("default-v1", pretrained=False)


def test_file_sha256(tmp_path) -> None:
    data = bytes(range(256)) * 10_000
    (tmp_path / "x.bin").write_bytes(data)
    assert file_sha256(tmp_path / "x.bin") == hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_load_weights_from_manifest(shipped, target) -> None:
    folder, expected = shipped
    model = target
    model.set_weights([np.zeros_like(w) for w in expected])
    loaded = load_weights(model, get_spec("default-v1"), folder=folder)
    assert loaded == folder / "default-v1.weights.h5"
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_flipped_byte_is_refused_with_retrain_hint(shipped, target, tmp_path) -> None:
    folder, _ = shipped
    for name in ("manifest.json", "default-v1.weights.h5"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    path = tmp_path / "default-v1.weights.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    model = target
    model.set_weights([np.full_like(w, 0.5) for w in model.get_weights()])
    before = model.get_weights()
    with pytest.raises(WeightsChecksumError) as err:
        load_weights(model, get_spec("default-v1"), folder=tmp_path)
    message = str(err.value)
    assert str(path) in message
    assert "python -m training.train --model default-v1" in message
    assert "git checkout -- core/weights" in message
    # nothing was loaded
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_missing_weights_file(shipped, target, tmp_path) -> None:
    folder, _ = shipped
    (tmp_path / "manifest.json").write_bytes((folder / "manifest.json").read_bytes())
    with pytest.raises(MissingWeightsError) as err:
        load_weights(target, get_spec("default-v1"), folder=tmp_path)
    assert "python -m training.train" in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


def test_missing_manifest_entry(target, tmp_path) -> None:
    assert read_manifest(tmp_path) == {}
    with pytest.raises(MissingWeightsError, match="no shipped weights"):
        manifest_entry("default-v1", tmp_path)
    with pytest.raises(MissingWeightsError, match="training.train --model default-reg"):
        load_weights(target, get_spec("default-reg"), folder=tmp_path)


def test_explicit_path_is_loaded_without_hash(shipped, target, tmp_path) -> None:
    folder, expected = shipped
    model = target
    model.set_weights([np.zeros_like(w) for w in expected])
    load_weights(model, get_spec("default-v1"), folder / "default-v1.weights.h5")
    np.testing.assert_array_equal(model.get_weights()[0], expected[0])
    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_weights(model, get_spec("default-v1"), tmp_path / "nope.weights.h5")


def test_colorizer_load_with_weights_file(shipped) -> None:
    folder, expected = shipped
    colorizer = Colorizer.load("default-v1", weights=folder / "default-v1.weights.h5")
    assert colorizer.name == "default-v1"
    for got, want in zip(colorizer.model.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(UnknownModelError, match="known models: default"):
        Colorizer.load("no-such-model")


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write_bytes(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path) -> None:
    path = tmp_path / "file.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_shipped_weights_match_manifest() -> None:
    manifest = read_manifest(WEIGHTS_DIR)
    if not manifest:
        pytest.skip("no core/weights/manifest.json yet")
    for name, entry in manifest.items():
        path = WEIGHTS_DIR / entry["file"]
        assert path.is_file(), f"{name}: {path} missing"
        assert not path.read_bytes()[:100].startswith(b"version https://git-lfs"), (
            f"{path} is a Git LFS pointer"
        )
        assert file_sha256(path) == entry["sha256"], name
        assert get_spec(name).weights in ("", entry["file"])

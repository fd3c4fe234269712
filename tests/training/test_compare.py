"""The paper comparison end to end on two small photos with fresh small weights."""

import keras
import pytest
import skimage.data
from PIL import Image

from core.models import create_model
from training.compare import main

# builds the three paper models and runs the whole comparison
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, str]:
    """Untrained weights of the paper's models (their shipped files may be absent)."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    out = {}
    for name in ("cgan", "vgg16-reg", "vgg16-cls"):
        path = folder / f"{name}.weights.h5"
        create_model(name, pretrained=False).save_weights(path)
        out[name] = str(path)
    return out


def test_compare_writes_table_figure_and_findings(weights, tmp_path) -> None:
    # two scikit-image photos (CC0) at a quarter of their side, about the size of
    # BSDS500's at a quarter, keep the metrics quick and need no ../shared
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea", "coffee"):
        image = Image.fromarray(getattr(skimage.data, name)())
        image.reduce(4).save(photos / f"{name}.jpg", quality=95)
    out, doc = tmp_path / "cmp", tmp_path / "docs" / "paper.md"
    args = ["--data", str(photos), "--size", "64"]
    args += ["--out", str(out), "--doc", str(doc), "--figure-images", "2"]
    for name, path in weights.items():
        args += ["--weights", f"{name}={path}"]
    assert main(args) == 0
    import json

    summary = json.loads((out / "summary.json").read_text())
    models = summary["models"]
    assert list(models) == [
        "gray",
        "cgan (1 sample)",
        "cgan (5 samples)",
        "vgg16-reg",
        "vgg16-cls argmax",
        "vgg16-cls annealed",
        "default",
    ]
    assert models["gray"]["cf_signed"] == 0.0
    # five different noise vectors give different colourings
    assert models["cgan (5 samples)"]["sample_spread_ab"] > 0.1
    # argmax picks bin centres, annealed mean averages them: different outputs
    assert models["vgg16-cls argmax"]["psnr"] != models["vgg16-cls annealed"]["psnr"]
    for s in models.values():
        assert 0.0 <= s["auc"] <= 1.0 and s["images"] == 2
    text = doc.read_text()
    assert "| vgg16-cls argmax |" in text and "regression" in text
    assert "](../cmp/comparison.png)" in text
    png = (out / "comparison.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    rows = (out / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 7

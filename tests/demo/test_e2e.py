"""The running app through its HTTP API (gradio_client): results, errors, offline."""

import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.demo.conftest import SIZE, mean_chroma

# Gradio's queue uses pandas options that pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


@pytest.fixture(scope="module")
def client(app_url, outside_hosts, tmp_path_factory) -> Client:
    # the client itself (not the app) asks huggingface.co for a user-agent registry
    # while it starts; that is no part of the app, so it is not recorded
    with outside_hosts.paused():
        return Client(
            app_url,
            verbose=False,
            analytics_enabled=False,
            download_files=tmp_path_factory.mktemp("downloads"),
        )


def _colorize(client: Client, path: Path, model: str = "default-v1"):
    return client.predict(
        handle_file(path), model, SIZE, 1.0, 0.38, 1, api_name="/colorize"
    )


def test_app_colorizes_an_upload_at_full_size(client, photos):
    (gray, color), download, alternatives, original, scores = _colorize(
        client, photos["gray"]
    )
    assert Path(download["value"]).name == "cat-colorized.png"
    with Image.open(color) as shown, Image.open(download["value"]) as png:
        assert shown.size == png.size == (223, 149)
        assert np.array_equal(np.asarray(shown), np.asarray(png))
        assert mean_chroma(png) > 2.0
    with Image.open(gray) as shown:
        assert shown.size == (223, 149) and mean_chroma(shown) < 0.5
    assert alternatives["visible"] is False
    assert original is None and scores == ""


def test_app_scores_a_colour_upload(client, photos):
    _, _, _, original, scores = _colorize(client, photos["color"], "default-reg")
    with Image.open(original) as shown:
        assert shown.size == (200, 134)
    assert "PSNR" in scores and " dB" in scores and "AuC" in scores


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("text", "notes.png: not an image"),
        ("empty", "empty.jpg: the file is empty"),
        ("truncated", "truncated.png: corrupt or truncated"),
        ("huge", "huge.png: 1200x1000 = 1,200,000 pixels is over the limit"),
    ],
)
def test_app_says_what_is_wrong_and_keeps_serving(client, photos, key, words):
    with pytest.raises(AppError, match=words):
        _colorize(client, photos[key])
    (_, color), *_ = _colorize(client, photos["gray"])
    assert Path(color).is_file()


def test_app_refuses_uploads_over_the_byte_limit(app_url, client, tmp_path, rng):
    noise = rng.integers(0, 256, (900, 1000, 3), dtype=np.uint8)  # 0.9 MP, 2.7 MB
    Image.fromarray(noise).save(tmp_path / "noise.png")
    with pytest.raises(ValueError, match="exceeds the maximum file size of 2000000"):
        _colorize(client, tmp_path / "noise.png")  # the client reads the app's limit
    with open(tmp_path / "noise.png", "rb") as f:  # and the server refuses it too
        response = httpx.post(f"{app_url}gradio_api/upload", files={"files": f})
    assert response.status_code == 413 and "size exceeded" in response.text


def test_app_queues_concurrent_requests(client, photos):
    # distinct saturations: identical outputs would share one file in Gradio's
    # content-addressed cache, written by concurrent requests at once (a race there)
    jobs = [
        client.submit(
            handle_file(photos["gray"]),
            "default-v1",
            SIZE,
            saturation,
            0.38,
            1,
            api_name="/colorize",
        )
        for saturation in (1.0, 0.9, 0.8)
    ]
    for job in jobs:
        (_, color), *_ = job.result(timeout=1200)  # a safety net
        assert Image.open(color).size == (223, 149)


def test_app_compares_all_models(client, photos):
    shown = client.predict(
        handle_file(photos["gray"]), SIZE, 1.0, 0.38, api_name="/compare"
    )["value"]
    assert [item["caption"] for item in shown] == [
        "Grey input",
        "default-v1",
        "default-reg",
    ]


def test_app_colorizes_many_files_into_a_zip(client, photos):
    files = [handle_file(photos[k]) for k in ("gray", "text", "color")]
    zip_path, previews, report = client.predict(
        files, "default-v1", SIZE, 1.0, 0.38, api_name="/colorize_many"
    )
    assert "2 of 3 photos colorized" in report and "notes.png" in report
    assert [p["caption"] for p in previews] == ["cat.png", "coffee.png"]
    assert Path(zip_path).name == "colorized-photos.zip"
    with zipfile.ZipFile(zip_path) as archive:
        with archive.open("coffee.png") as member, Image.open(member) as png:
            assert png.size == (200, 134)


def test_app_reaches_nothing_outside_this_machine(client, photos, outside_hosts):
    _colorize(client, photos["gray"])
    assert outside_hosts.hosts == []


def test_app_says_nan_in_one_line(client, tmp_path):
    values = np.linspace(0.0, 1.0, 64 * 48, dtype=np.float32).reshape(48, 64)
    values[10, 20] = np.nan
    Image.fromarray(values, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(AppError) as info:
        _colorize(client, tmp_path / "nan.tif")
    message = str(info.value)
    assert message.startswith("nan.tif: ") and "\n" not in message
    assert "NaN" in message or "finite" in message

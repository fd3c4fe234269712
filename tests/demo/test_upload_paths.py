"""Raw HTTP calls that name a server path: only files Gradio stored for an upload.

Every endpoint that takes a file is called through `/gradio_api/call/<endpoint>` as an
attacker would (curl, no `meta` field, or with it), with a colour photo outside the
upload cache, a `..` path out of it, a symbolic link inside it that points out, a
folder and a missing file: each is refused with the same words and no pixels.
"""

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import skimage.data
from gradio.utils import get_upload_folder
from PIL import Image

from demo.app import REFUSED_UPLOAD
from tests.demo.conftest import SIZE

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

ENDPOINTS = ("colorize", "compare", "colorize_many", "colorize_video")


def _call(url: str, endpoint: str, file: object) -> tuple[str, str]:
    """One raw API call with `file` as the photo; returns (last event, its data)."""
    args = {
        "colorize": [file, "default-v1", SIZE, 1, 0.38, 1],
        "compare": [file, SIZE, 1, 0.38],
        "colorize_many": [[file], "default-v1", SIZE, 1, 0.38],
        "colorize_video": [file, "default-v1", SIZE, True],
    }[endpoint]
    with httpx.Client(timeout=120) as http:
        response = http.post(f"{url}gradio_api/call/{endpoint}", json={"data": args})
        response.raise_for_status()
        event_id = response.json()["event_id"]
        event, data = "", ""
        with http.stream("GET", f"{url}gradio_api/call/{endpoint}/{event_id}") as sse:
            for line in sse.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = line.split(":", 1)[1].strip()
                    if event in ("complete", "error"):
                        break
    return event, data


def _upload(url: str, path: Path) -> str:
    with open(path, "rb") as f:
        response = httpx.post(f"{url}gradio_api/upload", files={"files": f})
    response.raise_for_status()
    return response.json()[0]


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colour photo the server can read, outside Gradio's upload cache."""
    path = tmp_path_factory.mktemp("server-files") / "secret.png"
    Image.fromarray(skimage.data.coffee()[::4, ::4]).save(path)
    return path


@pytest.fixture(scope="module")
def cache_folder(app_url: str) -> Iterator[Path]:
    """A folder of ours inside Gradio's upload cache (removed afterwards)."""
    folder = Path(get_upload_folder()) / f"test-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _bad_paths(secret: Path, cache_folder: Path) -> dict[str, str]:
    link = cache_folder / "link.png"
    if not link.is_symlink():
        link.symlink_to(secret)
    cache = Path(get_upload_folder())
    up = "/".join([".."] * len(cache.resolve().parts))
    return {
        "outside": str(secret),
        "dotdot": f"{cache}/{up}{secret}",  # starts in the cache, ends at the secret
        "symlink": str(link),
        "relative": os.path.relpath(secret),
        "folder": str(cache_folder),
        # the same places without a file: the answers must not tell them apart
        "outside-missing": str(secret.with_name("no-such-photo.png")),
        "missing": str(cache_folder / "no-such-photo.png"),
        "dangling-symlink": str(cache_folder / "dangling.png"),
    }


def _error(event: str, data: str) -> str | None:
    assert event == "error", data
    assert "/gradio_api/file=" not in data and "secret" not in data  # no pixels
    return json.loads(data)["error"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("meta", [False, True], ids=["curl", "with-meta"])
def test_a_path_that_gradio_did_not_store_is_refused(
    app_url, secret, cache_folder, endpoint, meta
):
    dangling = cache_folder / "dangling.png"
    if not dangling.is_symlink():
        dangling.symlink_to(secret.with_name("no-such-photo.png"))
    answers = {}
    for kind, path in _bad_paths(secret, cache_folder).items():
        if kind in ("outside", "dotdot", "symlink", "relative"):
            assert Image.open(path).size == (150, 100)  # there to be read
        file = {"path": path}
        if meta:
            file["meta"] = {"_type": "gradio.FileData"}
        answers[kind] = _error(*_call(app_url, endpoint, file))
    # One answer for every path, whether a file is there or not. Where the call
    # carries `meta`, Gradio's own check refuses paths outside its upload folder
    # first, with no words (null), before the handler runs; the handler refuses
    # the rest with REFUSED_UPLOAD. A gr.File input (a list, or the video tab's
    # single file) without `meta` fails Gradio's validation (null) for every path.
    if endpoint in ("colorize_many", "colorize_video") and not meta:
        assert set(answers.values()) == {None}
    elif meta:
        outside = ("outside", "dotdot", "symlink", "relative", "outside-missing")
        outside += ("dangling-symlink",)  # Gradio resolves links too
        assert {answers[k] for k in outside} == {None}
        assert {answers[k] for k in answers if k not in outside} == {REFUSED_UPLOAD}
    else:
        assert set(answers.values()) == {REFUSED_UPLOAD}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_plain_string_path_is_refused_too(app_url, secret, endpoint):
    assert _error(*_call(app_url, endpoint, str(secret))) in (None, REFUSED_UPLOAD)


def test_one_bad_path_refuses_the_whole_batch(app_url, secret, photos):
    meta = {"_type": "gradio.FileData"}
    good = {"path": _upload(app_url, photos["gray"]), "meta": meta}
    with httpx.Client(timeout=120) as http:
        bad = {"path": str(secret), "meta": meta}
        data = [[good, bad], "default-v1", SIZE, 1, 0.38]
        event_id = http.post(
            f"{app_url}gradio_api/call/colorize_many", json={"data": data}
        ).json()["event_id"]
        text = http.get(f"{app_url}gradio_api/call/colorize_many/{event_id}").text
    event, data = text.split("\n")[:2]
    assert _error(event.split(":")[1].strip(), data[5:]) in (None, REFUSED_UPLOAD)
    assert "cat" not in text and "zip" not in text


@pytest.mark.parametrize(
    "endpoint",
    [  # the video endpoint colorizes the photo as a clip of one frame: a few seconds
        pytest.param(e, marks=pytest.mark.slow) if e == "colorize_video" else e
        for e in ENDPOINTS
    ],
)
def test_an_uploaded_file_is_accepted_by_the_same_raw_call(app_url, secret, endpoint):
    """The control: the secret photo itself, uploaded, is colorized (not refused)."""
    file = {"path": _upload(app_url, secret), "meta": {"_type": "gradio.FileData"}}
    event, data = _call(app_url, endpoint, file)
    assert event == "complete", data
    assert REFUSED_UPLOAD not in data


def test_the_refusal_returns_no_pixels_of_the_file(app_url, secret):
    """What the issue's curl got back (the 'colour original'), now: nothing."""
    event, data = _call(app_url, "colorize", {"path": str(secret)})
    assert event == "error"
    # a completed call would hold the result files; the refusal holds only the text
    assert "/gradio_api/file=" not in data and "original" not in data
    assert np.asarray(Image.open(secret)).size > 0  # the file was there to be read

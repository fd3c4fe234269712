"""Fixtures for the demo: two random-weight models, small real photos, the running app.

The app is started once per session on a free port (`prevent_thread_lock=True`) and
closed at the end; an audit hook records any connection it tries outside this machine.
"""

import contextlib
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.colorizer import Colorizer
from core.colorspace import gray_level, rgb_to_lab
from core.models import create_model, get_spec
from demo import build_demo, launch_options

MAX_BYTES = 2_000_000  # small limits, so that tests can cross them cheaply
MAX_PIXELS = 1_000_000
SIZE = 128  # smallest render size the page offers: keeps the tests fast
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", None}


@pytest.fixture(scope="session")
def demo_colorizers(random_colorizer: Colorizer) -> dict[str, Colorizer]:
    """default-v1 and its regression variant, both with random weights."""
    keras.utils.set_random_seed(1)
    regression = Colorizer(
        create_model("default-reg", pretrained=False, decoder_widths=(16, 16, 16, 16)),
        get_spec("default-reg"),
    )
    return {"default-v1": random_colorizer, "default-reg": regression}


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real photos (scikit-image, CC0) with odd sizes, and some bad files."""
    folder = tmp_path_factory.mktemp("photos")
    cat = skimage.data.chelsea()[::2, ::2][:149, :223]  # 149 x 223, odd sides
    gray = gray_level(rgb_to_lab(cat)[..., 0])
    paths = {
        "gray": folder / "cat.png",
        "color": folder / "coffee.jpg",
        "rgba": folder / "cat-alpha.png",
        "text": folder / "notes.png",
        "empty": folder / "empty.jpg",
        "truncated": folder / "truncated.png",
        "huge": folder / "huge.png",
    }
    gray8 = np.round(gray * 255).astype(np.uint8)
    Image.fromarray(gray8, mode="L").save(paths["gray"])
    coffee = skimage.data.coffee()[::3, ::3]  # 134 x 200
    Image.fromarray(coffee).save(paths["color"], quality=95)
    alpha = np.tile(
        np.linspace(0, 255, cat.shape[1], dtype=np.uint8), (cat.shape[0], 1)
    )
    Image.fromarray(np.dstack([cat, alpha]), mode="RGBA").save(paths["rgba"])
    paths["text"].write_text("this is not an image\n")
    paths["empty"].write_bytes(b"")
    png = paths["gray"].read_bytes()
    paths["truncated"].write_bytes(png[: len(png) // 2])
    # 1200 x 1000 = 1.2 MP of one grey: over MAX_PIXELS, yet a tiny file
    Image.new("L", (1200, 1000), 128).save(paths["huge"])
    return paths


@dataclass
class _Recorder:
    """Hosts outside this machine that the process tried to reach while active."""

    active: bool = False
    hosts: list[str] = field(default_factory=list)

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        host = None
        if event == "socket.getaddrinfo":
            host = args[0]
        elif event == "socket.connect" and isinstance(args[1], tuple):
            host = args[1][0]
        else:
            return
        if isinstance(host, bytes):
            host = host.decode()
        if host not in LOOPBACK:
            self.hosts.append(str(host))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.active = False
        try:
            yield
        finally:
            self.active = True


@pytest.fixture(scope="session")
def outside_hosts() -> Iterator[_Recorder]:
    """Records the hosts outside this machine contacted while the fixture is alive."""
    recorder = _Recorder(active=True)
    sys.addaudithook(recorder)  # hooks cannot be removed: it goes quiet at the end
    yield recorder
    recorder.active = False


def mean_chroma(image: Image.Image) -> float:
    """Mean chroma sqrt(a^2 + b^2) of an image's RGB, in CIE units."""
    lab = rgb_to_lab(np.asarray(image.convert("RGB")))
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(
    demo_colorizers: dict[str, Colorizer], outside_hosts: _Recorder
) -> Iterator[str]:
    """The app, running in this process on a free port; closed at the end."""
    demo = build_demo(demo_colorizers, max_pixels=MAX_PIXELS, max_bytes=MAX_BYTES)
    try:
        _, url, _ = demo.launch(
            server_name="127.0.0.1",
            server_port=_free_port(),
            prevent_thread_lock=True,
            quiet=True,
            **launch_options(max_bytes=MAX_BYTES),
        )
        yield url
    finally:
        demo.close()

"""Colour hints in a real browser: Debian's Chromium, headless, driven by Playwright.

Uploads a grey photo with a white region (the cup of scikit-image's coffee photo),
colorizes it with the trained hint model, clicks in the white, chooses a blue in the
colour picker and checks that the region around the point turns blue. The time from
the choice to the refreshed image (render size 256) is printed and written to
`hint-timing.txt`, and screenshots are saved, in the test's temporary folder
(`pytest --basetemp DIR` keeps them somewhere known).
"""

import io
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.colorspace import rgb_to_lab
from core.hintfile import read_png_hints
from demo import build_demo, launch_options
from tests.browser import NEEDS_CHROMIUM, open_page
from tests.demo.conftest import mean_chroma

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    NEEDS_CHROMIUM,
    # Gradio's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]

BLUE = "#1e3ce6"
POINT = (193, 49)  # in the white of the cup, of the 300 x 200 photo
WINDOW = 15  # side of the square whose mean hue is checked
RENDER_SIZE = 256


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def hint_app(trained_hint_colorizer, random_colorizer):
    """The app with the trained hint model first and a model without hints."""
    demo = build_demo(
        {"default": trained_hint_colorizer, "default-v1": random_colorizer}
    )
    try:
        _, url, _ = demo.launch(
            server_name="127.0.0.1",
            server_port=_free_port(),
            prevent_thread_lock=True,
            quiet=True,
            **launch_options(),
        )
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def coffee(tmp_path_factory) -> Path:
    """scikit-image's coffee photo (CC0), 300 x 200, as a grey PNG."""
    rgb = skimage.data.coffee()[::2, ::2]
    grey = np.round(rgb_to_lab(rgb)[..., 0] / 100 * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("photo") / "coffee.png"
    Image.fromarray(grey, mode="L").save(path)
    return path


def _fetch(page, src: str) -> Image.Image:
    response = page.request.get(src)
    assert response.ok, f"{src}: HTTP {response.status}"
    image = Image.open(io.BytesIO(response.body()))
    image.load()
    return image


def _click_photo_pixel(page, x: int, y: int, scale: float) -> None:
    """Click the clickable preview where it shows pixel (x, y) of the photo.

    Gradio maps a click to the image's own pixels assuming `object-fit: contain`
    without enlarging (its scale is at most 1); the same mapping, inverted.
    """
    img = page.locator("#hint-image img")
    pos = img.evaluate(
        """(el, [x, y]) => {
            const r = el.getBoundingClientRect();
            const s = Math.min(r.width / el.naturalWidth,
                               r.height / el.naturalHeight, 1);
            return {x: (r.width - el.naturalWidth * s) / 2 + x * s,
                    y: (r.height - el.naturalHeight * s) / 2 + y * s};
        }""",
        [(x + 0.5) / scale, (y + 0.5) / scale],
    )
    img.click(position=pos)


def _mean_hue(image: Image.Image, x: int, y: int) -> tuple[float, float]:
    """(hue in degrees, chroma) of the mean ab of a WINDOW-wide square at (x, y)."""
    r = WINDOW // 2
    rgb = np.asarray(image.convert("RGB"))[y - r : y + r + 1, x - r : x + r + 1]
    lab = rgb_to_lab(rgb)
    a, b = lab[..., 1].mean(), lab[..., 2].mean()
    return float(np.degrees(np.arctan2(b, a))), float(np.hypot(a, b))


def test_a_click_and_a_blue_turn_the_white_cup_blue(hint_app, coffee, tmp_path):
    from demo.hints import PREVIEW_SIDE

    page_ctx = open_page()
    page = page_ctx.__enter__()
    try:
        page.goto(hint_app)
        page.locator("#photo-input input[type=file]").set_input_files(coffee)
        page.locator("#photo-input img").wait_for()
        page.locator("#colorize-button").click()
        page.locator("#hint-image img").wait_for()

        x, y = POINT
        _click_photo_pixel(page, x, y, scale=300 / PREVIEW_SIDE)
        page.locator("#hint-swatches img").nth(5).wait_for()
        assert f"({x}, {y})" in page.locator("#hint-status").inner_text()
        captions = page.locator("#hint-swatches").inner_text()
        assert captions.count("%") == 6
        page.screenshot(path=tmp_path / "suggested.png", full_page=True)

        page.locator("#hint-picker .dialog-button").click()
        field = page.locator("#hint-picker input[type=text]")
        field.fill(BLUE)
        field.press("Enter")
        page.locator("#hint-picker .dialog-button").click()  # close the dialog
        shown = page.locator("#result-slider img").nth(1)
        before = shown.get_attribute("src")

        started = time.perf_counter()
        page.locator("#hint-add").click()
        page.wait_for_function(
            "([sel, old]) => { const el = document.querySelectorAll(sel)[1];"
            " return el && el.getAttribute('src') !== old && el.complete; }",
            arg=["#result-slider img", before],
        )
        seconds = time.perf_counter() - started
        page.locator("#hint-list label").first.wait_for()
        page.screenshot(path=tmp_path / "hinted.png", full_page=True)
        (tmp_path / "hint-timing.txt").write_text(
            f"choice to refreshed image at render size {RENDER_SIZE}: {seconds:.3f} s\n"
        )
        print(f"\nchoice to refreshed image: {seconds:.3f} s; screenshot {tmp_path}")

        color = _fetch(page, shown.get_attribute("src"))
        assert color.size == (300, 200)
        # the slider still compares the grey input with the new colorization
        grey = _fetch(
            page, page.locator("#result-slider img").nth(0).get_attribute("src")
        )
        assert grey.size == (300, 200) and mean_chroma(grey) < 0.5
        hue, chroma = _mean_hue(color, x, y)
        want, _ = _mean_hue(Image.new("RGB", (WINDOW, WINDOW), BLUE), 7, 7)
        print(f"hue at the hint {hue:.0f} (chosen {want:.0f}), chroma {chroma:.1f}")
        assert page.locator("#hint-list").inner_text().count(BLUE) == 1

        # the downloaded PNG carries the hint
        with page.expect_download() as info:
            page.locator("#download-button").click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        assert read_png_hints(saved) == [(x, y, (0x1E, 0x3C, 0xE6))]

        # undo brings the automatic colours back; the slider still shows both
        page.locator("#hint-undo").click()
        page.wait_for_function("() => !document.querySelector('#hint-list label')")
        page.screenshot(path=tmp_path / "undone.png", full_page=True)

        # uploading the downloaded PNG brings its hint back
        page.locator("#photo-input button[aria-label='Remove Image']").click()
        page.locator("#photo-input input[type=file]").set_input_files(saved)
        page.get_by_text("1 hint restored from").wait_for()
        assert page.locator("#hint-list").inner_text().count(BLUE) == 1

        # a model without hint inputs turns the controls off, saying why
        page.locator("#hint-reason").wait_for(state="hidden")
        page.get_by_label("Model", exact=True).first.click()
        page.get_by_role("option", name="default-v1", exact=True).click()
        page.get_by_text("Hints are off: model 'default-v1'").wait_for()
        assert page.locator("#hint-add").is_disabled()
        page.screenshot(path=tmp_path / "no-hint-model.png", full_page=True)

        # last, the colour itself: blue around the point, as chosen
        assert abs((hue - want + 180) % 360 - 180) < 20
        assert chroma > 10
    finally:
        page_ctx.__exit__(None, None, None)

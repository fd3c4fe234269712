"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

Uploads a grey photo, presses Colorize, waits for the result and checks that the image
the page shows is coloured and has the photo's size; the screenshot is saved in the
test's temporary folder (`pytest --basetemp DIR` keeps it somewhere known).
"""

import io

import pytest
from PIL import Image

from tests.browser import NEEDS_CHROMIUM, open_page
from tests.demo.conftest import mean_chroma

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # Chromium and a running app
    NEEDS_CHROMIUM,
    # Gradio's queue uses pandas options that pandas 3 deprecates
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]


@pytest.fixture
def page(app_url: str):
    with open_page() as page:
        yield page


def _fetch_image(page, src: str) -> Image.Image:
    response = page.request.get(src)
    assert response.ok, f"{src}: HTTP {response.status}"
    image = Image.open(io.BytesIO(response.body()))
    image.load()
    return image


def test_browser_colorizes_an_uploaded_grey_photo(app_url, page, photos, tmp_path):
    outside = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if not r.url.startswith((app_url, "data:", "blob:"))
            else None
        ),
    )
    page.goto(app_url)
    page.locator("#photo-input input[type=file]").set_input_files(photos["gray"])
    page.locator("#photo-input img").wait_for()
    page.locator("#colorize-button").click()
    shown = page.locator("#result-slider img")
    shown.nth(1).wait_for()
    page.screenshot(path=tmp_path / "colorized.png", full_page=True)

    gray = _fetch_image(page, shown.nth(0).get_attribute("src"))
    color = _fetch_image(page, shown.nth(1).get_attribute("src"))
    assert gray.size == color.size == Image.open(photos["gray"]).size
    assert mean_chroma(gray) < 0.5
    assert mean_chroma(color) > 2.0

    with page.expect_download() as download_info:
        page.locator("#download-button").click()
    download = download_info.value
    assert download.suggested_filename == "cat-colorized.png"
    download.save_as(tmp_path / download.suggested_filename)
    with Image.open(tmp_path / download.suggested_filename) as png:
        assert png.format == "PNG" and png.size == color.size
    assert outside == []


def test_browser_colorizes_an_example_photo(app_url, page):
    """Examples live in Gradio's cache, so the upload-path check lets them through."""
    page.goto(app_url)
    page.get_by_text("No photo at hand? Try one of these").wait_for()
    page.locator("button.gallery-item").first.click()  # the astronaut
    page.locator("#photo-input img").wait_for()
    page.locator("#colorize-button").click()
    shown = page.locator("#result-slider img")
    shown.nth(1).wait_for()
    color = _fetch_image(page, shown.nth(1).get_attribute("src"))
    assert color.size == (512, 512)  # scikit-image's astronaut, the first example
    assert mean_chroma(color) > 2.0

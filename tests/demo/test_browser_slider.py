"""The result slider shows the whole photo, in a real browser (headless Chromium).

A portrait and a landscape photo (scikit-image's rocket, cropped upright, and cat, from
`core.examples`) are colorized; at the handle's start, after dragging it and after
turning the mouse wheel over the photo (Gradio's ImageSlider zooms on the wheel), the
photo drawn by each of the slider's two images lies inside the component and has the
photo's aspect. Screenshots are saved in the test's temporary folder.
"""

from pathlib import Path

import pytest
from PIL import Image

from core.examples import example_grey
from tests.browser import NEEDS_CHROMIUM, open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # Chromium and a running app
    NEEDS_CHROMIUM,
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
]

# where each slider image draws its photo, in page pixels: the element's box (with any
# CSS transform) and the photo fitted in it as its object-fit says
DRAWN_BOX_JS = """
(img) => {
    const box = img.getBoundingClientRect();
    const fit = getComputedStyle(img).objectFit;
    const photo = img.naturalWidth / img.naturalHeight;
    let width = box.width, height = box.height;
    if (fit === "contain" || fit === "scale-down") {
        if (photo > box.width / box.height) height = box.width / photo;
        else width = box.height * photo;
    } else if (fit === "cover") {
        if (photo > box.width / box.height) width = box.height * photo;
        else height = box.width / photo;
    } else if (fit === "none") {
        width = img.naturalWidth; height = img.naturalHeight;
    }
    return {
        left: box.left + (box.width - width) / 2,
        top: box.top + (box.height - height) / 2,
        width: width,
        height: height,
        natural: [img.naturalWidth, img.naturalHeight],
    };
}
"""
TOLERANCE_PX = 1.5


@pytest.fixture(scope="module")
def slider_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A portrait (285 x 427) and a landscape (451 x 300) grey photo."""
    folder = tmp_path_factory.mktemp("slider-photos")
    paths = {"portrait": folder / "rocket.png", "landscape": folder / "chelsea.png"}
    Image.fromarray(example_grey("rocket")[:, 180:465]).save(paths["portrait"])
    Image.fromarray(example_grey("chelsea")).save(paths["landscape"])
    return paths


def _check_whole_photo_shown(page, size: tuple[int, int], when: str) -> None:
    component = page.locator("#result-slider").bounding_box()
    images = page.locator("#result-slider img")
    assert images.count() == 2, when
    for i in range(2):
        drawn = images.nth(i).evaluate(DRAWN_BOX_JS)
        assert tuple(drawn["natural"]) == size, when
        where = f"{when}, image {i}: {drawn} in {component}"
        assert drawn["left"] >= component["x"] - TOLERANCE_PX, where
        assert drawn["top"] >= component["y"] - TOLERANCE_PX, where
        right, bottom = drawn["left"] + drawn["width"], drawn["top"] + drawn["height"]
        assert right <= component["x"] + component["width"] + TOLERANCE_PX, where
        assert bottom <= component["y"] + component["height"] + TOLERANCE_PX, where
        aspect = drawn["width"] / drawn["height"]
        assert aspect == pytest.approx(size[0] / size[1], rel=0.01), where
        # fitted, not shrunk to a stamp: it fills the component's width or height
        assert (
            max(
                drawn["width"] / component["width"],
                drawn["height"] / component["height"],
            )
            > 0.95
        ), where


@pytest.mark.parametrize("shape", ["portrait", "landscape"])
def test_result_slider_shows_the_whole_photo(app_url, slider_photos, shape, tmp_path):
    path = slider_photos[shape]
    size = Image.open(path).size
    with open_page() as page:
        page.goto(app_url)
        page.locator("#photo-input input[type=file]").set_input_files(path)
        page.locator("#photo-input img").wait_for()
        page.locator("#colorize-button").click()
        images = page.locator("#result-slider img")
        images.nth(1).wait_for()
        page.wait_for_function(
            "() => [...document.querySelectorAll('#result-slider img')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        slider = page.locator("#result-slider")
        slider.screenshot(path=tmp_path / f"{shape}-start.png")
        _check_whole_photo_shown(page, size, "at the start")

        box = slider.bounding_box()
        middle_y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] / 2, middle_y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.3, middle_y, steps=5)
        page.mouse.up()
        slider.screenshot(path=tmp_path / f"{shape}-dragged.png")
        _check_whole_photo_shown(page, size, "after dragging the handle")

        page.mouse.move(box["x"] + box["width"] * 0.6, middle_y)
        for _ in range(5):
            page.mouse.wheel(0, -100)  # upwards: Gradio's ImageSlider zooms in
        page.wait_for_timeout(500)
        slider.screenshot(path=tmp_path / f"{shape}-wheel.png")
        _check_whole_photo_shown(page, size, "after the mouse wheel")

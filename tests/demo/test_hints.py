"""The hint handlers of the "Colorize a photo" tab, called directly with real files.

Most tests use default with random weights and a hint branch that is not silent;
whether a hint pulls the colour toward its own needs trained weights
(`trained_hint_colorizer`, skipped without them).
"""

import json
from dataclasses import replace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from core.colorspace import rgb_to_lab
from core.hintfile import HINTS_KEY, add_png_hints, read_hints, read_png_hints
from core.imageio import encode_png
from demo import hints as h
from tests.demo.conftest import MAX_BYTES, MAX_PIXELS, SIZE

LIMITS = {"max_pixels": MAX_PIXELS, "max_bytes": MAX_BYTES}
BLUE = (30, 60, 230)
RED = (220, 40, 30)


def _render(colorizer, state, tmp_path, size=SIZE):
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    return h.render(
        colorizer,
        state,
        size=size,
        saturation=1.0,
        temperature=0.38,
        out_dir=out,
        **LIMITS,
    )


def test_a_new_photo_has_no_hints_and_its_size(photos):
    state, message = h.new_photo(str(photos["gray"]), "cat.png")

    assert state.hints == () and message == ""
    assert state.size == (223, 149) and state.name == "cat.png"
    assert h.new_photo(None) == (h.HintState(), "")


@pytest.mark.slow
def test_hints_go_out_in_the_png_and_json_and_come_back_in(
    hint_colorizer, photos, tmp_path
):
    state, _ = h.new_photo(str(photos["gray"]), "cat.png")
    state = replace(state, point=(100, 50))
    state = h.add_hint(state, "#1e3ce6")
    state = replace(state, point=(10, 140))
    state = h.add_hint(state, RED)
    hints = [(100, 50, BLUE), (10, 140, RED)]
    assert list(state.hints) == hints

    out = _render(hint_colorizer, state, tmp_path)

    assert out.png.name == "cat-colorized.png"
    with Image.open(out.png) as png:
        assert png.size == (223, 149) and HINTS_KEY in png.info
    assert read_png_hints(out.png) == hints
    assert read_hints(out.hints_json) == hints
    assert json.loads(out.hints_json.read_text())[0]["color"] == "#1e3ce6"
    assert Image.open(out.gray).size == (223, 149)
    assert out.preview.size == (768, 513)
    assert out.state.result == str(out.png) and out.state.size == (223, 149)
    # uploading the colorized PNG restores its hints
    again, message = h.new_photo(str(out.png), "cat-colorized.png")
    assert list(again.hints) == hints
    assert message == "2 hints restored from cat-colorized.png: press Colorize."
    # and so does loading it, or the JSON, as a hints file
    fresh, _ = h.new_photo(str(photos["gray"]), "cat.png")
    assert list(h.load_hints(fresh, out.png).hints) == hints
    assert list(h.load_hints(fresh, out.hints_json).hints) == hints


@pytest.mark.slow
def test_hints_change_the_colorization_and_no_hints_is_automatic(
    hint_colorizer, photos, tmp_path
):
    state, _ = h.new_photo(str(photos["gray"]), "cat.png")
    auto = _render(hint_colorizer, state, tmp_path)
    hinted = _render(
        hint_colorizer, h.add_hint(replace(state, point=(100, 50)), BLUE), tmp_path
    )

    with Image.open(auto.png) as a, Image.open(hinted.png) as b:
        auto_rgb, hinted_rgb = np.asarray(a).astype(int), np.asarray(b).astype(int)
        assert HINTS_KEY in a.info and read_png_hints(auto.png) == []
    assert np.abs(auto_rgb - hinted_rgb).max() > 0
    expected = np.asarray(hint_colorizer.colorize(photos["gray"], SIZE)).astype(int)
    assert np.abs(auto_rgb - expected).max() <= 1


def test_remove_undo_and_clear(photos):
    state, _ = h.new_photo(str(photos["gray"]), "cat.png")
    for i, colour in enumerate(["#ff0000", "#00ff00", "#0000ff"]):
        state = h.add_hint(replace(state, point=(10 * i, 5)), colour)
    assert [x for x, _y, _c in state.hints] == [0, 10, 20]
    assert [label for label, _v in h.hint_choices(state.hints)][1] == (
        "2: (10, 5) #00ff00"
    )

    removed = h.remove_hint(state, "1")
    assert [x for x, _y, _c in removed.hints] == [0, 20]
    assert h.undo(removed).hints == state.hints
    cleared = h.clear_hints(state)
    assert cleared.hints == ()
    assert h.undo(cleared).hints == state.hints
    assert h.undo(h.undo(h.undo(state))).hints == ()
    with pytest.raises(gr.Error, match="Nothing to undo"):
        h.undo(h.HintState())
    with pytest.raises(gr.Error, match="no hints to clear"):
        h.clear_hints(cleared)
    with pytest.raises(gr.Error, match="no hint 4"):
        h.remove_hint(state, 3)
    with pytest.raises(gr.Error, match="Choose a hint"):
        h.remove_hint(state, None)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("nope", "mine.json: not a JSON hints file"),
        ('[{"x": 1, "y": 2, "color": "blue"}]', "mine.json: hint 1: colour must be"),
        (
            '[{"x": 1, "y": 2, "color": "#0000ff"}, {"x": 223, "y": 2, "color": '
            '"#0000ff"}]',
            "mine.json: hint 2 at (223, 2) is outside the 223x149 photo",
        ),
    ],
)
def test_bad_hints_files_are_refused_in_one_line(photos, tmp_path, content, words):
    state, _ = h.new_photo(str(photos["gray"]), "cat.png")
    path = tmp_path / "upload-1234.json"
    path.write_text(content)

    with pytest.raises(gr.Error) as info:
        h.load_hints(state, path, "mine.json")

    assert words in info.value.message and "\n" not in info.value.message
    assert str(tmp_path) not in info.value.message  # no server folders shown


def test_bad_hints_in_an_uploaded_png_leave_the_photo_usable(photos, tmp_path):
    rgb = np.asarray(Image.open(photos["color"]))
    png = tmp_path / "coffee-colorized.png"
    png.write_bytes(add_png_hints(encode_png(rgb), [(500, 5, BLUE)]))

    state, message = h.new_photo(str(png), "coffee-colorized.png")

    assert state.hints == () and state.photo == str(png)
    assert message == (
        "Hints not restored: coffee-colorized.png: hint 1 at (500, 5) is outside "
        "the 200x134 photo"
    )


@pytest.mark.slow
def test_clicks_map_from_the_preview_to_the_photo(hint_colorizer, photos, tmp_path):
    big = tmp_path / "big.png"
    Image.open(photos["gray"]).resize((1152, 768)).save(big)
    state, _ = h.new_photo(str(big), "big.png")
    out = _render(hint_colorizer, state, tmp_path)

    assert out.preview.size == (768, 512) and out.state.scale == 1.5
    assert h.click_point(out.state, 100, 40) == (150, 60)
    assert h.click_point(out.state, 767, 511) == (1151, 767)
    found, state = h.suggest_at(hint_colorizer, out.state, 100, 40, size=SIZE, **LIMITS)
    assert state.point == (150, 60) and len(found) == h.SUGGESTIONS
    assert [c for c, _p in found] == list(state.suggested)
    shares = [p for _c, p in found]
    assert shares == sorted(shares, reverse=True)
    items = h.swatches(found)
    assert items[0][0].getpixel((0, 0)) == found[0][0]
    assert items[0][1] in (f"{100 * shares[0]:.0f} %", f"{100 * shares[0]:.1f} %")
    with pytest.raises(gr.Error, match="Colorize the photo first"):
        h.click_point(h.HintState(photo=str(big)), 1, 1)


def test_a_hint_is_marked_on_the_preview(photos):
    grey = Image.open(photos["gray"]).convert("RGB")  # 223 x 149
    shown, scale = h.preview(grey, [(100, 50, BLUE)], (10, 10))

    assert shown.size == (768, 513) and scale == pytest.approx(223 / 768)
    cx, cy = (100.5 / scale, 50.5 / scale)
    assert shown.getpixel((round(cx), round(cy))) == BLUE
    r = h._marker_radius(768) + 2
    disc = np.asarray(shown)[
        round(cy) - r : round(cy) + r, round(cx) - r : round(cx) + r
    ]
    colours = {tuple(p) for p in disc.reshape(-1, 3)}
    assert {BLUE, (255, 255, 255), (0, 0, 0)} <= colours  # in a white and black ring
    # the clicked point without a hint is a ring: its middle shows the photo
    mx, my = round(10.5 / scale), round(10.5 / scale)
    assert shown.getpixel((mx, my)) == grey.resize(shown.size).getpixel((mx, my))
    ring = np.asarray(shown)[my - r : my + r, mx - r : mx + r].reshape(-1, 3)
    assert (ring == 0).all(axis=1).any()


def test_models_without_hint_inputs_turn_hints_off(random_colorizer, photos, tmp_path):
    assert h.hints_reason(random_colorizer).startswith(
        "Hints are off: model 'default-v1' colours on its own"
    )
    state, _ = h.new_photo(str(photos["gray"]), "cat.png")
    out = _render(random_colorizer, state, tmp_path)  # no hints: still colorizes
    assert out.png.is_file()
    with pytest.raises(gr.Error, match="Hints are off"):
        h.suggest_at(random_colorizer, out.state, 5, 5, size=SIZE, **LIMITS)
    with pytest.raises(gr.Error, match="Hints are off"):
        _render(
            random_colorizer, h.add_hint(replace(state, point=(1, 1)), BLUE), tmp_path
        )


def test_adding_needs_a_point_and_a_colour(photos):
    state, _ = h.new_photo(str(photos["gray"]), "cat.png")
    with pytest.raises(gr.Error, match="Click a point"):
        h.add_hint(state, "#000000")
    with pytest.raises(gr.Error, match="Choose a colour"):
        h.add_hint(replace(state, point=(1, 1)), "blue")
    with pytest.raises(gr.Error, match="Upload a photo first"):
        h.load_hints(h.HintState(), photos["gray"])


@pytest.mark.slow
def test_a_trained_hint_turns_a_white_region_blue(trained_hint_colorizer, tmp_path):
    """The white cup of scikit-image's coffee photo, hinted blue."""
    import skimage.data

    rgb = skimage.data.coffee()[::2, ::2]  # 300 x 200
    grey = np.round(rgb_to_lab(rgb)[..., 0] / 100 * 255).astype(np.uint8)
    path = tmp_path / "coffee.png"
    Image.fromarray(grey, mode="L").save(path)
    x, y = 193, 49  # in the white of the cup
    state, _ = h.new_photo(str(path), "coffee.png")
    state = h.add_hint(replace(state, point=(x, y)), BLUE)

    out = _render(trained_hint_colorizer, state, tmp_path, size=256)

    with Image.open(out.png) as png:
        lab = rgb_to_lab(np.asarray(png.convert("RGB"))[y - 7 : y + 8, x - 7 : x + 8])
    target = rgb_to_lab(np.array(BLUE, np.uint8))
    hue = np.degrees(np.arctan2(lab[..., 2].mean(), lab[..., 1].mean()))
    want = np.degrees(np.arctan2(target[2], target[1]))
    chroma = np.hypot(lab[..., 1].mean(), lab[..., 2].mean())
    print(f"hue {hue:.0f} (hint {want:.0f}), chroma {chroma:.1f}")
    assert abs((hue - want + 180) % 360 - 180) < 20 and chroma > 10


def test_hints_are_in_pixels_of_the_photo_as_displayed(tmp_path):
    """A JPEG stored 40 x 30 with EXIF orientation 6 (rotate 90) shows 30 x 40."""
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:, :20] = 200
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    Image.fromarray(rgb).save(path, exif=exif)

    state, _ = h.new_photo(str(path), "turned.jpg")

    assert state.size == (30, 40)
    fine = tmp_path / "fine.json"
    fine.write_text('[{"x": 29, "y": 39, "color": "#0000ff"}]')
    assert h.load_hints(state, fine).hints == ((29, 39, (0, 0, 255)),)
    wide = tmp_path / "wide.json"
    wide.write_text('[{"x": 35, "y": 5, "color": "#0000ff"}]')
    with pytest.raises(gr.Error, match=r"hint 1 at \(35, 5\) is outside the 30x40"):
        h.load_hints(state, wide)

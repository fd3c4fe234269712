"""Hints files: JSON parsing, one-line errors, and the hints chunk of a colorized PNG.

None of these need a trained model (nor TensorFlow): `core.hintfile` reads files.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from core.hintfile import (
    HINTS_KEY,
    HintFileError,
    add_png_hints,
    check_points,
    hints_to_json,
    read_hints,
    read_png_hints,
    sidecar_path,
)
from core.imageio import encode_png

HINTS = [(120, 45, (32, 80, 224)), (0, 0, (255, 255, 255)), (7, 9, (160, 192, 64))]


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_json_round_trip_keeps_every_hint(tmp_path):
    path = tmp_path / "photo.hints.json"
    path.write_text(hints_to_json(HINTS))

    assert read_hints(path) == HINTS
    assert json.loads(path.read_text())[0] == {"x": 120, "y": 45, "color": "#2050e0"}
    path.write_text(hints_to_json([]))
    assert read_hints(path) == []


def test_upper_case_colours_and_a_byte_order_mark_are_read(tmp_path):
    path = tmp_path / "h.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'[{"x": 1, "y": 2, "color": "#FF8000"}]')

    assert read_hints(path) == [(1, 2, (255, 128, 0))]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json at all", "h.json: not a JSON hints file"),
        ('{"x": 1, "y": 2, "color": "#000000"}', "h.json: expected a list of hints"),
        ('[{"x": 1, "y": 2, "color": "#000000"}, 5]', "h.json: hint 2: expected {"),
        ('[{"x": 1, "color": "#000000"}]', "h.json: hint 1: missing 'y'"),
        ('[{"x": 1, "y": 2, "colour": "#000"}]', "missing 'color', unknown 'colour'"),
        ('[{"x": 1.5, "y": 2, "color": "#000000"}]', "hint 1: x and y must be whole"),
        ('[{"x": -1, "y": 2, "color": "#000000"}]', "hint 1: x and y must be whole"),
        ('[{"x": true, "y": 2, "color": "#000000"}]', "hint 1: x and y must be whole"),
        ('[{"x": 1, "y": 2, "color": "blue"}]', "hint 1: colour must be '#rrggbb'"),
        ('[{"x": 1, "y": 2, "color": [0, 0, 255]}]', "hint 1: colour must be"),
    ],
)
def test_bad_hints_files_give_one_line_naming_file_and_hint(tmp_path, content, words):
    path = tmp_path / "h.json"
    path.write_text(content)

    with pytest.raises(HintFileError) as info:
        read_hints(path)

    message = str(info.value)
    assert words in message
    assert message.startswith(str(path))
    assert "\n" not in message


def test_a_missing_file_and_a_chosen_source_name(tmp_path):
    with pytest.raises(HintFileError, match="nope.json: cannot read"):
        read_hints(tmp_path / "nope.json")
    bad = tmp_path / "upload-123.json"
    bad.write_text("[1]")
    with pytest.raises(HintFileError, match=r"^mine\.json: hint 1"):
        read_hints(bad, source="mine.json")


def test_points_outside_the_photo_are_named():
    check_points(HINTS, 121, 46, "h.json")
    with pytest.raises(
        HintFileError, match=r"^h.json: hint 1 at \(120, 45\) is outside the 120x46"
    ):
        check_points(HINTS, 120, 46, "h.json")


def test_png_chunk_round_trip_keeps_pixels_and_hints(tmp_path):
    rgb = skimage.data.astronaut()[::8, ::8]
    png = tmp_path / "colorized.png"
    png.write_bytes(add_png_hints(encode_png(rgb), HINTS))

    with Image.open(png) as image:
        assert np.array_equal(np.asarray(image), rgb)  # the pixels are untouched
        assert HINTS_KEY in image.info
    assert read_png_hints(png) == HINTS
    assert read_hints(png) == HINTS  # read_hints takes the PNG itself too


def test_a_png_without_hints_is_none_or_an_error(tmp_path):
    plain = tmp_path / "plain.png"
    plain.write_bytes(encode_png(np.zeros((4, 4), np.uint8)))
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (4, 4)).save(jpeg)

    assert read_png_hints(plain) is None
    assert read_png_hints(jpeg) is None
    with pytest.raises(HintFileError, match="plain.png: this PNG carries no hints"):
        read_hints(plain)
    with pytest.raises(ValueError, match="bytes of a PNG"):
        add_png_hints(b"GIF89a", HINTS)


def test_a_bad_chunk_is_a_one_line_error(tmp_path):
    png = tmp_path / "bad.png"
    Image.new("L", (4, 4)).save(png, pnginfo=_info(HINTS_KEY, "[{"))
    with pytest.raises(HintFileError, match="bad.png: its colorize:hints chunk"):
        read_png_hints(png)
    Image.new("L", (4, 4)).save(png, pnginfo=_info(HINTS_KEY, '[{"x": 1}]'))
    with pytest.raises(HintFileError, match="bad.png: hint 1: missing"):
        read_png_hints(png)


def _info(key: str, text: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(key, text)
    return info


def test_sidecar_is_the_stem_with_hints_json():
    assert sidecar_path(Path("scans/photo.jpg")) == Path("scans/photo.hints.json")
    assert sidecar_path("a.b.tif") == Path("a.b.hints.json")

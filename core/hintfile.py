"""Hints files: user colour hints as JSON, and inside a colorized PNG.

    [{"x": 120, "y": 45, "color": "#2050e0"}, {"x": 10, "y": 300, "color": "#a0c040"}]

x and y are pixels of the photo as displayed (after EXIF orientation), 0 <= x < width,
0 <= y < height; the colour is 8-bit sRGB as `#rrggbb` (of which a hint model uses only
the chroma: the photo's own lightness is kept). The same list is stored in a PNG text
chunk with the key `colorize:hints`, so a colorized PNG carries the hints it was made
with. `read_hints` reads either kind of file; the command line (`core.colorize`) and the
web app (`demo`) share it. Importing this module loads neither TensorFlow nor Keras.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = [
    "HINTS_KEY",
    "SIDECAR_SUFFIX",
    "Hint",
    "HintFileError",
    "add_png_hints",
    "check_points",
    "color_to_hex",
    "hex_to_color",
    "hints_from_json",
    "hints_to_json",
    "read_hints",
    "read_png_hints",
    "sidecar_path",
]

HINTS_KEY = "colorize:hints"  # PNG tEXt keyword (Latin-1, 1-79 bytes)
SIDECAR_SUFFIX = ".hints.json"  # `photo.jpg` -> `photo.hints.json`
MAX_HINTS = 1000  # more than anyone clicks; bounds the work a file can ask for
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_FIELDS = {"x", "y", "color"}

# (x, y, (r, g, b)): the same tuple as `core.colorizer.Hint`, repeated here so that
# reading a hints file does not import TensorFlow
Hint = tuple[int, int, tuple[int, int, int]]


class HintFileError(ValueError):
    """A hints file that cannot be used; the one-line message names the file and,
    where one is at fault, the hint (counted from 1)."""


def hex_to_color(text: str) -> tuple[int, int, int]:
    """`#rrggbb` (either case) as 8-bit (r, g, b); ValueError otherwise."""
    if not isinstance(text, str) or not _HEX.match(text):
        raise ValueError(f"colour must be '#rrggbb', got {text!r}")
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def color_to_hex(color: Sequence[int]) -> str:
    """8-bit (r, g, b) as lower-case `#rrggbb`."""
    r, g, b = (int(c) for c in color)
    return f"#{r:02x}{g:02x}{b:02x}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def hints_from_json(data: Any, source: str) -> list[Hint]:
    """Hints from parsed JSON: a list of {"x": int, "y": int, "color": "#rrggbb"}.

    source: the file's name, for messages. Points are not checked against a photo
    here (see `check_points`), only that they are integers >= 0.
    Raises HintFileError with a one-line message naming `source` and the hint.
    """
    if not isinstance(data, list):
        raise HintFileError(
            f"{source}: expected a list of hints "
            '[{"x": int, "y": int, "color": "#rrggbb"}, ...], '
            f"got a JSON {type(data).__name__}"
        )
    if len(data) > MAX_HINTS:
        raise HintFileError(
            f"{source}: {len(data)} hints is more than {MAX_HINTS} in one file"
        )
    hints = []
    for i, entry in enumerate(data, start=1):
        where = f"{source}: hint {i}"
        if not isinstance(entry, dict):
            raise HintFileError(
                f'{where}: expected {{"x": int, "y": int, "color": "#rrggbb"}}, '
                f"got {json.dumps(entry)[:60]}"
            )
        missing = sorted(_FIELDS - entry.keys())
        extra = sorted(entry.keys() - _FIELDS)
        if missing or extra:
            problem = ", ".join(
                [f"missing {k!r}" for k in missing] + [f"unknown {k!r}" for k in extra]
            )
            raise HintFileError(f"{where}: {problem} (fields are x, y, color)")
        x, y = entry["x"], entry["y"]
        if not (_is_int(x) and _is_int(y)) or x < 0 or y < 0:
            raise HintFileError(
                f"{where}: x and y must be whole pixels >= 0, got x={json.dumps(x)}, "
                f"y={json.dumps(y)}"
            )
        try:
            color = hex_to_color(entry["color"])
        except ValueError as err:
            raise HintFileError(f"{where}: {err}") from None
        hints.append((x, y, color))
    return hints


def hints_to_json(hints: Sequence[Hint]) -> str:
    """Hints as the JSON text `read_hints` reads (one hint per line)."""
    rows = [
        json.dumps({"x": int(x), "y": int(y), "color": color_to_hex(c)})
        for x, y, c in hints
    ]
    return "[\n" + ",\n".join(f"  {row}" for row in rows) + "\n]\n" if rows else "[]\n"


def check_points(hints: Sequence[Hint], width: int, height: int, source: str) -> None:
    """Raise HintFileError for the first hint outside a width x height photo."""
    for i, (x, y, _c) in enumerate(hints, start=1):
        if not (0 <= x < width and 0 <= y < height):
            raise HintFileError(
                f"{source}: hint {i} at ({x}, {y}) is outside the "
                f"{width}x{height} photo"
            )


def read_png_hints(path: str | Path, source: str | None = None) -> list[Hint] | None:
    """The hints stored in a PNG's `colorize:hints` text chunk, or None without one.

    source: the name used in messages (default: the path). Raises HintFileError for
    a chunk that is not a valid hints list, or a file that is not a readable PNG.
    """
    source = source or str(path)
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                return None
            text = image.text.get(HINTS_KEY)  # reads chunks after IDAT too
    except (OSError, SyntaxError, ValueError) as err:
        raise HintFileError(f"{source}: cannot read the PNG ({err})") from None
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise HintFileError(
            f"{source}: its {HINTS_KEY} chunk is not JSON ({err})"
        ) from None
    return hints_from_json(data, source)


def read_hints(path: str | Path, source: str | None = None) -> list[Hint]:
    """Hints from a JSON hints file, or from a PNG that carries them.

    source: the name used in messages (default: the path); the web app passes the
    uploaded file's own name. A PNG without a hints chunk gives HintFileError too.
    Raises HintFileError with a one-line message naming the file and the hint.
    """
    path = Path(path)
    source = source or str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise HintFileError(f"{source}: cannot read ({err.strerror or err})") from None
    if raw.startswith(_PNG_MAGIC):
        hints = read_png_hints(path, source)
        if hints is None:
            raise HintFileError(
                f"{source}: this PNG carries no hints (no {HINTS_KEY} text chunk)"
            )
        return hints
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = str(err).split("\n")[0]
        raise HintFileError(f"{source}: not a JSON hints file ({reason})") from None
    return hints_from_json(data, source)


def add_png_hints(png: bytes, hints: Sequence[Hint]) -> bytes:
    """PNG file bytes with a `colorize:hints` tEXt chunk (the JSON) after IHDR.

    png: a PNG file's bytes (e.g. `core.imageio.encode_png`); the pixels are not
    touched. An earlier hints chunk is not removed, so pass a PNG without one.
    """
    if not png.startswith(_PNG_MAGIC) or png[12:16] != b"IHDR":
        raise ValueError("add_png_hints takes the bytes of a PNG file")
    text = json.dumps(
        [{"x": int(x), "y": int(y), "color": color_to_hex(c)} for x, y, c in hints],
        separators=(",", ":"),
    )
    body = HINTS_KEY.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = (
        struct.pack(">I", len(body))
        + b"tEXt"
        + body
        + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    )
    ihdr_end = 8 + 4 + 4 + 13 + 4  # magic, length, type, IHDR data, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def sidecar_path(photo: str | Path) -> Path:
    """The hints file the command line uses for a photo: `<stem>.hints.json` beside
    it (`scans/photo.jpg` -> `scans/photo.hints.json`)."""
    photo = Path(photo)
    return photo.with_name(photo.stem + SIDECAR_SUFFIX)

"""Colour hints on the "Colorize a photo" tab: the state and the handlers.

A person clicks a point of the colorized photo, the model suggests the colours it finds
likely there (`Colorizer.suggest`), and the chosen one becomes a hint: the photo is
colorized again with every hint (`Colorizer.colorize(..., hints=...)`). The handlers
are plain functions on an immutable `HintState` (kept per browser session in a
`gr.State`), tested without a browser; they raise `gr.Error` with one-line messages.
`demo.hint_ui` lays out the components and wires these handlers to them.

Coordinates: hints are in pixels of the photo as displayed (after EXIF orientation),
as in `core.hintfile`. The clickable image is a preview at most PREVIEW_SIDE pixels on
its longer side; `HintState.scale` maps its pixels to the photo's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from core.atomic import atomic_write_bytes
from core.colorizer import Colorizer, Hint, HintError
from core.hintfile import (
    HintFileError,
    add_png_hints,
    check_points,
    color_to_hex,
    hex_to_color,
    hints_to_json,
    read_hints,
    read_png_hints,
)
from core.imageio import encode_png

# demo.app imports this module (through demo.hint_ui): its functions are looked up
# when called, by then it is complete
from demo import app as photo_app

__all__ = [
    "PREVIEW_SIDE",
    "SUGGESTIONS",
    "HintState",
    "Rendered",
    "add_hint",
    "clear_hints",
    "click_point",
    "hint_choices",
    "hints_reason",
    "load_hints",
    "new_photo",
    "preview",
    "remove_hint",
    "render",
    "result_preview",
    "suggest_at",
    "swatches",
    "undo",
]

PREVIEW_SIDE = 768  # longer side of the clickable image, in pixels (any photo)
SUGGESTIONS = 6  # colours suggested at a clicked point
SWATCH_SIDE = 48
MAX_HISTORY = 50  # undo steps kept


@dataclass(frozen=True)
class HintState:
    """One browser session's hints on one photo. Immutable: handlers return copies."""

    photo: str | None = None  # the upload's path on the server
    name: str = ""  # the upload's own file name, for messages
    size: tuple[int, int] | None = None  # the photo as displayed: (width, height)
    hints: tuple[Hint, ...] = ()
    history: tuple[tuple[Hint, ...], ...] = ()  # earlier hint lists, last is newest
    point: tuple[int, int] | None = None  # the last clicked pixel of the photo
    suggested: tuple[tuple[int, int, int], ...] = ()  # colours offered at `point`
    scale: float = 1.0  # photo pixels per pixel of the clickable preview
    result: str | None = None  # the PNG of the latest colorization


@dataclass(frozen=True)
class Rendered:
    """A colorization with hints, for the page."""

    gray: Path  # the lightness as a grey PNG, full size
    png: Path  # the colorization, full size, with a colorize:hints text chunk
    hints_json: Path  # the hints alone, as a JSON hints file
    preview: Image.Image  # the clickable image: the colorization, hints marked
    state: HintState  # with `scale`, `size` and `result` set


def hints_reason(colorizer: Colorizer) -> str:
    """Empty for a model with hint inputs, else one line saying why hints are off."""
    if colorizer.takes_hints:
        return ""
    return (
        f"Hints are off: model {colorizer.name!r} colours on its own; choose a model "
        "with hint inputs (default) to guide the colours."
    )


def _displayed_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) of an image file after EXIF orientation, None if unreadable."""
    try:
        with Image.open(path) as image:
            w, h = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError):
        return None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def new_photo(path: str | None, name: str = "") -> tuple[HintState, str]:
    """A fresh state for a new upload, with the hints a colorized PNG carries.

    Returns (state, a one-line message for the page: empty, or what was restored).
    A PNG whose hints chunk is unusable is still a photo: the message says so.
    """
    if not path:
        return HintState(), ""
    name = name or Path(path).name
    state = HintState(photo=str(path), name=name, size=_displayed_size(path))
    try:
        hints = read_png_hints(path, source=name)
    except HintFileError as err:
        return state, f"Hints not restored: {err}"
    if not hints:
        return state, ""
    if state.size is not None:
        try:
            check_points(hints, *state.size, source=name)
        except HintFileError as err:
            return state, f"Hints not restored: {err}"
    n = len(hints)
    return (
        replace(state, hints=tuple(hints)),
        f"{n} hint{'s' * (n != 1)} restored from {name}: press Colorize.",
    )


def load_hints(state: HintState, path: str | Path, name: str = "") -> HintState:
    """Replace the hints with those of a JSON hints file or a colorized PNG.

    The replaced hints can be brought back with `undo`. Raises gr.Error with one
    line naming the file and the hint (not JSON, wrong fields, outside the photo).
    """
    if state.photo is None:
        raise gr.Error("Upload a photo first, then load its hints.")
    name = name or Path(path).name
    try:
        hints = read_hints(path, source=name)
        if state.size is not None:
            check_points(hints, *state.size, source=name)
    except HintFileError as err:
        raise gr.Error(str(err)) from None
    return _with_hints(state, tuple(hints))


def _with_hints(state: HintState, hints: tuple[Hint, ...]) -> HintState:
    history = (*state.history, state.hints)[-MAX_HISTORY:]
    return replace(state, hints=hints, history=history, point=None, suggested=())


def click_point(state: HintState, x: int, y: int) -> tuple[int, int]:
    """The photo pixel under pixel (x, y) of the clickable preview."""
    if state.size is None:
        raise gr.Error("Colorize the photo first, then click it.")
    w, h = state.size
    px = min(max(int((x + 0.5) * state.scale), 0), w - 1)
    py = min(max(int((y + 0.5) * state.scale), 0), h - 1)
    return px, py


def suggest_at(
    colorizer: Colorizer,
    state: HintState,
    x: int,
    y: int,
    *,
    size: int,
    max_pixels: int,
    max_bytes: int,
) -> tuple[list[tuple[tuple[int, int, int], float]], HintState]:
    """The model's SUGGESTIONS most likely colours at preview pixel (x, y).

    Returns ([((r, g, b), probability), ...] most likely first, the state with the
    point and the colours). The distribution is the one given the current hints.
    """
    _check_takes_hints(colorizer)
    point = click_point(state, x, y)
    rgb, alpha = _read(state, max_pixels=max_pixels, max_bytes=max_bytes)
    try:
        found = colorizer.suggest(
            photo_app._model_input(rgb, alpha),
            *point,
            k=SUGGESTIONS,
            hints=list(state.hints) or None,
            size=size,
        )
    except (HintError, ValueError) as err:
        raise gr.Error(str(err)) from None
    colours = tuple(c for c, _p in found)
    return found, replace(state, point=point, suggested=colours)


def add_hint(state: HintState, color: str | Sequence[int]) -> HintState:
    """The state with a hint of `color` (`#rrggbb` or (r, g, b)) at the clicked
    point."""
    if state.point is None:
        raise gr.Error("Click a point of the colorized photo first.")
    if isinstance(color, str):
        try:
            rgb = hex_to_color(color.strip())
        except ValueError as err:
            raise gr.Error(f"Choose a colour: {err}") from None
    else:
        rgb = tuple(int(c) for c in color)
    point = state.point
    state = _with_hints(state, (*state.hints, (point[0], point[1], rgb)))
    return replace(state, point=point)  # the marker stays where the person clicked


def remove_hint(state: HintState, index: int | str | None) -> HintState:
    """The state without hint `index` (0-based; the list's value)."""
    if index is None or index == "":
        raise gr.Error("Choose a hint in the list to remove.")
    i = int(index)
    if not 0 <= i < len(state.hints):
        raise gr.Error(f"There is no hint {i + 1}; the list has {len(state.hints)}.")
    return _with_hints(state, state.hints[:i] + state.hints[i + 1 :])


def undo(state: HintState) -> HintState:
    """The state before the last change of the hints (add, remove, clear, load)."""
    if not state.history:
        raise gr.Error("Nothing to undo.")
    *rest, last = state.history
    return replace(state, hints=last, history=tuple(rest), point=None, suggested=())


def clear_hints(state: HintState) -> HintState:
    """The state without hints (undo brings them back)."""
    if not state.hints:
        raise gr.Error("There are no hints to clear.")
    return _with_hints(state, ())


def _check_takes_hints(colorizer: Colorizer) -> None:
    reason = hints_reason(colorizer)
    if reason:
        raise gr.Error(reason)


def _read(state: HintState, *, max_pixels: int, max_bytes: int):
    if state.photo is None:
        raise gr.Error("Upload a photo first, or pick one of the examples.")
    return photo_app.read_photo(state.photo, max_pixels=max_pixels, max_bytes=max_bytes)


def _marker_radius(side: int) -> int:
    return max(5, round(side / 90))


def preview(
    color: Image.Image,
    hints: Sequence[Hint],
    point: tuple[int, int] | None = None,
) -> tuple[Image.Image, float]:
    """The clickable image: `color` resized to PREVIEW_SIDE, each hint marked.

    Each hint is a disc of its colour in a black and a white ring; a clicked point
    without a hint yet is an empty ring. Returns (RGB image, photo pixels per
    preview pixel).
    """
    image = color.convert("RGB")
    w, h = image.size
    scale = max(w, h) / PREVIEW_SIDE
    if scale != 1.0:
        # small photos are enlarged too: the page never shows an image larger than
        # its pixels, and a bigger target is easier to click
        resample = Image.Resampling.BOX if scale > 1 else Image.Resampling.BILINEAR
        image = image.resize(
            (max(1, round(w / scale)), max(1, round(h / scale))), resample
        )
    draw = ImageDraw.Draw(image)
    r = _marker_radius(max(image.size))

    def at(x: int, y: int) -> tuple[float, float]:
        return (x + 0.5) / scale, (y + 0.5) / scale

    hinted = set()
    for x, y, rgb in hints:
        cx, cy = at(x, y)
        hinted.add((x, y))
        draw.ellipse((cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2), fill="black")
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill="white")
        draw.ellipse((cx - r + 2, cy - r + 2, cx + r - 2, cy + r - 2), fill=rgb)
    if point is not None and point not in hinted:
        cx, cy = at(*point)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline="black", width=3)
        draw.ellipse((cx - r + 2, cy - r + 2, cx + r - 2, cy + r - 2), outline="white")
    return image, scale


def render(
    colorizer: Colorizer,
    state: HintState,
    *,
    size: int,
    saturation: float,
    temperature: float,
    max_pixels: int,
    max_bytes: int,
    out_dir: Path,
) -> Rendered:
    """Colorize the photo with the state's hints, at full resolution.

    Writes `<stem>-colorized.png` (with the hints in its `colorize:hints` chunk),
    `<stem>.hints.json` and the grey `<stem>-grey.png` into out_dir. No hints
    colorizes automatically. Raises gr.Error for an unusable photo, a model without
    hint inputs given hints, or a hint outside the photo.
    """
    if state.hints:
        _check_takes_hints(colorizer)
    rgb, alpha = _read(state, max_pixels=max_pixels, max_bytes=max_bytes)
    try:
        color = colorizer.colorize(
            photo_app._model_input(rgb, alpha),
            size,
            hints=list(state.hints),
            temperature=temperature,
            saturation=saturation,
        )
    except HintError as err:
        raise gr.Error(f"{state.name}: {err}") from None
    stem = Path(state.name or "photo").stem
    png = out_dir / f"{stem}-colorized.png"
    atomic_write_bytes(png, add_png_hints(encode_png(color), state.hints))
    hints_json = out_dir / f"{stem}.hints.json"
    atomic_write_bytes(hints_json, hints_to_json(state.hints).encode())
    shown, scale = preview(color, state.hints, state.point)
    h, w = rgb.shape[:2]
    state = replace(state, size=(w, h), scale=scale, result=str(png))
    # written with the parallel encoder: Pillow takes seconds for a 40 MP photo
    gray = out_dir / f"{stem}-grey.png"
    small_rgb, small_alpha = photo_app.display_pixels(rgb, alpha)
    atomic_write_bytes(gray, encode_png(photo_app._gray_image(small_rgb, small_alpha)))
    return Rendered(gray, png, hints_json, shown, state)


def hint_choices(hints: Sequence[Hint]) -> list[tuple[str, str]]:
    """(label, value) pairs for the list of hints: value is the 0-based index."""
    return [
        (f"{i + 1}: ({x}, {y}) {color_to_hex(c)}", str(i))
        for i, (x, y, c) in enumerate(hints)
    ]


def swatches(
    found: Sequence[tuple[tuple[int, int, int], float]],
) -> list[tuple[Image.Image, str]]:
    """Gallery items for suggested colours: a square of each, captioned with its
    share of the model's probability (the picker then shows the chosen colour)."""
    return [
        (
            Image.new("RGB", (SWATCH_SIDE, SWATCH_SIDE), tuple(rgb)),
            f"{100 * p:.1f} %" if p < 0.1 else f"{100 * p:.0f} %",
        )
        for rgb, p in found
    ]


def result_preview(
    state: HintState, png: str | Path | None
) -> tuple[Image.Image, HintState]:
    """The clickable image for a colorization made without hints (the Colorize
    button's PNG), and the state with its scale, size and result."""
    if png is None:
        raise gr.Error("Colorize the photo first.")
    with Image.open(png) as image:
        color = image.convert("RGB")
    shown, scale = preview(color, state.hints, state.point)
    return shown, replace(state, size=color.size, scale=scale, result=str(png))

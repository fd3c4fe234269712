"""The hint controls of the "Colorize a photo" tab: components and their wiring.

`hint_panel(colorizers)` adds the components where it is called (inside the layout);
`wire_hints(panel, ...)` connects them to the tab's photo, settings, result slider and
download button, and to the Colorize button's event. The handlers are in `demo.hints`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from core.colorizer import Colorizer
from core.hintfile import color_to_hex
from demo import hints as h

__all__ = ["HintPanel", "hint_panel", "wire_hints"]

CSS = """
#hint-image img { cursor: crosshair; }
#hint-swatches .caption-label { font-size: 0.8rem; }
#hint-swatches .grid-container {
    grid-template-columns: repeat(3, minmax(0, 1fr));
    grid-template-rows: none; grid-auto-rows: minmax(56px, auto);
    margin-top: 1.6rem;
}
#hint-reason p { color: var(--body-text-color-subdued); margin: 0; }
"""

HELP = (
    "Click a point of the colorized photo: the model suggests the colours it finds "
    "likely there, most likely first. Choose one, or pick your own and press *Use "
    "this colour*; the photo is colorized again with every hint. A hint sets the "
    "colour, not the brightness: the photo's own light and shade are kept."
)


@dataclass(frozen=True)
class HintPanel:
    """The components of the hint controls."""

    state: gr.State
    reason: gr.Markdown
    image: gr.Image
    swatches: gr.Gallery
    picker: gr.ColorPicker
    add: gr.Button
    hint_list: gr.Radio
    remove: gr.Button
    undo: gr.Button
    clear: gr.Button
    load: gr.UploadButton
    save: gr.DownloadButton
    status: gr.Markdown

    @property
    def controls(self) -> list[gr.components.Component]:
        """What is disabled for a model without hint inputs."""
        return [
            self.picker,
            self.add,
            self.hint_list,
            self.remove,
            self.undo,
            self.clear,
            self.load,
        ]


def hint_panel(colorizers: Mapping[str, Colorizer]) -> HintPanel:
    """Add the hint controls here, set up for the first model."""
    reason = h.hints_reason(next(iter(colorizers.values())))
    on = not reason
    with gr.Accordion("Guide the colours with hints", open=True):
        reason_md = gr.Markdown(reason, elem_id="hint-reason", visible=bool(reason))
        gr.Markdown(HELP)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=280):
                image = gr.Image(
                    label="Click to place a hint",
                    type="pil",
                    format="jpeg",  # a preview: encodes in a few ms, PNG takes ~10x
                    interactive=False,
                    buttons=[],
                    height=420,
                    elem_id="hint-image",
                )
            with gr.Column(scale=2, min_width=220):
                swatches = gr.Gallery(
                    label="Suggested here (choose one)",
                    format="png",
                    columns=3,
                    height="auto",
                    allow_preview=False,
                    object_fit="cover",
                    elem_id="hint-swatches",
                )
                picker = gr.ColorPicker(
                    "#3060e0",
                    label="Or pick a colour",
                    interactive=on,
                    elem_id="hint-picker",
                )
                add = gr.Button("Use this colour", interactive=on, elem_id="hint-add")
        hint_list = gr.Radio(
            [],
            label="Hints (choose one to remove it)",
            interactive=on,
            elem_id="hint-list",
        )
        with gr.Row():
            small = {"size": "sm", "interactive": on}
            remove = gr.Button("Remove", elem_id="hint-remove", **small)
            undo = gr.Button("Undo", elem_id="hint-undo", **small)
            clear = gr.Button("Clear all", elem_id="hint-clear", **small)
            load = gr.UploadButton(
                "Load hints (JSON or PNG)",
                file_types=[".json", ".png"],
                size="sm",
                interactive=on,
                elem_id="hint-load",
            )
            save = gr.DownloadButton(
                "Download hints (JSON)",
                size="sm",
                interactive=False,
                elem_id="hint-save",
            )
        status = gr.Markdown("", elem_id="hint-status")
    return HintPanel(
        state=gr.State(h.HintState()),
        reason=reason_md,
        image=image,
        swatches=swatches,
        picker=picker,
        add=add,
        hint_list=hint_list,
        remove=remove,
        undo=undo,
        clear=clear,
        load=load,
        save=save,
        status=status,
    )


def _count(hints: tuple) -> str:
    n = len(hints)
    return f"{n} hint{'s' * (n != 1)}"


def wire_hints(
    panel: HintPanel,
    *,
    colorizers: Mapping[str, Colorizer],
    photo: gr.Image,
    settings: Mapping[str, gr.components.Component],
    slider: gr.ImageSlider,
    download: gr.DownloadButton,
    colorized: Any,
    upload_path: Callable[[Any], str | None],
    result_dir: Callable[[], Path],
    limits: Mapping[str, int],
    concurrency_limit: int,
) -> None:
    """Connect the hint controls (call inside the Blocks, after `hint_panel`).

    colorized: the Colorize button's event (its success re-applies the hints).
    upload_path: the app's check of an unprocessed upload, giving its path.
    result_dir: a new folder for one request's files. limits: max_pixels, max_bytes.
    """
    inference = {
        "concurrency_id": "inference",
        "concurrency_limit": concurrency_limit,
        "api_visibility": "private",
    }
    quick = {"queue": False, "api_visibility": "private"}
    model, size = settings["model"], settings["size"]
    look = [settings["saturation"], settings["temperature"]]

    def pick(name: str) -> Colorizer:
        if name not in colorizers:
            raise gr.Error(f"Unknown model {name!r}.")
        return colorizers[name]

    page = [
        slider,
        download,
        panel.image,
        panel.state,
        panel.hint_list,
        panel.swatches,
        panel.save,
        panel.status,
    ]

    def refresh(state, name, size_, saturation, temperature, note=""):
        started = time.perf_counter()
        out = h.render(
            pick(name),
            state,
            size=int(size_),
            saturation=float(saturation),
            temperature=float(temperature),
            out_dir=result_dir(),
            **limits,
        )
        seconds = time.perf_counter() - started
        return (
            (str(out.gray), str(out.png)),
            gr.update(value=str(out.png), interactive=True),
            out.preview,
            out.state,
            gr.update(choices=h.hint_choices(out.state.hints), value=None),
            [],
            gr.update(value=str(out.hints_json), interactive=bool(out.state.hints)),
            note or f"{_count(out.state.hints)}; colorized in {seconds:.2f} s.",
        )

    def on_photo(payload):
        path = upload_path(payload)
        name = (payload.get("orig_name") or "") if isinstance(payload, dict) else ""
        state, message = h.new_photo(path, name)
        return (
            state,
            None,
            [],
            gr.update(choices=h.hint_choices(state.hints), value=None),
            gr.update(value=None, interactive=False),
            message,
        )

    def on_colorized(state, name, size_, saturation, temperature, png):
        colorizer = pick(name)
        if state.hints and colorizer.takes_hints:
            return refresh(state, name, size_, saturation, temperature)
        shown, state = h.result_preview(state, png)
        note = h.hints_reason(colorizer) if state.hints else ""
        if note:
            note = f"{_count(state.hints)} kept but not used. {note}"
        return (
            gr.skip(),
            gr.skip(),
            shown,
            state,
            gr.update(choices=h.hint_choices(state.hints), value=None),
            [],
            gr.skip(),
            note,
        )

    def on_click(state, name, size_, evt: gr.SelectData):
        x, y = evt.index[:2]
        found, state = h.suggest_at(
            pick(name), state, int(x), int(y), size=int(size_), **limits
        )
        with Image.open(state.result) as color:
            shown, _scale = h.preview(color, state.hints, state.point)
        best = color_to_hex(found[0][0])
        px, py = state.point
        return (
            h.swatches(found),
            best,
            state,
            shown,
            f"Suggestions at ({px}, {py}); choose one, or pick a colour.",
        )

    def on_swatch(state, name, size_, saturation, temperature, evt: gr.SelectData):
        i = evt.index if isinstance(evt.index, int) else evt.index[0]
        if not 0 <= i < len(state.suggested):
            raise gr.Error("Click a point of the photo first.")
        state = h.add_hint(state, state.suggested[i])
        return refresh(state, name, size_, saturation, temperature)

    def on_add(state, color, name, size_, saturation, temperature):
        state = h.add_hint(state, color)
        return refresh(state, name, size_, saturation, temperature)

    def on_remove(state, chosen, name, size_, saturation, temperature):
        state = h.remove_hint(state, chosen)
        return refresh(state, name, size_, saturation, temperature)

    def on_undo(state, name, size_, saturation, temperature):
        return refresh(h.undo(state), name, size_, saturation, temperature)

    def on_clear(state, name, size_, saturation, temperature):
        return refresh(h.clear_hints(state), name, size_, saturation, temperature)

    def on_load(state, file, name, size_, saturation, temperature):
        state = h.load_hints(state, file, Path(str(file)).name)
        note = f"{_count(state.hints)} loaded; press Colorize to use them."
        if state.result is not None:
            return refresh(state, name, size_, saturation, temperature)
        return (
            gr.skip(),
            gr.skip(),
            gr.skip(),
            state,
            gr.update(choices=h.hint_choices(state.hints), value=None),
            [],
            gr.skip(),
            note,
        )

    def on_model(name):
        reason = h.hints_reason(pick(name))
        return [gr.update(value=reason, visible=bool(reason))] + [
            gr.update(interactive=not reason) for _ in panel.controls
        ]

    render_inputs = [model, size, *look]
    photo.change(
        on_photo,
        inputs=photo,
        outputs=[
            panel.state,
            panel.image,
            panel.swatches,
            panel.hint_list,
            panel.save,
            panel.status,
        ],
        preprocess=False,
        **quick,
    )
    colorized.success(
        on_colorized,
        inputs=[panel.state, *render_inputs, download],
        outputs=page,
        **inference,
    )
    panel.image.select(
        on_click,
        inputs=[panel.state, model, size],
        outputs=[panel.swatches, panel.picker, panel.state, panel.image, panel.status],
        **inference,
    )
    panel.swatches.select(
        on_swatch, inputs=[panel.state, *render_inputs], outputs=page, **inference
    )
    panel.add.click(
        on_add,
        inputs=[panel.state, panel.picker, *render_inputs],
        outputs=page,
        **inference,
    )
    panel.remove.click(
        on_remove,
        inputs=[panel.state, panel.hint_list, *render_inputs],
        outputs=page,
        **inference,
    )
    for button, handler in ((panel.undo, on_undo), (panel.clear, on_clear)):
        button.click(
            handler, inputs=[panel.state, *render_inputs], outputs=page, **inference
        )
    panel.load.upload(
        on_load,
        inputs=[panel.state, panel.load, *render_inputs],
        outputs=page,
        **inference,
    )
    model.change(
        on_model, inputs=model, outputs=[panel.reason, *panel.controls], **quick
    )

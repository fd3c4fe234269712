"""The "Colorize a photo" tab: upload, slider, download, hints, scores, comparison."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from demo import app as photo_app
from demo.hint_ui import HintPanel, hint_panel, wire_hints
from demo.tabs.context import PageContext
from demo.tabs.settings import Settings, settings_panel, wire_settings


@dataclass(frozen=True)
class PhotoTab:
    """The components of the photo tab that its events read or write."""

    photo: gr.Image
    colorize_button: gr.Button
    compare_button: gr.Button
    settings: Settings
    slider: gr.ImageSlider
    download: gr.DownloadButton
    hints: HintPanel
    alternatives: gr.Gallery
    scores_box: gr.Group
    original: gr.Image
    scores: gr.Markdown
    comparison: gr.Gallery


def photo_tab(ctx: PageContext, examples: Sequence[tuple[str, str]]) -> PhotoTab:
    """Lay out the tab's components (call inside a `gr.Tab`); `wire_photo_tab` next.

    examples: (grey photo path, caption) pairs offered under the upload.
    """
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            photo = gr.Image(
                type="filepath",
                image_mode=None,
                sources=["upload", "clipboard"],
                label="Your photo",
                placeholder="Drop a photo here, or click to choose one",
                height=340,
                elem_id="photo-input",
            )
            with gr.Row():
                colorize_button = gr.Button(
                    "Colorize", variant="primary", elem_id="colorize-button"
                )
                compare_button = gr.Button(
                    "Compare all models",
                    visible=len(ctx.colorizers) > 1,
                    elem_id="compare-button",
                )
            gr.Examples(
                examples=[[path] for path, _ in examples],
                inputs=[photo],
                label="No photo at hand? Try one of these",
                examples_per_page=len(examples),
            )
            gr.Markdown(
                "Example photos from scikit-image: "
                + ", ".join(caption for _, caption in examples)
                + ".",
                elem_classes="credits",
            )
            with gr.Accordion("Settings", open=True):
                settings = settings_panel(ctx.colorizers, samples=True)
        with gr.Column(scale=3, min_width=400):
            slider = gr.ImageSlider(
                label="Grey input | Colorized (drag the handle)",
                type="filepath",
                format="png",
                interactive=False,
                buttons=["fullscreen"],
                max_height=620,
                elem_id="result-slider",
            )
            download = gr.DownloadButton(
                "Download full-resolution PNG",
                interactive=False,
                variant="primary",
                elem_id="download-button",
            )
            hints = hint_panel(ctx.colorizers)
            alternatives = gr.Gallery(
                label="Alternative colourings",
                format="png",
                columns=4,
                height="auto",
                visible=False,
            )
            with gr.Group(visible=False) as scores_box:
                with gr.Row():
                    original = gr.Image(
                        label="Your colour original",
                        format="png",
                        interactive=False,
                        scale=2,
                        height=260,
                    )
                    scores = gr.Markdown(
                        label="Scores", elem_id="scores", padding=True, scale=3
                    )
            comparison = gr.Gallery(
                label="All models on this photo",
                format="png",
                columns=3,
                height="auto",
                visible=False,
                elem_id="comparison",
            )
    return PhotoTab(
        photo=photo,
        colorize_button=colorize_button,
        compare_button=compare_button,
        settings=settings,
        slider=slider,
        download=download,
        hints=hints,
        alternatives=alternatives,
        scores_box=scores_box,
        original=original,
        scores=scores,
        comparison=comparison,
    )


def wire_photo_tab(tab: PhotoTab, ctx: PageContext) -> None:
    """Connect the tab's events: settings, a new photo, Colorize, Compare, hints.

    Colorize and Compare are the API's `colorize` and `compare`; both run in the
    page's shared inference queue.
    """
    settings = tab.settings

    @photo_app.releasing_memory
    def on_colorize(path, name, size, saturation, temperature, alternatives):
        deadline = ctx.deadline()
        upload = ctx.upload(path)
        colorizer = ctx.pick(name)
        out_dir = ctx.result_dir()
        result = photo_app.colorize_photo(
            colorizer,
            upload,
            size=int(size),
            saturation=float(saturation),
            temperature=float(temperature),
            alternatives=int(alternatives),
            out_dir=out_dir,
            deadline=deadline,
            **ctx.limits,
        )
        # the page gets display-size PNG files written here (fast, on all cores);
        # handing Gradio images would make it encode them again, at full size
        save_png = photo_app.save_png
        shown = result.png
        if result.preview is not result.color:
            shown = save_png(result.preview, out_dir / "preview.png")
        original = None
        if result.original is not None:
            original = save_png(result.original, out_dir / "original.png")
        samples = [
            str(save_png(image, out_dir / f"alternative-{i + 1}.png"))
            for i, image in enumerate(result.alternatives)
        ]
        return (
            (str(save_png(result.gray, out_dir / "grey.png")), str(shown)),
            gr.update(value=str(result.png), interactive=True),
            gr.update(value=samples, visible=bool(samples)),
            gr.update(visible=original is not None),
            None if original is None else str(original),
            photo_app.scores_markdown(result.scores)
            if result.scores is not None
            else "",
        )

    @photo_app.releasing_memory
    def on_compare(path, size, saturation, temperature):
        deadline = ctx.deadline()
        shown = photo_app.compare_models(
            ctx.colorizers,
            ctx.upload(path),
            size=int(size),
            saturation=float(saturation),
            temperature=float(temperature),
            deadline=deadline,
            **ctx.limits,
        )
        out_dir = ctx.result_dir()
        files = [
            (str(photo_app.save_png(image, out_dir / f"{i}.png")), caption)
            for i, (image, caption) in enumerate(shown)
        ]
        return gr.update(value=files, visible=True)

    def on_new_photo():
        return (
            None,
            gr.update(value=None, interactive=False),
            gr.update(value=[], visible=False),
            gr.update(visible=False),
            gr.update(value=[], visible=False),
        )

    wire_settings(settings, ctx.colorizers)
    tab.photo.change(
        on_new_photo,
        outputs=[
            tab.slider,
            tab.download,
            tab.alternatives,
            tab.scores_box,
            tab.comparison,
        ],
        api_visibility="private",
        queue=False,
    )
    colorized = tab.colorize_button.click(
        on_colorize,
        inputs=[
            tab.photo,
            settings["model"],
            settings["size"],
            settings["saturation"],
            settings["temperature"],
            settings["alternatives"],
        ],
        outputs=[
            tab.slider,
            tab.download,
            tab.alternatives,
            tab.scores_box,
            tab.original,
            tab.scores,
        ],
        api_name="colorize",
        **ctx.inference,
    )
    tab.compare_button.click(
        on_compare,
        inputs=[
            tab.photo,
            settings["size"],
            settings["saturation"],
            settings["temperature"],
        ],
        outputs=tab.comparison,
        api_name="compare",
        **ctx.inference,
    )
    wire_hints(
        tab.hints,
        colorizers=ctx.colorizers,
        photo=tab.photo,
        settings=settings,
        slider=tab.slider,
        download=tab.download,
        colorized=colorized,
        upload_path=lambda payload: photo_app.accepted(ctx.upload(payload)),
        result_dir=ctx.result_dir,
        limits=ctx.limits,
        concurrency_limit=ctx.concurrency_limit,
    )

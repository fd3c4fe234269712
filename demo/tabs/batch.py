"""The "Colorize many photos" tab: files in, a zip of full-size PNGs out."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from demo import app as photo_app
from demo.tabs.context import PageContext
from demo.tabs.settings import Settings, settings_panel, wire_settings


@dataclass(frozen=True)
class BatchTab:
    """The components of the batch tab that its events read or write."""

    files: gr.File
    settings: Settings
    button: gr.Button
    zip: gr.File
    report: gr.Markdown
    previews: gr.Gallery


def batch_tab(ctx: PageContext) -> BatchTab:
    """Lay out the tab's components (call inside a `gr.Tab`); `wire_batch_tab` next."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            files = gr.File(
                file_count="multiple",
                label=f"Photos (up to {photo_app.MAX_BATCH_FILES})",
                height=220,
            )
            with gr.Accordion("Settings", open=True):
                settings = settings_panel(ctx.colorizers, samples=False)
            button = gr.Button("Colorize all", variant="primary")
        with gr.Column(scale=3, min_width=400):
            zip_file = gr.File(label="Download all (zip of PNGs)")
            report = gr.Markdown(label="Report")
            previews = gr.Gallery(
                label="Results", format="png", columns=4, height="auto"
            )
    return BatchTab(files, settings, button, zip_file, report, previews)


def wire_batch_tab(tab: BatchTab, ctx: PageContext) -> None:
    """Connect the tab's events: settings, and Colorize all (the API's
    `colorize_many`, in the page's shared inference queue)."""
    settings = tab.settings

    @photo_app.releasing_memory
    def on_batch(
        paths,
        name,
        size,
        saturation,
        temperature,
        progress=gr.Progress(),  # noqa: B008 (Gradio passes progress through this default)
    ):
        deadline = ctx.deadline()
        uploads = [ctx.upload(p) for p in paths or []]
        result = photo_app.colorize_files(
            ctx.pick(name),
            uploads,
            size=int(size),
            saturation=float(saturation),
            temperature=float(temperature),
            out_dir=ctx.result_dir(),
            deadline=deadline,
            on_progress=lambda i, n: progress((i, n), desc="Colorizing", unit="photos"),
            **ctx.limits,
        )
        return str(result.zip), result.previews, result.report

    wire_settings(settings, ctx.colorizers)
    tab.button.click(
        on_batch,
        inputs=[
            tab.files,
            settings["model"],
            settings["size"],
            settings["saturation"],
            settings["temperature"],
        ],
        outputs=[tab.zip, tab.previews, tab.report],
        api_name="colorize_many",
        **ctx.inference,
    )

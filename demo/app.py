"""A minimal Gradio page: upload a photo, colorize it, see grey and colour side by side.

Handlers are plain functions (testable without a browser); the layout and the wiring
live in `build_demo`, which also loads the model once for all requests. Nothing runs at
import time, and nothing is fetched from the internet (analytics off, no share links).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402  (analytics must be off before gradio is imported)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.colorizer import Colorizer  # noqa: E402
from core.imageio import ImageLoadError  # noqa: E402

__all__ = ["build_demo", "colorize_upload"]

MAX_UPLOAD_PIXELS = 40_000_000


def colorize_upload(
    colorizer: Colorizer, image: Image.Image | None, size: int = 256
) -> tuple[Image.Image, Image.Image]:
    """Colorize an uploaded image; returns (grey input, colorized), both full size.

    Raises gr.Error with a one-line message for a missing or unusable image.
    """
    if image is None:
        raise gr.Error("Upload a photo first.")
    try:
        result = colorizer.colorize(image, size, max_pixels=MAX_UPLOAD_PIXELS)
    except (ImageLoadError, ValueError) as err:
        raise gr.Error(str(err)) from err
    gray = np.asarray(result.convert("L"))
    return Image.fromarray(gray).convert("RGB"), result


def build_demo(model: str = "default") -> gr.Blocks:
    """The demo page, with the model loaded once and shared between requests."""
    colorizer = Colorizer.load(model)

    def handler(image: Image.Image | None, size: int):
        return colorize_upload(colorizer, image, int(size))

    with gr.Blocks(title="Colorize black-and-white photos") as demo:
        gr.Markdown(
            "# Colorize black-and-white photos\n"
            "Upload a photo; the model predicts its colours, and the result keeps the "
            "photo's full resolution. Everything runs on this machine."
        )
        with gr.Row():
            upload = gr.Image(type="pil", label="Your photo", image_mode=None)
            with gr.Column():
                size = gr.Slider(128, 512, value=256, step=32, label="Render size")
                button = gr.Button("Colorize", variant="primary")
        with gr.Row():
            before = gr.Image(label="Grey input", format="png", interactive=False)
            after = gr.Image(label="Colorized", format="png", interactive=False)
        button.click(handler, inputs=[upload, size], outputs=[before, after])
    return demo

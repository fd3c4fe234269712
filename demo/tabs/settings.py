"""The model choice and its settings, a panel shared by the photo and batch tabs."""

from __future__ import annotations

from collections.abc import Mapping

import gradio as gr

from core.colorizer import Colorizer
from core.quantize import ANNEALED_T
from demo import app as photo_app

Settings = dict[str, gr.components.Component]  # "model", "size", ... -> its control


def model_info(colorizer: Colorizer) -> str:
    """One line about a model: its spec's description, else its name."""
    return colorizer.spec.description or colorizer.spec.name


def settings_panel(colorizers: Mapping[str, Colorizer], *, samples: bool) -> Settings:
    """The model choice and its settings; `samples`: offer a number of alternatives.

    Returns the controls by name: "model", "size", "saturation", "temperature" and,
    with `samples`, "alternatives" (shown for sampling models only).
    """
    first = next(iter(colorizers.values()))
    show_temperature, show_alternatives = photo_app.visible_controls(first.spec)
    controls: Settings = {
        "model": gr.Dropdown(
            choices=list(colorizers),
            value=first.name,
            label="Model",
            info=model_info(first),
            interactive=len(colorizers) > 1,
        ),
        "size": gr.Slider(
            photo_app.SIZE_MIN,
            photo_app.SIZE_MAX,
            value=first.spec.input_size,
            step=photo_app.SIZE_STEP,
            label="Render size",
            info="Longer side the model sees; the result keeps your photo's size.",
        ),
        "saturation": gr.Slider(
            0.0,
            2.0,
            value=1.0,
            step=0.05,
            label="Saturation",
            info="1 = as predicted.",
        ),
        "temperature": gr.Slider(
            0.0,
            1.0,
            value=ANNEALED_T,
            step=0.01,
            label="Temperature",
            info="Lower gives bolder colours, higher safer ones (0 = most likely bin).",
            visible=show_temperature,
        ),
    }
    if samples:
        controls["alternatives"] = gr.Slider(
            1,
            photo_app.MAX_ALTERNATIVES,
            value=4,
            step=1,
            label="Number of alternatives",
            info="This model draws a different colouring each time.",
            visible=show_alternatives,
        )
    return controls


def wire_settings(settings: Settings, colorizers: Mapping[str, Colorizer]) -> None:
    """A model change updates its description and shows the settings it takes."""
    outputs = [settings["model"], settings["temperature"]]
    if "alternatives" in settings:
        outputs.append(settings["alternatives"])

    def on_model(name: str) -> tuple[dict, ...]:
        colorizer = photo_app.pick_colorizer(colorizers, name)
        show_temperature, show_alternatives = photo_app.visible_controls(colorizer.spec)
        updates = (
            gr.update(info=model_info(colorizer)),
            gr.update(visible=show_temperature),
            gr.update(visible=show_alternatives),
        )
        return updates[: len(outputs)]

    settings["model"].change(
        on_model,
        inputs=settings["model"],
        outputs=outputs,
        api_visibility="private",
        queue=False,
    )

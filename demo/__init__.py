"""The Gradio demo: upload a photo, colorize it, compare before and after."""

from demo.app import build_demo, colorize_upload

__all__ = ["build_demo", "colorize_upload"]

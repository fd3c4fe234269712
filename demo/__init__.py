"""The colorization web page (Gradio): one photo, every model side by side, many photos.

`build_demo()` returns the page with its models loaded; `launch_options()` gives the
offline launch settings; `app.py` composes them (and, later, the survey's tab).
Importing `demo` is cheap: Gradio and TensorFlow load on first use of these names.
"""

from typing import TYPE_CHECKING, Any

from demo.limits import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_TIME_LIMIT_S,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TIME_LIMIT_S",
    "TabRenderer",
    "build_demo",
    "launch_options",
    "load_colorizers",
]

_LAZY = ("TabRenderer", "build_demo", "launch_options", "load_colorizers")

if TYPE_CHECKING:
    from demo.app import TabRenderer, build_demo, launch_options, load_colorizers


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from demo import app

        return getattr(app, name)
    raise AttributeError(f"module 'demo' has no attribute {name!r}")

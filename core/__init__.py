"""Colorization core: colour conversions, models, the Colorizer and shipped weights.

Importing `core` is cheap: `Colorizer` (which pulls in TensorFlow) is imported on first
use, and the only side effect is `core.quiet`'s hook, which keeps TensorFlow's start-up
notes off stderr when something imports it.
"""

from typing import TYPE_CHECKING, Any

from core import quiet

quiet.install()

__all__ = ["Colorizer"]

if TYPE_CHECKING:
    from core.colorizer import Colorizer


def __getattr__(name: str) -> Any:
    if name == "Colorizer":
        from core.colorizer import Colorizer

        return Colorizer
    raise AttributeError(f"module 'core' has no attribute {name!r}")

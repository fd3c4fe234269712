"""Colorization core: colour conversions, models, the Colorizer and shipped weights.

Importing `core` is cheap and side-effect free; `Colorizer` (which pulls in TensorFlow)
is imported on first use.
"""

from typing import TYPE_CHECKING, Any

__all__ = ["Colorizer"]

if TYPE_CHECKING:
    from core.colorizer import Colorizer


def __getattr__(name: str) -> Any:
    if name == "Colorizer":
        from core.colorizer import Colorizer

        return Colorizer
    raise AttributeError(f"module 'core' has no attribute {name!r}")

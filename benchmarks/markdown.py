"""What the Markdown-writing benchmarks share: their command line and their output."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from core.atomic import atomic_write_bytes

__all__ = ["command_line", "emit"]


def command_line(module: str, argv: list[str] | None) -> str:
    """`python -m MODULE ARGS` as typed (argv None: this process's arguments)."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", module, *args])


def emit(text: str, out: str) -> None:
    """Write `text` to `out` atomically, or print it when `out` is empty."""
    if out:
        atomic_write_bytes(Path(out), text.encode())
    else:
        print(text, end="")

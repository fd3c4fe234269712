"""What the Markdown-writing benchmarks share: their command line, their output and
the check of their goals."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from core.atomic import atomic_write_bytes

__all__ = ["check_goals", "command_line", "emit"]


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


def check_goals(
    values: Mapping[str, float | None],
    goals: Iterable[tuple[str, str, float, str]],
) -> list[dict[str, Any]]:
    """Each goal (key, description, target, "min" or "max") with its measured value
    `values[key]` and whether it is met ("min": at or above the target, "max": at or
    under it; a value of None, not measured, is not met)."""
    checked = []
    for key, what, target, kind in goals:
        value = values[key]
        met = value is not None and (
            value >= target if kind == "min" else value <= target
        )
        checked.append(
            {
                "key": key,
                "goal": what,
                "target": target,
                "kind": kind,
                "value": value,
                "met": met,
            }
        )
    return checked

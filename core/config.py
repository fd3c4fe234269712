"""Command-line options built from frozen dataclass configs, so each default is written
once.

Each field becomes `--kebab-case`; its help is the field's `metadata["help"]`. Tuples
and lists take several values; booleans become `--flag/--no-flag`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import types
import typing
from typing import Any, TypeVar

__all__ = ["add_dataclass_args", "command_line", "dataclass_from_args"]

T = TypeVar("T")


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(element type, is_sequence) of a field annotation; Optional is unwrapped."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    if origin in (list, tuple):
        return typing.get_args(tp)[0], True
    return tp, False


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per field of the dataclass `cls` to `parser`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        elem, is_seq = _base_type(hints[f.name])
        required = (
            f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        default = None if required else getattr(cls, f.name, None)
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        kwargs: dict[str, Any] = {"help": f.metadata.get("help", "")}
        if elem is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = elem
            if is_seq:
                kwargs["nargs"] = "+"
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
            if kwargs["help"] is not None and default not in (None, "", ()):
                kwargs["help"] += f" (default: {default})"
        parser.add_argument(flag, **kwargs)


def dataclass_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """Build the dataclass `cls` from parsed options (sequences become tuples)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name)
        if _base_type(hints[f.name])[1] and v is not None:
            v = tuple(v)
        values[f.name] = v
    return cls(**values)


def command_line(module: str, config: dict[str, Any]) -> str:
    """The command that rebuilds `config` (a dataclass's fields as a dict, e.g. a run's
    config.json) through `add_dataclass_args`: booleans as `--x` / `--no-x`, sequences
    spread, empty values left out."""
    args = ["python", "-m", module]
    for name, value in config.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, list | tuple):
            if value:
                args += [flag, *map(str, value)]
        elif value not in (None, ""):
            args += [flag, str(value)]
    return shlex.join(args)

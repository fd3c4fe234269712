"""Options from dataclasses, and the command line that rebuilds a recorded config."""

import argparse
import dataclasses
import shlex
from dataclasses import dataclass, field

from core.config import add_dataclass_args, command_line, dataclass_from_args


@dataclass(frozen=True)
class _Cfg:
    model: str = "default-v1"
    data: tuple[str, ...] = ("a",)
    prior: str = ""
    lr: float = 1e-3
    pretrained: bool = True
    shuffle: bool = True
    options: tuple[str, ...] = field(default=())


def _parse(argv: list[str]) -> _Cfg:
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, _Cfg)
    return dataclass_from_args(_Cfg, parser.parse_args(argv))


def test_command_line_rebuilds_the_config() -> None:
    cfg = _Cfg(
        model="vgg16-cls",
        data=("x y", "z"),
        lr=3e-5,
        pretrained=False,
        options=("width=0.5",),
    )
    record = dataclasses.asdict(cfg)  # what a run's config.json holds (lists there)
    record["data"] = list(record["data"])
    cmd = command_line("training.train", record)
    argv = shlex.split(cmd)
    assert argv[:3] == ["python", "-m", "training.train"]
    assert "--no-pretrained" in argv and "--prior" not in argv
    assert _parse(argv[3:]) == cfg


def test_command_line_of_defaults_parses_to_defaults() -> None:
    cmd = command_line("m", dataclasses.asdict(_Cfg()))
    assert _parse(shlex.split(cmd)[3:]) == _Cfg()

"""Pack a folder of photos into WebDataset-style `.tar` shards for training.

    python -m training.shard SRC_FOLDER OUT_FOLDER --per-shard 1000

SRC_FOLDER is searched recursively for images (core.imageio.TENSORFLOW_SUFFIXES), in
sorted order. Each photo is checked by decoding it the way training does
(`tf.io.decode_image`); one that does not decode is reported on one line on stderr
and skipped. Each shard `OUT_FOLDER/shard-NNNNNN.tar` holds `--per-shard` photos as
`KEY.<ext>` (the original bytes) and `KEY.json` ({"source": path relative to
SRC_FOLDER}), where KEY is the photo's running number and a readable form of its
name.

The output is deterministic: the same folder gives byte-identical shards (sorted
order, fixed tar metadata). Each shard is written to a temporary file beside it and
renamed, so a shard is either complete or absent. Training splits shards between
workers, so make at least as many as there will be workers (ideally many more).
Exit status: 0, 1 when photos were skipped, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import os
import re
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core.cli import run_main
from core.errors import InvalidInputError, MissingInputError, OutputExistsError
from core.imageio import TENSORFLOW_SUFFIXES, images_in_folder
from training.data import decode_tf

__all__ = ["ShardConfig", "ShardReport", "main", "write_shards"]

log = logging.getLogger(__name__)

KEY_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
MAX_NAME = 60  # characters of the photo's name kept in its key (tar names <= 100)


@dataclass(frozen=True)
class ShardConfig:
    src: str = field(metadata={"help": "folder of photos (searched recursively)"})
    out: str = field(metadata={"help": "folder for the shards"})
    per_shard: int = field(default=1000, metadata={"help": "photos per shard"})
    prefix: str = field(default="shard", metadata={"help": "shard file name prefix"})
    overwrite: bool = field(
        default=False, metadata={"help": "replace shards already in the out folder"}
    )


@dataclass(frozen=True)
class ShardReport:
    """What `write_shards` did: shard paths, photos packed, (path, reason) skipped."""

    shards: list[Path]
    images: int
    skipped: list[tuple[Path, str]]


def _photo_key(number: int, relative: Path) -> str:
    # WebDataset keys end at the first dot, so the name keeps no dots
    name = KEY_CHARS.sub("_", str(relative.with_suffix("")))[:MAX_NAME].strip("_")
    return f"{number:07d}-{name}" if name else f"{number:07d}"


def _decode_problem(data: bytes) -> str:
    """Why training could not decode `data`, or "" when it can."""
    import tensorflow as tf

    try:
        image = decode_tf(data)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
        return err.message.splitlines()[0] if err.message else type(err).__name__
    if min(image.shape[:2]) < 1:
        return f"empty image {tuple(image.shape)}"
    return ""


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # fixed metadata: the same photos give the same bytes
    tar.addfile(info, io.BytesIO(data))


def _write_shard(path: Path, members: list[tuple[str, bytes, bytes]]) -> None:
    """Write one shard atomically: a temporary file beside it, then a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name, image, meta in members:
                    _add_member(tar, name, image)
                    _add_member(tar, name.rpartition(".")[0] + ".json", meta)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_shards(cfg: ShardConfig) -> ShardReport:
    """Pack the photos under cfg.src into shards in cfg.out (see the module doc).

    Photos are read one at a time and each shard is written as it fills, so memory
    holds at most one shard's photos. Raises FileNotFoundError when cfg.src is not a
    folder or holds no images, FileExistsError when cfg.out already has shards and
    cfg.overwrite is off, ValueError for per_shard < 1.
    """
    if cfg.per_shard < 1:
        raise InvalidInputError(f"--per-shard must be at least 1, got {cfg.per_shard}")
    src, out = Path(cfg.src), Path(cfg.out)
    if not src.is_dir():
        raise MissingInputError(f"no such folder: {src}")
    photos = images_in_folder(src, TENSORFLOW_SUFFIXES, hidden=True)
    if not photos:
        raise MissingInputError(
            f"no images ({', '.join(TENSORFLOW_SUFFIXES)}) under {src}"
        )
    out.mkdir(parents=True, exist_ok=True)
    old = sorted(out.glob(f"{cfg.prefix}-*.tar"))
    if old and not cfg.overwrite:
        raise OutputExistsError(
            f"{out} already holds {len(old)} shards; use --overwrite to replace them"
        )
    shards: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    members: list[tuple[str, bytes, bytes]] = []
    images = 0

    def flush() -> None:
        path = out / f"{cfg.prefix}-{len(shards):06d}.tar"
        _write_shard(path, members)
        shards.append(path)
        log.info("%s: %d photos", path, len(members))
        members.clear()

    for photo in photos:
        try:
            data = photo.read_bytes()
        except OSError as err:
            skipped.append((photo, f"unreadable ({err.strerror})"))
            continue
        problem = _decode_problem(data)
        if problem:
            skipped.append((photo, problem))
            continue
        relative = photo.relative_to(src)
        suffix = photo.suffix.lower()
        meta = json.dumps({"source": relative.as_posix()}, sort_keys=True).encode()
        members.append((_photo_key(images, relative) + suffix, data, meta))
        images += 1
        if len(members) == cfg.per_shard:
            flush()
    if members:
        flush()
    for stale in old:
        if stale not in shards:
            stale.unlink()
    return ShardReport(shards, images, skipped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.shard", description=__doc__.split("\n\n")[0]
    )
    # SRC and OUT are positional; the options keep ShardConfig's defaults
    for f in dataclasses.fields(ShardConfig):
        if f.name in ("src", "out"):
            parser.add_argument(f.name, help=f.metadata["help"])
        elif f.type == "bool":
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                action=argparse.BooleanOptionalAction,
                default=f.default,
                help=f.metadata["help"],
            )
        else:
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                type=type(f.default),
                default=f.default,
                help=f"{f.metadata['help']} (default: {f.default})",
            )
    return run_main(parser, argv, _run, level=logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    report = write_shards(ShardConfig(**vars(args)))
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path in report.shards:
        print(path)
    print(
        f"{report.images} photos in {len(report.shards)} shards, "
        f"{len(report.skipped)} skipped"
    )
    return 1 if report.skipped else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Atomic file writes: write a temporary file in the same folder, then rename.

The temporary file is named `.<name>.<pid>.<random>.tmp` after the file it becomes and
the process that writes it, so a later run can tell its own leftovers (of a writer
killed with kill -9) from a write in progress, and remove them: `remove_stale_temps`.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

__all__ = ["STALE_AFTER_S", "atomic_write_bytes", "remove_stale_temps"]

# a temporary file of a writer that is gone is left this long (seconds) before it is
# removed: a writer in another PID namespace (a container, another machine sharing the
# folder) looks gone from here, and no write takes this long
_DEAD_WRITER_GRACE_S = 60.0
# any temporary file untouched this long is stale (seconds): its PID may be reused
STALE_AFTER_S = 24 * 3600.0
# mkstemp's random part is 8 of [a-z0-9_]
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new, never half.

    The temporary file lives beside `path` (same file system, so `os.replace` is
    atomic), is named `.<name>.<pid>.<random>.tmp`, and is removed if anything fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600 files; give the result the permissions of a normal file
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _process_exists(pid: int) -> bool:
    """Whether a process with this id runs (in this PID namespace)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OverflowError:
        return False
    return True


def remove_stale_temps(
    folder: Path, suffix: str = "", now: float | None = None
) -> list[Path]:
    """Remove temporary files that killed `atomic_write_bytes` calls left in `folder`.

    Only files named as `atomic_write_bytes` names them, and of those only the ones
    for target names ending in `suffix` (e.g. ".png"), are considered; nothing else
    is touched, and subfolders are not searched. One is removed when its writer
    process no longer exists and it has not changed for a minute, or when it has not
    changed for STALE_AFTER_S (a day) whatever its PID says. The calling process's own
    files are kept. now: the current time (time.time()), for tests.
    Returns the removed paths; files that vanish or cannot be removed are skipped.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    own = os.getpid()
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or not match["name"].endswith(suffix):
            continue
        pid = int(match["pid"])
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if pid == own:
            continue
        gone = age > _DEAD_WRITER_GRACE_S and not _process_exists(pid)
        if gone or age > STALE_AFTER_S:
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed

"""The app's private temporary folder: users' uploads and results live only there.

`private_temp()` (entered by `python app.py` before the page is built) makes one folder
per process, `<system temp>/colorize-app-<pid>-<random>`, readable by this user only
(0700), and points Gradio's upload and result cache (GRADIO_TEMP_DIR) and Python's
`tempfile` at it, so every file a request writes lands inside. The folder is removed at
normal exit and on SIGTERM; after a kill -9 it stays, and the next start removes every
such folder whose process no longer runs. Importing this loads neither Gradio nor
Keras.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = [
    "RUN_PREFIX",
    "make_run_dir",
    "private_temp",
    "remove_stale_run_dirs",
]

RUN_PREFIX = "colorize-app-"
_RUN_NAME = re.compile(re.escape(RUN_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")


def _process_lives(pid: int) -> bool:
    """True when a process with this id exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    return True


def remove_stale_run_dirs(parent: Path) -> list[Path]:
    """Remove the run folders in `parent` left by processes that no longer run.

    Only folders named `colorize-app-<pid>-<suffix>`, owned by this user and not
    symbolic links, are touched. Returns the folders removed.
    """
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _RUN_NAME.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _process_lives(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def make_run_dir(parent: Path | None = None) -> Path:
    """A new private (0700) folder `colorize-app-<pid>-<random>` in `parent`.

    parent: default the system temp folder. Stale run folders of dead processes in it
    are removed first.
    """
    parent = Path(parent or tempfile.gettempdir())
    remove_stale_run_dirs(parent)
    # mkdtemp creates the folder with mode 0700, whatever the umask
    run = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=parent))
    os.chmod(run, 0o700)
    return run


def _exit_on_sigterm() -> Any:
    """Turn SIGTERM into SystemExit(143) in the main thread; returns the old handler.

    So `finally` blocks and `atexit` handlers run (kill -9 cannot be caught: the next
    start cleans up). Returns None, changing nothing, outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        del frame
        # restore the default first: a second SIGTERM during the clean-up ends us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.exit(128 + signum)

    return signal.signal(signal.SIGTERM, on_sigterm)


@contextmanager
def private_temp(parent: Path | None = None) -> Iterator[Path]:
    """This process's private run folder, with every temporary file sent there.

    While the context lasts, GRADIO_TEMP_DIR (Gradio's uploads and results) is
    `<run>/gradio`, and `tempfile.tempdir` and TMPDIR are `<run>/tmp`; SIGTERM exits
    through the context. On leaving (or at interpreter exit, whichever comes first) the
    folder is removed and the previous settings come back. Enter it before Gradio
    builds a page. Yields the run folder.
    """
    run = make_run_dir(parent)

    def remove() -> None:
        shutil.rmtree(run, ignore_errors=True)

    atexit.register(remove)
    saved_env = {key: os.environ.get(key) for key in ("GRADIO_TEMP_DIR", "TMPDIR")}
    saved_tempdir = tempfile.tempdir
    previous = _exit_on_sigterm()
    try:
        for sub in ("gradio", "tmp"):
            (run / sub).mkdir(mode=0o700)
        os.environ["GRADIO_TEMP_DIR"] = str(run / "gradio")
        os.environ["TMPDIR"] = str(run / "tmp")
        tempfile.tempdir = str(run / "tmp")
        yield run
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        remove()
        atexit.unregister(remove)

"""Atomic writes and the removal of the temporary files a killed writer leaves."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.atomic import STALE_AFTER_S, atomic_write_bytes, remove_stale_temps

REPO = Path(__file__).resolve().parents[2]

# a writer that stops for ever between writing its temporary file and renaming it
_STUCK_WRITER = """
import os, sys, time
import core.atomic
def stuck(fd):
    print("written", flush=True)
    time.sleep(600)
core.atomic.os.fsync = stuck
core.atomic.atomic_write_bytes(sys.argv[1], b"half a photo")
"""


def _dead_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _age(path: Path, seconds: float) -> Path:
    """Make `path` look last written `seconds` ago (created if missing)."""
    if not path.exists():
        path.write_bytes(b"x")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_temporary_file_names_the_target_and_the_writer(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(tmp_path / "photo.png", b"data")

    (name,) = seen
    assert name.startswith(f".photo.png.{os.getpid()}.")
    assert name.endswith(".tmp")
    assert [p.name for p in tmp_path.iterdir()] == ["photo.png"]


def test_a_killed_writers_temporary_file_is_removed_by_a_later_run(tmp_path):
    target = tmp_path / "photo.png"
    writer = subprocess.Popen(
        [sys.executable, "-c", _STUCK_WRITER, str(target)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "written"
        (temp,) = tmp_path.iterdir()
        assert temp.name.startswith(f".photo.png.{writer.pid}.")
        # a write in progress is never removed
        assert remove_stale_temps(tmp_path, now=time.time() + 3600) == []
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    writer.stdout.close()
    assert temp.exists() and not target.exists()

    # just after the kill the file is kept (a writer in another PID namespace would
    # look gone too); a minute later it is removed
    assert remove_stale_temps(tmp_path) == []
    assert remove_stale_temps(tmp_path, now=time.time() + 120) == [temp]
    assert list(tmp_path.iterdir()) == []


def test_only_stale_temporary_files_of_the_pattern_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    stale = [
        _age(tmp_path / f".a.png.{dead}.abcd_123.tmp", 120),
        _age(tmp_path / f".b.png.{alive}.abcdefgh.tmp", STALE_AFTER_S + 60),
    ]
    kept = [
        _age(tmp_path / f".c.png.{dead}.abcdefgh.tmp", 10),  # just written
        _age(tmp_path / f".d.png.{alive}.abcdefgh.tmp", 3600),  # writer alive
        _age(tmp_path / f".e.png.{os.getpid()}.abcdefgh.tmp", 3600),  # our own
        _age(tmp_path / f".f.json.{dead}.abcdefgh.tmp", 3600),  # not a .png
        _age(tmp_path / ".g.png.abcdefgh.tmp", 3600),  # no writer id
        _age(tmp_path / f"h.png.{dead}.abcdefgh.tmp", 3600),  # not hidden
        _age(tmp_path / "notes.tmp", 3600),
        _age(tmp_path / "photo.png", 3600),
    ]
    folder = tmp_path / f".i.png.{dead}.abcdefgh.tmp"  # a folder, not a file
    folder.mkdir()
    _age(folder, 3600)

    assert sorted(remove_stale_temps(tmp_path, suffix=".png")) == stale
    assert sorted(tmp_path.iterdir()) == sorted([*kept, folder])


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_the_suffix_picks_the_targets(tmp_path, suffix):
    dead = _dead_pid()
    temp = _age(tmp_path / f".f.json.{dead}.abcdefgh.tmp", 120)

    assert remove_stale_temps(tmp_path, suffix=suffix) == [temp]


def test_a_missing_folder_removes_nothing(tmp_path):
    assert remove_stale_temps(tmp_path / "missing") == []

"""The app's private temporary folder: 0700, gone after SIGTERM, swept after kill -9.

Real child processes are started and signalled; each test uses its own parent folder.
"""

import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from demo.tempdirs import (
    RUN_PREFIX,
    make_run_dir,
    private_temp,
    remove_stale_run_dirs,
)

ROOT = Path(__file__).resolve().parents[2]

# a child that makes its private folder under argv[1], writes a file where Gradio and
# tempfile would, prints the folder and waits to be signalled
_CHILD = textwrap.dedent(
    """
    import os, sys, tempfile, time
    from pathlib import Path
    from demo.tempdirs import private_temp

    with private_temp(Path(sys.argv[1])) as run:
        Path(os.environ["GRADIO_TEMP_DIR"], "upload.png").write_bytes(b"a photo")
        Path(tempfile.mkdtemp(), "result.png").write_bytes(b"a user's result")
        print(run, flush=True)
        while True:
            time.sleep(0.05)
    """
)


def _start(parent: Path) -> tuple[subprocess.Popen, Path]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(parent)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline().strip() if child.stdout else ""
    assert line, "the child did not start"
    return child, Path(line)


def test_run_folder_is_private_and_named_after_the_process(tmp_path):
    run = make_run_dir(tmp_path)
    assert run.parent == tmp_path
    assert run.name.startswith(f"{RUN_PREFIX}{os.getpid()}-")
    assert stat.S_IMODE(run.stat().st_mode) == 0o700


def test_sigterm_removes_the_folder_with_users_files(tmp_path):
    child, run = _start(tmp_path)
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    assert (run / "gradio" / "upload.png").is_file()
    assert len(list((run / "tmp").iterdir())) == 1
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    assert not run.exists()
    assert list(tmp_path.iterdir()) == []


def test_kill_9_leaves_a_folder_that_the_next_start_removes(tmp_path):
    child, run = _start(tmp_path)
    alive, alive_run = _start(tmp_path)  # another app that still runs
    child.kill()
    child.wait(timeout=30)
    assert run.is_dir()  # SIGKILL cannot be caught
    try:
        other = tmp_path / "unrelated-folder"
        other.mkdir()
        fresh = make_run_dir(tmp_path)
        assert not run.exists()
        assert alive_run.is_dir() and other.is_dir() and fresh.is_dir()
    finally:
        alive.send_signal(signal.SIGTERM)
        alive.wait(timeout=30)
    assert not alive_run.exists()


def test_stale_sweep_leaves_links_and_other_names_alone(tmp_path):
    target = Path(tempfile.mkdtemp(dir=tmp_path))
    dead_pid = _dead_pid()
    link = tmp_path / f"{RUN_PREFIX}{dead_pid}-link"
    link.symlink_to(target)
    odd = tmp_path / f"{RUN_PREFIX}notapid-x"
    odd.mkdir()
    stale = tmp_path / f"{RUN_PREFIX}{dead_pid}-abc"
    (stale / "gradio").mkdir(parents=True)
    assert remove_stale_run_dirs(tmp_path) == [stale]
    assert link.is_symlink() and target.is_dir() and odd.is_dir()


def _dead_pid() -> int:
    """The id of a process that has ended (its parent, this test, has reaped it)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    pid = child.pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    pytest.skip("the id was reused at once")


def test_private_temp_restores_the_process_on_leaving(tmp_path):
    before = (os.environ.get("GRADIO_TEMP_DIR"), tempfile.tempdir)
    handler = signal.getsignal(signal.SIGTERM)
    with private_temp(tmp_path) as run:
        assert os.environ["GRADIO_TEMP_DIR"] == str(run / "gradio")
        assert Path(tempfile.mkdtemp()).parent == run / "tmp"
        assert signal.getsignal(signal.SIGTERM) is not handler
    assert not run.exists()
    assert (os.environ.get("GRADIO_TEMP_DIR"), tempfile.tempdir) == before
    assert signal.getsignal(signal.SIGTERM) is handler

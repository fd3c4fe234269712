"""TensorFlow's start-up notes stay off stderr; other lines still show."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=True,
    )


def test_filtered_stderr_drops_only_the_known_notes() -> None:
    done = _run(
        """
        import os
        from core.quiet import filtered_stderr
        with filtered_stderr():
            os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. x\\n")
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() "
                        b"is called are written to STDERR\\n")
            os.write(2, b"E0000 something really failed\\n")
        os.write(2, b"after\\n")
        """
    )
    assert done.stderr.splitlines() == ["E0000 something really failed", "after"]


@pytest.mark.slow
def test_importing_the_colorizer_prints_nothing() -> None:
    done = _run(
        """
        import core.colorizer
        import tensorflow as tf
        print(int(tf.constant(3).numpy()))
        """
    )
    assert done.stdout.strip() == "3"
    assert "oneDNN" not in done.stderr and "absl::InitializeLog" not in done.stderr
    assert done.stderr.strip() == ""

"""benchmarks.procstat: memory figures of a process from /proc."""

import os

import pytest

from benchmarks.procstat import status_kb


def test_the_high_water_mark_is_at_least_the_resident_memory() -> None:
    # resident memory first: the kernel reports the peak as at least the resident
    # memory at the time of reading, which may have grown since
    now = status_kb(os.getpid(), "VmRSS")
    peak = status_kb()
    assert 0 < now <= peak


def test_an_unknown_field_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no VmNothing"):
        status_kb("self", "VmNothing")

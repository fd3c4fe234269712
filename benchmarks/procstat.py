"""A process's memory figures from Linux's /proc/PID/status, for the benchmarks."""

from __future__ import annotations

from pathlib import Path

__all__ = ["status_kb"]


def status_kb(pid: int | str = "self", field: str = "VmHWM") -> int:
    """The kB value of `field` in /proc/PID/status: VmHWM (the high-water mark of the
    process's resident memory, its own map: ru_maxrss would also count the parent's
    size at fork time) or VmRSS (resident now). pid "self": this process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")

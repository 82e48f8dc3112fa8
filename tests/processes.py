"""Processes of a running command, read from /proc: its descendants, their state and CPU time."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def stat_fields(pid: int | str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, ..., utime (11), stime (12)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(entry)] = int(stat_fields(entry)[1])
        except OSError:
            continue
    found, frontier = [], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def alive(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def workers_running(proc: subprocess.Popen[str], count: int, deadline: float) -> list[int]:
    """The worker processes of a running extraction (children of its forkserver), once `count` exist."""
    while time.monotonic() < deadline and proc.poll() is None:
        workers = [p for p in descendants(proc.pid) if stat_fields(p)[1] != str(proc.pid)]
        if len(workers) >= count:
            return workers
        time.sleep(0.02)
    raise AssertionError("the extraction never had its worker processes running")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, in clock ticks."""
    fields = stat_fields(pid)
    return float(int(fields[11]) + int(fields[12]))


def holds_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has the file `path` open now."""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False

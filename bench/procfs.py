"""Readings of running processes from ``/proc``: the process tree, peak memory and CPU time."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def all_pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def descendants(root: int) -> list[int]:
    """Every live process below ``root``."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def name(pid: int) -> str:
    """The short name (``comm``) of a process, ``?`` once it is gone."""
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"


def pids_named(comm: str) -> list[int]:
    return [pid for pid in all_pids() if name(pid) == comm]


def memory_kb(pid: int, field: str = "VmHWM") -> int | None:
    """A ``kB`` line of ``/proc/<pid>/status``: ``VmHWM`` is the peak resident set, ``VmRSS`` the current."""
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def own_peak_mb() -> float:
    """This process's peak resident memory: Linux's ``VmHWM``, which a new program starts afresh
    (``ru_maxrss`` keeps the parent's high-water mark across the start of a spawned process) and
    :func:`reset_own_peak` starts again."""
    kb = memory_kb(os.getpid())
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def reset_own_peak() -> bool:
    """Start this process's peak resident memory again from what it holds now (``5`` written to
    ``/proc/self/clear_refs``), so that :func:`own_peak_mb` reads the peak of what comes next; where
    it cannot be (False), the peak stays the process's."""
    try:
        (PROC / "self" / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _seconds(pids: Iterable[int], user_field: int) -> dict[int, float]:
    """The user time at ``user_field`` of ``/proc/<pid>/stat`` (counted from field 3) plus the
    system time after it, of each process still alive."""
    times = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            times[pid] = (int(fields[user_field]) + int(fields[user_field + 1])) / CLOCK_TICKS
    return times


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User plus system CPU time of each process still alive."""
    return _seconds(pids, 11)


def ended_children_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User plus system CPU time of the children each process has waited for (``cutime`` and
    ``cstime``): what PostgreSQL's connection processes spent once they have ended."""
    return _seconds(pids, 13)


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have spent busy (not idle, not waiting on I/O) since boot."""
    with (PROC / "stat").open() as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS

"""The benchmark's readings from ``/proc``: work done by processes that ended within a phase
(PostgreSQL's connection processes, when connections are opened and closed) is found in their
parent's account, so it is not lost to "other"; a process's peak memory can be started again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import procfs

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_a_child_that_ended_is_counted_in_its_parent() -> None:
    me = os.getpid()
    ended_before, own_before = procfs.ended_children_seconds([me])[me], procfs.cpu_seconds([me])[me]
    subprocess.run([sys.executable, "-c", BURN], check=True)
    assert procfs.ended_children_seconds([me])[me] - ended_before >= 0.25
    assert procfs.cpu_seconds([me])[me] - own_before < 0.25  # the child's time is not its own


PEAKS = """
from bench import procfs
big = bytearray(160 * 2**20)
big[:: 4096] = b"x" * len(big[:: 4096])  # touched, so resident
del big
before = procfs.own_peak_mb()
reset = procfs.reset_own_peak()
small = bytearray(10 * 2**20)
small[:: 4096] = b"x" * len(small[:: 4096])
print(before, procfs.own_peak_mb(), reset)
"""


def test_a_peak_started_again_reads_only_what_came_after() -> None:
    """The exports' memory is read after their seeding: a reset peak forgets an earlier, larger one."""
    out = subprocess.run([sys.executable, "-c", PEAKS], check=True, capture_output=True, text=True)
    before, after, reset = out.stdout.split()
    if reset != "True":
        pytest.skip("this kernel does not let a process start its peak memory again")
    assert float(before) >= 160
    assert float(after) < 120

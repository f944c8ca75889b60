"""The benchmark's reading of CPU time from ``/proc``: work done by processes that ended within a
phase (PostgreSQL's connection processes, when connections are opened and closed) is found in
their parent's account, so it is not lost to "other"."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import procfs

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_a_child_that_ended_is_counted_in_its_parent() -> None:
    me = os.getpid()
    ended_before, own_before = procfs.ended_children_seconds([me])[me], procfs.cpu_seconds([me])[me]
    subprocess.run([sys.executable, "-c", BURN], check=True)
    assert procfs.ended_children_seconds([me])[me] - ended_before >= 0.25
    assert procfs.cpu_seconds([me])[me] - own_before < 0.25  # the child's time is not its own

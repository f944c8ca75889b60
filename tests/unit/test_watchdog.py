"""The event loop's watchdog: a loop blocked longer than the allowed stall is reported (in a served
worker: the process ends and its supervisor starts another); a loop that runs is not."""

from __future__ import annotations

import asyncio
import time

from server.watchdog import LoopWatchdog


async def test_a_blocked_loop_is_reported_once() -> None:
    stalls: list[float] = []
    watchdog = LoopWatchdog(0.5, stalls.append, beat_s=0.05)
    watchdog.start()
    try:
        time.sleep(2.0)  # noqa: ASYNC251 (blocking the loop is the point)
    finally:
        await watchdog.stop()
    assert len(stalls) == 1 and stalls[0] > 0.5


async def test_a_running_loop_is_not_reported() -> None:
    stalls: list[float] = []
    watchdog = LoopWatchdog(3.0, stalls.append, beat_s=0.05)
    watchdog.start()
    try:
        await asyncio.sleep(1.5)
    finally:
        await watchdog.stop()
    assert stalls == []

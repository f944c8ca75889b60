"""A served worker's event loop, watched from a thread: a loop that has not run for
``TICKETS_WORKER_STALL_SECONDS`` (a blocking call, an endless loop) ends its process, so that
uvicorn's supervisor starts a new one (ADR 0018). The supervisor's own health check is answered
from a thread of the worker and does not see a stalled loop; and each worker listens on a socket
of its own, so a stalled worker's share of new connections would otherwise wait for it for ever.
This is what gunicorn's worker timeout does, for an event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("tickets")

# The exit status of a worker ended for a stalled loop (EX_SOFTWARE: an internal error).
STALLED_EXIT = 70


def exit_for_a_new_worker(stalled_s: float) -> None:
    """End this process at once: its loop is stuck, so nothing in it can shut down in order."""
    log.error(
        "this worker's event loop has not run for %.0f s: ending the process so that a new one "
        "takes its connections",
        stalled_s,
    )
    os._exit(STALLED_EXIT)


class LoopWatchdog:
    """Beats on the event loop every ``beat_s``; a thread calls ``on_stall`` (once, with the time
    since the last beat) when none came for ``stall_s``."""

    def __init__(
        self,
        stall_s: float,
        on_stall: Callable[[float], None] = exit_for_a_new_worker,
        *,
        beat_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_s, self.on_stall, self.beat_s, self.clock = stall_s, on_stall, beat_s, clock
        self._last = clock()
        self._stop = threading.Event()
        self._beating: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)

    def start(self) -> None:
        self._last = self.clock()
        self._beating = asyncio.get_running_loop().create_task(self._beat())
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
        await asyncio.to_thread(self._thread.join)

    async def _beat(self) -> None:
        while True:
            self._last = self.clock()
            await asyncio.sleep(self.beat_s)

    def _watch(self) -> None:
        while not self._stop.wait(min(self.beat_s, self.stall_s) / 2):
            stalled = self.clock() - self._last
            if stalled > self.stall_s:
                self.on_stall(stalled)
                return

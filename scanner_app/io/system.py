"""The desk's real clock and its source of ids: what :func:`scanner_app.start.open_desk` hands the
core (:class:`~scanner_app.core.ports.DeskClock`, :class:`~scanner_app.core.ports.IdSource`)."""

from __future__ import annotations

import secrets
import time

from scanner_app.core.ports import DeskClock


class SystemDeskClock:
    """The machine's clocks: wall time, and ``perf_counter`` (monotonic, the finest there is)."""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.perf_counter()


class RandomIds:
    """Record ids unique on this desk (its wall time, then 40 random bits) and random hub tokens."""

    def __init__(self, clock: DeskClock) -> None:
        self.clock = clock

    def record_id(self) -> str:
        return f"rec_{self.clock.wall_ms():012x}{secrets.token_hex(5)}"

    def hub_token(self) -> str:
        return secrets.token_urlsafe(18)


SYSTEM_DESK_CLOCK = SystemDeskClock()

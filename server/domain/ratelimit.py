"""Rate limits shared by every server process: events counted per scope in the ``rate_counters``
table, in fixed windows (``window_ms`` is a window's start) read as a sliding window.

A scope's count at a moment is the current window's count plus the previous window's, weighted by
the share of the previous window still inside the sliding window that ends now. A burst of
``limit * 1.5`` events within one window length is therefore refused wherever the window edges fall.

Counting is one statement, committed at once outside any transaction (``Database.autocommit``): an
upsert answering each scope's new count and its previous window's count. Two processes counting at
once are serialized by the row, so they can never both take a scope's last place.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database, Driver
from server.db.models import RateCounter
from server.errors import RateLimitExceeded

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scope:
    """What is counted (``key``, unique per kind of limit) and how many events a window allows."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class Window:
    now_ms: int
    length_ms: int

    @property
    def start_ms(self) -> int:
        return self.now_ms - self.now_ms % self.length_ms

    @property
    def previous_ms(self) -> int:
        return self.start_ms - self.length_ms

    def estimate(self, current: int, previous: int) -> int:
        """The count in the sliding window ending now (rounded up: an event is never forgotten
        early)."""
        return current + math.ceil(previous * (1 - (self.now_ms - self.start_ms) / self.length_ms))

    def refusal(self, what: str) -> RateLimitExceeded:
        """The 429 answer, with the seconds until the current window ends as ``Retry-After``."""
        retry_after_s = max(1, -(-(self.start_ms + self.length_ms - self.now_ms) // 1000))
        return RateLimitExceeded(
            f"{what}; try again in {retry_after_s} s", headers={"Retry-After": str(retry_after_s)}
        )


@lru_cache(maxsize=8)
def _count_sql(scopes: int) -> str:
    rows = ", ".join(f"(:s{n}, :start, 1)" for n in range(scopes))
    return (
        f"INSERT INTO rate_counters (scope, window_ms, count) VALUES {rows} "  # noqa: S608 (no input)
        "ON CONFLICT (scope, window_ms) DO UPDATE SET count = rate_counters.count + 1 "
        "RETURNING scope, count, (SELECT p.count FROM rate_counters AS p "
        "WHERE p.scope = rate_counters.scope AND p.window_ms = :previous)"
    )


async def count(db: Database, scopes: Sequence[Scope], window: Window) -> dict[str, int]:
    """One more event in every scope (keys distinct); answers each scope's sliding count."""
    params: dict[str, object] = {f"s{n}": scope.key for n, scope in enumerate(scopes)}
    params |= {"start": window.start_ms, "previous": window.previous_ms}
    found: dict[str, int] = {}

    async def upsert(driver: Driver) -> None:
        for key, current, previous in await driver.fetch(_count_sql(len(scopes)), params):
            found[key] = window.estimate(int(current), int(previous or 0))

    await db.autocommit(upsert)
    return found


async def take(db: Database, scopes: Sequence[Scope], window: Window, what: str) -> None:
    """Count one event in every scope; refuse it (429) when any scope is then over its limit."""
    counts = await count(db, scopes, window)
    if any(counts[scope.key] > scope.limit for scope in scopes):
        raise window.refusal(what)


async def refuse_when_spent(
    session: AsyncSession, scopes: Sequence[Scope], window: Window, what: str
) -> None:
    """Refuse (429), without counting, when any scope has reached its limit."""
    rows = await session.execute(
        select(RateCounter.scope, RateCounter.window_ms, RateCounter.count).where(
            RateCounter.scope.in_([scope.key for scope in scopes]),
            RateCounter.window_ms.in_([window.start_ms, window.previous_ms]),
        )
    )
    current: dict[str, int] = {}
    previous: dict[str, int] = {}
    for key, start_ms, events in rows.all():
        (current if start_ms == window.start_ms else previous)[key] = int(events)
    for scope in scopes:
        if window.estimate(current.get(scope.key, 0), previous.get(scope.key, 0)) >= scope.limit:
            raise window.refusal(what)


async def guarding(
    db: Database,
    scopes: Sequence[Scope],
    window: Window,
    what: str,
    counted: type[Exception],
    work: Callable[[], Awaitable[T]],
) -> T:
    """Limit failures rather than attempts: refuse while any scope has failed its limit lately, right
    or wrong input, then run ``work`` and count its ``counted`` failure in every scope (its own
    statement: the refused call wrote nothing)."""
    async with db.read() as session:
        await refuse_when_spent(session, scopes, window, what)
    try:
        return await work()
    except counted:
        await count(db, scopes, window)
        raise


async def forget_old_windows(session: AsyncSession, now_ms: int, longest_window_ms: int) -> None:
    """Counts no sliding window can reach any more (older than the previous window of the longest
    limit)."""
    await session.execute(delete(RateCounter).where(RateCounter.window_ms < now_ms - 2 * longest_window_ms))

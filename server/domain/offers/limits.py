"""Limits on guessing offer codes: wrong codes are counted per app and per buyer in fixed windows
shared by every server process (the ``rate_counters`` table); a scope that reached its limit is
refused, right or wrong code, until its window ends."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import RateCounter
from server.domain.caller import Caller
from server.domain.errors import RateLimitExceeded


@dataclass(frozen=True, slots=True)
class CodeLimits:
    window_ms: int
    per_app: int
    per_buyer: int


@dataclass(frozen=True, slots=True)
class Scope:
    key: str
    limit: int


def code_scopes(caller: Caller, buyer: str | None, limits: CodeLimits) -> list[Scope]:
    """Wrong codes count against the calling app, and against the buyer when the call names one."""
    scopes = [Scope(f"offer-code:{caller.app_id}", limits.per_app)]
    if buyer is not None:
        scopes.append(Scope(f"offer-code:{caller.app_id}:{buyer}", limits.per_buyer))
    return scopes


def _window(now_ms: int, window_ms: int) -> int:
    return now_ms - now_ms % window_ms


async def refuse_when_spent(session: AsyncSession, scopes: list[Scope], now_ms: int, window_ms: int) -> None:
    """Raise :class:`RateLimitExceeded`, with the seconds until the window ends, when any scope has
    reached its limit."""
    start = _window(now_ms, window_ms)
    rows = await session.execute(
        select(RateCounter.scope, RateCounter.count).where(
            RateCounter.scope.in_([s.key for s in scopes]), RateCounter.window_ms == start
        )
    )
    counts: dict[str, int] = {scope: int(count) for scope, count in rows.all()}
    if any(counts.get(s.key, 0) >= s.limit for s in scopes):
        retry_after_s = -(-(start + window_ms - now_ms) // 1000)
        raise RateLimitExceeded(
            f"too many wrong offer codes; try again in {retry_after_s} s",
            headers={"Retry-After": str(retry_after_s)},
        )


async def count_wrong_code(db: Database, scopes: list[Scope], now_ms: int, window_ms: int) -> None:
    """One more wrong code in every scope, in one upsert of its own transaction (the refused call
    wrote nothing)."""
    insert = sqlite_insert if db.is_sqlite else postgresql_insert
    statement = insert(RateCounter).values(
        [{"scope": s.key, "window_ms": _window(now_ms, window_ms), "count": 1} for s in scopes]
    )
    statement = statement.on_conflict_do_update(
        index_elements=[RateCounter.scope, RateCounter.window_ms],
        set_={"count": RateCounter.count + 1},
    )
    async with db.write() as session:
        await session.execute(statement)


async def forget_old_windows(session: AsyncSession, now_ms: int, window_ms: int) -> None:
    await session.execute(delete(RateCounter).where(RateCounter.window_ms < _window(now_ms, window_ms)))

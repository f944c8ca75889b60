"""Who waits for a lock on PostgreSQL: the concurrency tests that hold a transaction open find the
statement that waits for it, rather than sleeping and hoping it has started."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from server.db.engine import Database
from support.webhooks import wait_until

# Long enough for a loaded machine, short next to a lock that is never let go.
ANSWER_S = 60.0


async def waiting_for_a_lock(database_url: str) -> list[tuple[str, list[str]]]:
    """Each statement waiting for a lock, with the tables its transaction has written to so far."""
    db = Database(database_url)
    try:
        async with db.read() as session:
            found = await session.execute(
                text(
                    "SELECT a.query, array(SELECT c.relname FROM pg_locks l JOIN pg_class c "
                    "ON c.oid = l.relation WHERE l.pid = a.pid AND l.mode = 'RowExclusiveLock' "
                    "AND c.relkind = 'r' ORDER BY c.relname) FROM pg_stat_activity a "
                    "WHERE a.wait_event_type = 'Lock' AND a.datname = current_database()"
                )
            )
            return [(query, list(tables)) for query, tables in found]
    finally:
        await db.dispose()


async def waiting_or_done(
    database_url: str, task: asyncio.Task[Any], what: str, statement: str = ""
) -> list[tuple[str, list[str]]]:
    """The statements waiting for a lock once one starting with ``statement`` waits, or those
    waiting when ``task`` ended first (the server's background jobs take no lock they wait for, but
    a test does not count on it)."""
    waiting: list[tuple[str, list[str]]] = []

    async def settled() -> bool:
        waiting[:] = await waiting_for_a_lock(database_url)
        return any(query.startswith(statement) for query, _ in waiting) or task.done()

    await wait_until(settled, ANSWER_S, what)
    return waiting

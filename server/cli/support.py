"""What every ``tickets`` command module shares: a transaction from the command line, and the
schema check.

``tickets --help`` and every command import only what they use: the database, the server and the
file writers are imported inside the commands that need them (a unit test keeps it so), because
each ``tickets`` process pays for every module it imports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from server.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from server.db.engine import Database

    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            async with db.write() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


def ensure_schema(settings: Settings) -> None:
    """The embedded SQLite database migrates itself; a shared PostgreSQL is migrated on purpose."""
    from server.db import migrate

    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        migrate.upgrade(url)
    elif not migrate.is_up_to_date(url):
        raise SystemExit("the database schema is not current: run `tickets db upgrade` first")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart."""
    lines = [header, *rows]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )

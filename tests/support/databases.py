"""Real databases for tests: a migrated SQLite file per test, and one migrated PostgreSQL database
per run (per worker of a parallel run) that is emptied between tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from server.db import migrate
from server.db.models import Base

PG_ADMIN_URL = os.environ.get("TICKETS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_reachable() -> str | None:
    """``None`` when PostgreSQL answers, else why not."""
    try:
        conn = await asyncpg.connect(_dsn(PG_ADMIN_URL), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def create_pg_database(*, migrated: bool = True) -> str:
    """A new database, migrated unless asked for an empty one; answers its URL."""
    name = f"tickets_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_dsn(PG_ADMIN_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        # No test needs its commits to outlive a crash of PostgreSQL itself: they return without
        # waiting for the disk, several times faster (a server process killed mid-test still
        # leaves every commit it made behind).
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await conn.close()
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    if migrated:
        await asyncio.to_thread(migrate.upgrade, url)
    return url


async def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_dsn(PG_ADMIN_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def empty_pg(url: str) -> None:
    """Every table emptied and every sequence restarted, as in a freshly migrated database. DELETE,
    children before parents, rather than TRUNCATE: on tables this small it is several times faster
    (TRUNCATE gives every table and index new files). The append-only tables, whose triggers refuse
    a DELETE, are truncated."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        append_only = {
            row["relname"]
            for row in await conn.fetch(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE NOT t.tgisinternal"
            )
        }
        sequences = await conn.fetch(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        )
        statements = [f'TRUNCATE "{name}" CASCADE' for name in sorted(append_only)]
        statements += [
            f'DELETE FROM "{t.name}"'
            for t in reversed(Base.metadata.sorted_tables)
            if t.name not in append_only
        ]
        statements += [f'ALTER SEQUENCE "{row["sequencename"]}" RESTART' for row in sequences]
        await conn.execute("; ".join(statements))  # one round trip, one transaction
    finally:
        await conn.close()


def sqlite_template(folder: Path) -> Path:
    path = folder / "template.sqlite3"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def sqlite_copy(template: Path, folder: Path) -> str:
    target = folder / "tickets.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"

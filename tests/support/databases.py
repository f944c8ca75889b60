"""Real databases for tests: a migrated SQLite file per test, and one migrated PostgreSQL database
per run that is emptied between tests."""

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


async def truncate_pg(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
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

"""Engine plumbing: statements sent straight to the driver, and how SQLite connections go back to
their pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from support.databases import sqlite_copy

from server.db.engine import Database, Driver
from server.db.models import JwtReplay

INSERT = "INSERT INTO jwt_replays (iss, jti, exp) VALUES (:iss, :jti, CAST(:exp AS BIGINT)) RETURNING jti"


async def replays(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(JwtReplay)) or 0)


async def test_autocommit_statements_commit_each_on_their_own(database_url: str) -> None:
    db = Database(database_url)
    try:

        async def statements(driver: Driver) -> None:
            assert await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "one", "exp": 1}) == [("one",)]
            await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "one", "exp": 1})  # a duplicate

        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await db.autocommit(statements)
        assert await replays(db) == 1  # the first was committed before the second failed
        async with db.write() as session:  # and the connection the driver failed on is not reused
            session.add(JwtReplay(iss="did:web:a", jti="two", exp=1))
        assert await replays(db) == 2
    finally:
        await db.dispose()


async def test_a_sqlite_connection_left_in_a_transaction_is_rolled_back_on_return(
    tmp_path: Path, sqlite_template_file: Path
) -> None:
    """SQLite connections go back to the pool without the usual rollback (a trip to aiosqlite's
    thread) unless a transaction is still open on them: then it is rolled back."""
    db = Database(sqlite_copy(sqlite_template_file, tmp_path))
    try:

        async def left_open(driver: Driver) -> None:
            await driver.fetch("BEGIN IMMEDIATE", {})
            await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "lost", "exp": 1})

        await db.autocommit(left_open)
        async with db.write() as session:  # the one write connection, free again
            session.add(JwtReplay(iss="did:web:a", jti="kept", exp=1))
        async with db.read() as session:
            assert list(await session.scalars(select(JwtReplay.jti))) == ["kept"]
    finally:
        await db.dispose()


async def test_sqlite_statements_keep_the_cursor_semantics_sqlalchemy_relies_on(
    tmp_path: Path, sqlite_template_file: Path
) -> None:
    """Each SQLite statement runs in one trip to aiosqlite's thread (server/db/sqlite_driver.py):
    row counts, inserted ids, fetched rows and errors come back as from aiosqlite's own cursor."""
    db = Database(sqlite_copy(sqlite_template_file, tmp_path))
    try:
        async with db.write() as session:
            connection = await session.connection()
            many = await connection.execute(
                insert(JwtReplay), [{"iss": "did:web:a", "jti": f"j{n}", "exp": n} for n in range(3)]
            )
            assert many.rowcount == 3
            changed = await connection.execute(update(JwtReplay).where(JwtReplay.exp >= 1).values(exp=9))
            assert changed.rowcount == 2
            rows = await connection.execute(select(JwtReplay.jti, JwtReplay.exp).order_by(JwtReplay.jti))
            assert rows.all() == [("j0", 0), ("j1", 9), ("j2", 9)]
        with pytest.raises(IntegrityError):
            async with db.write() as session:
                session.add(JwtReplay(iss="did:web:a", jti="j0", exp=1))
        assert await replays(db) == 3
    finally:
        await db.dispose()

"""aiosqlite with one trip to its thread per statement.

aiosqlite runs each SQLite call on the connection's own thread, and SQLAlchemy makes four such calls
per statement (open a cursor, execute, fetch, close): four thread wake-ups each way, which cost more
than SQLite's own work on the small statements of a request. The cursor here executes, fetches every
row and closes in one call. Rows are therefore always fetched whole (SQLite has no server-side
cursor to save memory with anyway: aiosqlite's would only fetch in slices from the same thread).

It relies on ``aiosqlite.Connection._execute`` (run a function on the connection's thread) and
``_conn`` (the ``sqlite3`` connection), stable across the aiosqlite versions the project allows.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any

import aiosqlite

ITER_CHUNK_SIZE = 64


class Cursor:
    """The cursor of :class:`Connection`: what SQLAlchemy's aiosqlite adapter uses of one."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        await self._connection.run(self._run, "execute", sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> Cursor:
        await self._connection.run(self._run, "executemany", sql, parameters)
        return self

    def _run(self, method: str, sql: str, parameters: Any) -> None:
        """On the connection's thread."""
        cursor = self._connection.sqlite.cursor()
        try:
            getattr(cursor, method)(sql, parameters)
            self.description = cursor.description
            self._rows = cursor.fetchall() if cursor.description else []
            self.rowcount, self.lastrowid = cursor.rowcount, cursor.lastrowid
        finally:
            cursor.close()

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = size or self.arraysize
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def close(self) -> None:
        return None


class Connection(aiosqlite.Connection):
    def cursor(self) -> Cursor:  # type: ignore[override]
        return Cursor(self)

    async def run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` on the connection's thread."""
        return await self._execute(function, *args)  # type: ignore[no-untyped-call]

    @property
    def sqlite(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = self._conn
        return connection


def connect(database: str, **kwargs: Any) -> Connection:
    """What ``aiosqlite.connect`` does, with this module's connection (SQLAlchemy's
    ``async_creator_fn``)."""
    connection = Connection(partial(sqlite3.connect, database, **kwargs), ITER_CHUNK_SIZE)
    connection._thread.daemon = True  # as SQLAlchemy makes aiosqlite's: it must not keep a process alive
    return connection

"""Engines and transactions.

``Database.write()`` opens a transaction that may write; ``Database.read()`` one that only reads.
On PostgreSQL both use one pool (READ COMMITTED; writers lock the rows they depend on). On SQLite
(WAL) a write transaction starts with ``BEGIN IMMEDIATE`` so writers queue for the one write lock up
front instead of failing on upgrade, and readers use plain ``BEGIN`` and never wait for writers.

``Database.autocommit()`` sends statements straight to the driver on a write connection, outside any
transaction: each commits on its own, in one round trip (a call spends its token this way,
``server.domain.apps.spend_token``). ``driver_of(session)`` sends statements straight to the driver in
a session's own transaction: the hot paths write their statements once as SQL and skip the ORM's
work per statement (``server/db/rows.py``, ADR 0015). ``Database.transaction()`` is a write
transaction on the driver alone, without the session, for the paths that need no ORM at all
(check-ins, holds, payment completions: ADR 0020).

Every engine runs with ``hide_parameters=True``: a database error never carries the statement's
parameters (buyer emails, names, tokens) into its text, and so into a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from asyncpg.exceptions import IntegrityConstraintViolationError, PostgresError, UndefinedFunctionError
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

from server.db import sqlite_driver
from server.settings import POOL_SIZE

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A write transaction's start on SQLite, sent with its first statement (Driver.begin_with_next).
_BEGIN_IMMEDIATE: tuple[str, dict[str, Any]] = ("BEGIN IMMEDIATE", {})
# Values of one ``IN (…)`` list per statement on SQLite (:meth:`Driver.fetch_in`).
IN_SLICE = 500
T = TypeVar("T")
# What either driver raises for a statement that breaks a unique, foreign-key or check constraint.
_BROKEN_CONSTRAINT = (IntegrityConstraintViolationError, sqlite3.IntegrityError)
# What either driver raises when the database refused a statement, the connection still usable.
_REFUSED = (PostgresError, sqlite3.Error)
# What ends a statement that locks the rows it reads, on PostgreSQL (Driver.for_update).
_LOCKING = " FOR NO KEY UPDATE"


def _locking(of: str | None) -> str:
    """PostgreSQL's clause that locks the rows a SELECT reads, of the table aliased ``of`` only."""
    return _LOCKING if of is None else f"{_LOCKING} OF {of}"


_NAMED_PARAMETER = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


@functools.lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters as asyncpg's ``$1``, ``$2``…, and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _NAMED_PARAMETER.sub(number, sql), tuple(names)


@functools.lru_cache(maxsize=256)
def _renamed(sql: str, prefix: str) -> str:
    """``sql`` with each ``:name`` parameter as ``:<prefix>name``."""
    return _NAMED_PARAMETER.sub(lambda match: f":{prefix}{match[1]}", sql)


def _list_slot(name: str) -> re.Pattern[str]:
    """Where a list parameter may stand: ``IN (:name)``, not after ``NOT`` (``= ANY`` has no such
    negation on PostgreSQL; a statement wanting one says ``<> ALL`` itself)."""
    return re.compile(rf"(?<!NOT )\bIN \(:{name}\)")


def _checked(sql: str, name: str) -> None:
    """Refuse, on either engine alike, a list parameter standing anywhere but ``IN (:name)``."""
    slots = len(_list_slot(name).findall(sql))
    if not slots or slots != len(re.findall(rf":{name}\b", sql)):
        raise ValueError(f"the list parameter {name} is not written as IN (:{name})")


@functools.lru_cache(maxsize=256)
def _expanded(sql: str, lengths: tuple[tuple[str, int], ...]) -> str:
    """``IN (:name)`` with a list of ``n`` values as ``IN (:name__0, …, :name__n-1)`` (SQLite)."""
    for name, length in lengths:
        _checked(sql, name)
        sql = re.sub(rf":{name}\b", ", ".join(f":{name}__{i}" for i in range(length)), sql)
    return sql


@functools.lru_cache(maxsize=256)
def _as_arrays(sql: str, names: tuple[str, ...]) -> str:
    """``IN (:name)`` as ``= ANY(:name)``, the list sent as one array parameter (PostgreSQL): one
    statement text whatever the list's length, so prepared once, and planned as one array."""
    for name in names:
        _checked(sql, name)
        sql = _list_slot(name).sub(f"= ANY(:{name})", sql)
    return sql


class Read(NamedTuple):
    """One statement of :class:`Together`: its select list (JSON columns cast to text, as
    ``Shape.portable_columns`` writes them), the rest of it, and whether it locks the rows it reads
    (of the table aliased ``of`` only, as :meth:`Driver.for_update`)."""

    select: str
    rest: str
    lock: bool = False
    of: str | None = None

    @property
    def text(self) -> str:
        """The statement on its own (without its lock's clause, which is the engine's)."""
        return f"SELECT {self.select} {self.rest}"


# Where the functions of every Together live: a schema of their own, which backups leave out (a
# server of the current version makes them again) and a database may grant apart.
FUNCTIONS_SCHEMA = "tickets_functions"
# The functions of every Together made so far, by name, each with the statement that makes it.
_FUNCTIONS: dict[str, str] = {}
# What each PostgreSQL connection was given, by function: made, or not (the database refused).
_MADE_ON: weakref.WeakKeyDictionary[Any, dict[str, bool]] = weakref.WeakKeyDictionary()
_REFUSED_ONCE: set[str] = set()
log = logging.getLogger(__name__)


class Together:
    """Read statements that run one after the other, each with a snapshot of its own, as if sent one
    by one: under READ COMMITTED a statement sees what the transaction a lock before it waited for
    committed. On PostgreSQL they are one round trip, a PL/pgSQL function made from the statements
    themselves (so there is no second copy of them to keep), named by a digest of its text: a
    server of another version makes and calls its own, and a pooler in transaction mode finds it
    on every server connection. On SQLite, with no round trip to save, they run one by one in one
    trip to the connection's thread; on a PostgreSQL connection that could not make the function,
    they are sent one by one.
    ``parameters``: each one's name and PostgreSQL type, ``[]`` for a list (``IN (:name)``).
    Answers the rows of each statement."""

    def __init__(self, name: str, parameters: Sequence[tuple[str, str]], reads: Sequence[Read]) -> None:
        self.names = tuple(parameter for parameter, _ in parameters)
        self.reads = tuple(reads)
        self.used = tuple(frozenset(_NAMED_PARAMETER.findall(read.text)) for read in self.reads)
        lists = {parameter for parameter, kind in parameters if kind.endswith("[]")}
        position = {parameter: f"${at}" for at, parameter in enumerate(self.names, start=1)}
        body = " ".join(
            _NAMED_PARAMETER.sub(
                lambda match: position[match[1]],
                _as_arrays(
                    f"RETURN QUERY SELECT {at}, json_build_array({read.select}) {read.rest}"
                    f"{_locking(read.of) if read.lock else ''};",
                    tuple(sorted(lists & used)),
                ),
            )
            for at, (read, used) in enumerate(zip(self.reads, self.used, strict=True))
        )
        kinds = ", ".join(kind for _, kind in parameters)
        # VOLATILE (the default, written out): each statement in it takes a snapshot of its own.
        # use_column: a column of the statements named like the function's own output is the column.
        text = (
            f"({kinds}) RETURNS TABLE (part integer, found json) LANGUAGE plpgsql VOLATILE "
            f"AS $body$ #variable_conflict use_column\nBEGIN {body} END $body$"
        )
        digest = hashlib.sha256(text.encode()).hexdigest()
        named = f"{name}_{digest[:16]}"
        assert len(named) <= 63, f"{name} is too long for a PostgreSQL name with its digest"
        self.function = f"{FUNCTIONS_SCHEMA}.{named}"
        # Made once by whichever connection comes first, the others waiting for it (the lock).
        _FUNCTIONS[self.function] = (
            f"DO $made$ BEGIN IF to_regprocedure('{self.function}({kinds})') IS NULL THEN "
            f"PERFORM pg_advisory_xact_lock({int(digest[:15], 16)}); "
            f"CREATE SCHEMA IF NOT EXISTS {FUNCTIONS_SCHEMA}; "
            f"CREATE OR REPLACE FUNCTION {self.function}{text}; END IF; END $made$"
        )
        self.call = f"SELECT part, found FROM {self.function}({', '.join(position.values())})"  # noqa: S608 (constant names)


class Driver:
    """The driver's own connection (asyncpg, or sqlite3 through aiosqlite): outside any transaction
    (each statement commits on its own, ``Database.autocommit``), in a session's transaction
    (:func:`driver_of`) or in a :class:`Transaction` of its own. SQL is written once, with
    ``:name`` parameters; a list or tuple value fills ``IN (:name)``: on PostgreSQL as one array
    (``= ANY``), on SQLite spread over as many parameters.

    ``failed``: a statement failed, so the transaction it ran in can only roll back. ``broken``:
    the failure was not the database refusing a statement (it was cut off, or the connection was
    lost), so the connection's state is unknown and it is not reused."""

    def __init__(self, connection: Any, *, sqlite: bool, defers: bool = False) -> None:
        self._connection = connection
        self.sqlite = sqlite
        self.defers = defers
        self.failed = False
        self.broken = False
        self._later: list[tuple[str, dict[str, Any]]] = []

    def for_update(self, of: str | None = None) -> str:
        """What ends a SELECT that locks the rows it reads (of the table aliased ``of`` only): nothing
        on SQLite, whose write transactions hold the one write lock from their start. On PostgreSQL
        the lock an UPDATE of non-key columns takes (``FOR NO KEY UPDATE``): lockers of a row still
        wait for each other, but a transaction that inserts a row naming the locked one (a foreign
        key's share lock) does not wait for them, nor they for it."""
        if self.sqlite:
            return ""
        return _locking(of)

    def _spread(self, sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        lists = tuple((k, len(v)) for k, v in params.items() if isinstance(v, list | tuple))
        if not lists:
            return sql, params
        if not self.sqlite:
            arrays = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
            return _as_arrays(sql, tuple(name for name, _ in lists)), arrays
        flat = {k: v for k, v in params.items() if not isinstance(v, list | tuple)}
        for name, _ in lists:
            flat.update((f"{name}__{i}", value) for i, value in enumerate(params[name]))
        return _expanded(sql, lists), flat

    def interrupt(self) -> None:
        """Stop what still runs on SQLite's thread after its caller gave up on it (a statement
        would hold the write lock until its end); on PostgreSQL closing the connection does. A
        connection already closed has nothing to stop."""
        if self.sqlite:
            with contextlib.suppress(ValueError, sqlite3.ProgrammingError):
                self._connection.sqlite.interrupt()

    async def _sent(self, sql: str, statement: Awaitable[T]) -> T:
        """``statement``'s answer; a failure marks the connection (``failed``, ``broken``), and a
        broken constraint raises SQLAlchemy's ``IntegrityError`` as the ORM would (without the
        parameters)."""
        try:
            return await statement
        except _BROKEN_CONSTRAINT as exc:
            self.failed = True
            raise IntegrityError(sql, None, exc, hide_parameters=True) from exc
        except _REFUSED:
            self.failed = True
            raise
        except BaseException:
            self.failed = self.broken = True
            raise

    async def later(self, sql: str, params: dict[str, Any]) -> None:
        """A write (a plain INSERT or UPDATE, no ``WITH``) that nothing the transaction does after it
        reads or writes again: in a transaction that defers writes (``defers``, a
        :class:`Transaction`), sent with the other writes left so before the transaction's next
        statement of any other kind (a read, which then sees them, a write sent at once, the
        commit); elsewhere sent now. On PostgreSQL they are one statement, whose writes see one
        snapshot, in an order of the database's choosing: two of them never change the same row. On
        SQLite they run one after the other, in one trip to the connection's thread."""
        if sql.startswith("WITH ") or " RETURNING " in sql:
            raise ValueError("only a plain INSERT or UPDATE is left for later")
        if self.defers:
            self._later.append((sql, params))
        else:
            await self.execute(sql, params)

    async def _send_later(self) -> None:
        """The statements left for later, on their own: on SQLite in one trip (:meth:`_after_later`,
        a ``BEGIN IMMEDIATE`` not sent yet included); on PostgreSQL the writes (:meth:`later`) in one
        statement, the last one's, the others in its ``WITH``, each with its parameters renamed apart."""
        if not self._later:
            return
        if self.sqlite:
            await self._after_later(self._later[-1][0], [])
            return
        writes, self._later = self._later, []
        *heads, (sql, params) = writes
        try:
            if heads:
                params = dict(params)
                parts = []
                for at, (head, head_params) in enumerate(heads):
                    parts.append(f"later_{at} AS ({_renamed(head, f'later_{at}_')})")
                    params.update((f"later_{at}_{name}", value) for name, value in head_params.items())
                sql = f"WITH {', '.join(parts)} {sql}"
            await self._execute(sql, params)
        except BaseException:
            self.failed = True  # the writes are gone: the transaction can only roll back
            raise

    def begin_with_next(self) -> None:
        """SQLite: begin the transaction with the next statement sent, in its trip to the
        connection's thread: the write lock ``BEGIN IMMEDIATE`` takes is then held from the first
        statement's trip on, not from a trip of its own."""
        self._later.append(_BEGIN_IMMEDIATE)

    def nothing_sent(self) -> bool:
        """Whether the transaction has sent no statement and has none left for later but its
        ``BEGIN IMMEDIATE`` (:meth:`begin_with_next`): it has nothing to commit or roll back."""
        return self._later == [_BEGIN_IMMEDIATE]

    async def _after_later(
        self, label: str, statements: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[list[tuple[Any, ...]]]:
        """SQLite: the rows of each of ``statements``, in one trip to the connection's thread after
        the statements left for later (``label`` names them in an error)."""
        unsent, self._later = self._later, []
        try:
            found = await self._in_one_trip(label, [*unsent, *statements])
        except BaseException:
            self.failed = True  # what was left for later is gone: the transaction can only roll back
            raise
        return found[len(unsent) :]

    async def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if self.sqlite and self._later:
            return (await self._after_later(sql, [(sql, params)]))[0]
        await self._send_later()
        sql, params = self._spread(sql, params)
        if self.sqlite:
            rows = await self._sent(sql, self._connection.execute_fetchall(sql, params))
        else:
            numbered, names = _numbered(sql)
            rows = await self._sent(sql, self._connection.fetch(numbered, *(params[n] for n in names)))
        return [tuple(row) for row in rows]

    async def fetch_in(
        self, sql: str, params: dict[str, Any], name: str, values: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """``sql`` with ``IN (:name)`` over ``values``: on PostgreSQL one statement (one array), on
        SQLite in slices of :data:`IN_SLICE` (it bounds the parameters of one statement), the rows
        of every slice together."""
        if not self.sqlite:
            return await self.fetch(sql, {**params, name: list(values)}) if values else []
        values = list(dict.fromkeys(values))  # a value in two slices would answer its rows twice
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(values), IN_SLICE):
            rows += await self.fetch(sql, {**params, name: list(values[start : start + IN_SLICE])})
        return rows

    async def execute_many(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        """One statement (no list parameters) for each of ``rows``: PostgreSQL pipelines them."""
        if not rows:
            return
        await self._send_later()
        if self.sqlite:
            await self._sent(sql, self._connection.executemany(sql, rows))
        else:
            numbered, names = _numbered(sql)
            values = [tuple(row[n] for n in names) for row in rows]
            await self._sent(sql, self._connection.executemany(numbered, values))

    async def copy(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """``rows`` (values in the order of ``columns``) into ``table`` by ``COPY`` (PostgreSQL)."""
        await self._send_later()
        copied = self._connection.copy_records_to_table(table, records=rows, columns=list(columns))
        await self._sent(f"COPY {table}", copied)

    async def _in_one_trip(
        self, label: str, statements: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[list[tuple[Any, ...]]]:
        """SQLite: the rows of each statement, run one after the other in one trip to the
        connection's thread (:func:`_rows_of_each`); ``label`` names them in an error."""
        spread = [self._spread(sql, params) for sql, params in statements]
        return await self._sent(label, self._connection.run(_rows_of_each, self._connection.sqlite, spread))

    async def read(self, read: Read, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one :class:`Read` sent on its own, its lock's clause included."""
        return await self.fetch(read.text + (self.for_update(read.of) if read.lock else ""), params)

    async def one_by_one(self, reads: Together, params: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
        """The rows of each of ``reads``' statements, each sent on its own (one round trip each)."""
        return [
            await self.read(read, {n: params[n] for n in used})
            for read, used in zip(reads.reads, reads.used, strict=True)
        ]

    async def together(self, reads: Together, params: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
        """The rows of each of ``reads``' statements (:class:`Together`); on SQLite in one trip to the
        connection's thread with the statements left for later."""
        if self.sqlite:
            statements = [
                (read.text, {n: params[n] for n in used})
                for read, used in zip(reads.reads, reads.used, strict=True)
            ]
            return await self._after_later(reads.function, statements)
        await self._send_later()
        if not _MADE_ON.get(self._connection, {}).get(reads.function):
            return await self.one_by_one(reads, params)
        found: list[list[tuple[Any, ...]]] = [[] for _ in reads.reads]
        try:
            rows = await self._sent(
                reads.call, self._connection.fetch(reads.call, *(params[n] for n in reads.names))
            )
        except UndefinedFunctionError:  # dropped since: made again at the connection's next checkout
            _MADE_ON[self._connection].pop(reads.function, None)
            raise
        for part, values in rows:  # the json as sent, unless the connection decodes it (SQLAlchemy's does)
            found[part].append(tuple(json.loads(values) if isinstance(values, str) else values))
        return found

    async def execute(self, sql: str, params: dict[str, Any]) -> None:
        """A statement that answers no rows (an INSERT, an UPDATE), after the writes left for later
        (on SQLite, in the same trip to the connection's thread)."""
        if self.sqlite and self._later:
            await self._after_later(sql, [(sql, params)])
            return
        await self._send_later()
        await self._execute(sql, params)

    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection (one that never began, or that the database
        ended on an error, has nothing to roll back)."""
        if self.sqlite:
            return bool(self._connection.in_transaction)
        return bool(self._connection.is_in_transaction())

    def drop_later(self) -> None:
        """Forget the writes left for later (and, on SQLite, a ``BEGIN`` not sent yet): the
        transaction rolls back."""
        self._later = []

    async def _execute(self, sql: str, params: dict[str, Any]) -> None:
        sql, params = self._spread(sql, params)
        if self.sqlite:
            await self._sent(sql, self._connection.execute(sql, params))
        else:
            numbered, names = _numbered(sql)
            await self._sent(sql, self._connection.execute(numbered, *(params[n] for n in names)))


def _rows_of_each(
    connection: sqlite3.Connection, statements: Sequence[tuple[str, dict[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """On SQLite's thread: the rows of each statement (none for a write), all of them in one trip
    to the thread (a trip costs more than SQLite's own work on a request's small statements)."""
    found = []
    for sql, params in statements:
        cursor = connection.execute(sql, params)
        try:
            found.append([tuple(row) for row in cursor.fetchall()])
        finally:
            cursor.close()
    return found


_DRIVER = "tickets.driver"


_AT_THE_END = "statements at the end"


async def _given_back(raw: PoolProxiedConnection, driver: Driver | None) -> None:
    """``raw`` back to its pool. Statements were sent on it behind SQLAlchemy's back: a connection
    whose state is unknown (``Driver.broken``: a statement cut off, a lost server) is closed
    instead of reused.

    Then the caller yields once, so that whoever waited for a connection takes this one first: the
    pool's queue wakes its first waiter, but does not keep the connection for it, and a caller
    that asked again at once took it back, again and again (on SQLite's one writer, eight clients
    saw a p99 of 4 s instead of 26 ms)."""
    if driver is not None and driver.broken:
        driver.interrupt()
        await greenlet_spawn(raw.invalidate)
    else:
        raw.close()
    await asyncio.sleep(0)


class Transaction:
    """A write transaction of its own, on the driver alone: what the hot paths write in
    (:meth:`Database.transaction`). Like a session's, it takes its connection from the write pool, and
    begins (``BEGIN IMMEDIATE`` on SQLite), at its first statement: a block that is refused before it
    reaches the database takes neither a connection nor SQLite's write lock. Without the session and
    its engine connection, a transaction costs less than half the client CPU (ADR 0020). On SQLite
    its ``BEGIN IMMEDIATE`` goes to the connection's thread with its first statement, and its last
    writes with its ``COMMIT``: the one write lock is held for one trip fewer at each end (ADR 0025)."""

    __slots__ = ("_driver", "_engine", "_raw", "_sqlite", "info")

    def __init__(self, engine: AsyncEngine, *, sqlite: bool) -> None:
        self._engine = engine
        self._sqlite = sqlite
        self._raw: PoolProxiedConnection | None = None
        self._driver: Driver | None = None
        self.info: dict[str, Any] = {}  # as a session's: what its statements learnt, what is left for the end

    async def driver(self) -> Driver:
        """The transaction's connection, begun at the first call. After a statement failed, the
        transaction can only roll back: asking again raises."""
        if self._driver is not None and self._driver.failed:
            raise PendingRollbackError("a statement of this transaction failed: it can only roll back")
        if self._driver is None:
            self._raw = await self._engine.raw_connection()
            self._driver = Driver(self._raw.driver_connection, sqlite=self._sqlite, defers=True)
            if self._sqlite:
                self._driver.begin_with_next()
            else:
                await self._driver.execute("BEGIN", {})
        return self._driver

    async def commit(self) -> None:
        """Run the statements left for the end (:func:`at_the_end`), then commit."""
        await _run_the_end(self.info)
        if self._driver is not None:
            driver = await self.driver()  # refuses to commit after a failed statement
            if driver.nothing_sent():  # never began: nothing to commit, no lock to take for it
                driver.drop_later()
            else:
                await driver.execute("COMMIT", {})
            self._driver = None  # committed: nothing for close() to roll back

    async def close(self) -> None:
        """Roll back what was not committed and give the connection back (:func:`_given_back`)."""
        raw, driver = self._raw, self._driver
        if raw is None:
            return
        self._raw = self._driver = None
        try:
            if driver is not None and not driver.broken:
                driver.drop_later()
                if driver.in_transaction():
                    try:
                        await driver.execute("ROLLBACK", {})
                    except Exception:
                        driver.broken = True  # a connection that cannot roll back is not reused
        finally:
            await _given_back(raw, driver)


Unit = AsyncSession | Transaction
"""What a hot path's statements are sent in: a session's transaction or a :class:`Transaction`."""


def at_the_end(unit: Unit, statements: Callable[[], Awaitable[None]]) -> None:
    """Leave ``statements`` for the end of ``unit``'s write transaction, after whatever its
    block writes (:meth:`Database.write`, :meth:`Database.transaction`): the statements that take
    its most wanted locks, which are then held for the commit alone. Nothing the block reads may
    depend on them."""
    unit.info.setdefault(_AT_THE_END, []).append(statements)


async def _run_the_end(info: dict[Any, Any]) -> None:
    """The statements left for the end of a write transaction (:func:`at_the_end`), in order."""
    for statements in info.pop(_AT_THE_END, ()):
        await statements()


async def driver_of(session: Unit) -> Driver:
    """The driver's connection of ``session``'s transaction, begun if it was not yet: statements sent
    on it commit or roll back with the session's. Objects the session holds unwritten are written
    first, so the statements see them."""
    if isinstance(session, Transaction):
        return await session.driver()
    if session.new or session.dirty or session.deleted:
        await session.flush()
    transaction = session.sync_session.get_transaction()  # the transaction itself, not a new proxy
    known = session.info.get(_DRIVER)
    if known is not None and transaction is not None and known[0]() is transaction:
        driver: Driver = known[1]
        return driver
    connection = await session.connection()  # begins the session's transaction (SQLite: BEGIN here)
    fairy = await connection.get_raw_connection()
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        adapted: Any = fairy.dbapi_connection
        # SQLAlchemy's asyncpg adapter opens its transaction with the first statement it sends
        # itself; open it now so ours run inside it (tests/integration/test_engine.py holds it to this).
        if adapted._transaction is None:
            await adapted._start_transaction()
    driver = Driver(fairy.driver_connection, sqlite=sqlite)
    # The same transaction asks again at no cost (a new one of the session gets its own). Held by
    # a weak reference: the transaction holds the session, and a cycle would keep every finished
    # session alive until a full garbage collection (long pauses under load).
    session.info[_DRIVER] = (weakref.ref(session.sync_session.get_transaction()), driver)
    return driver


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "async_creator_fn": sqlite_driver.connect},
        pool_reset_on_return=None,  # see _on_reset
        hide_parameters=True,
    )

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, reset_state: Any) -> None:
        # A connection goes back to the pool rolled back only when a transaction is still open on
        # it: the usual unconditional rollback is a trip to aiosqlite's thread on every checkin.
        if not reset_state.terminate_only and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _postgres_engine(url: str, *, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_recycle=1800, hide_parameters=True
    )

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # The functions of every Together made so far, made sure of outside any transaction (a
        # function made in one would go if it rolled back). One the database refuses (a role that
        # may not create it, a server that is read-only) is not tried again on the connection:
        # its statements go one by one there.
        given = _MADE_ON.setdefault(dbapi_connection.driver_connection, {})
        for function in _FUNCTIONS.keys() - given.keys():
            try:
                dbapi_connection.run_async(functools.partial(_create, _FUNCTIONS[function]))
            except PostgresError as refused:
                given[function] = False
                if function not in _REFUSED_ONCE:
                    _REFUSED_ONCE.add(function)
                    # Named and versioned apart: the name with its digest reads as a secret to
                    # the logs' redaction.
                    name, version = function.removeprefix(f"{FUNCTIONS_SCHEMA}.").rsplit("_", 1)
                    log.warning(
                        "the database refused to make the function %s, version %s, in schema %s (%s): "
                        "its statements go one by one",
                        name,
                        version,
                        FUNCTIONS_SCHEMA,
                        type(refused).__name__,
                    )
            else:
                given[function] = True

    return engine


async def _create(sql: str, connection: Any) -> None:
    await connection.execute(sql)


_MADE = (
    "SELECT CAST(p.oid AS regprocedure) AS signature, n.nspname || '.' || p.proname AS function "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :schema"
)


async def drop_stale_functions(driver: Driver) -> list[str]:
    """Drop the functions in :data:`FUNCTIONS_SCHEMA` that this version does not send reads through
    (an earlier version's, made for statements since changed); answers their names. Every module
    that defines a :class:`Together` must have been imported. A server of an earlier version still
    running would find its function gone: its call fails once, and its connection makes it again
    at its next checkout."""
    assert _FUNCTIONS, "no Together is registered: import the modules that define them first"
    stale = [
        (signature, function)
        for signature, function in await driver.fetch(_MADE, {"schema": FUNCTIONS_SCHEMA})
        if function not in _FUNCTIONS
    ]
    for signature, _ in stale:
        await driver.execute(f"DROP FUNCTION IF EXISTS {signature}", {})
    return sorted(function for _, function in stale)


class Database:
    """The service's database: one place that knows the engine differences."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.is_sqlite:
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # One writer at a time is all SQLite allows: queue writers in the pool, not in busy-waits.
            self.write_engine = _sqlite_engine(url, immediate=True, pool_size=1)
            self.read_engine = _sqlite_engine(url, immediate=False, pool_size=pool_size)
        else:
            # A fixed set of connections, kept open: a request beyond it waits for one to come back
            # rather than opening another (a new connection costs a server process on PostgreSQL and
            # a TLS offer, several times a request's own work; overflow ones closed on return made
            # every busy second open hundreds).
            self.write_engine = _postgres_engine(url, pool_size=pool_size)
            self.read_engine = self.write_engine
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends normally and rolls back otherwise; the
        statements left for its end (:func:`at_the_end`) run, in order, just before it commits."""
        async with self._write_sessions() as session, session.begin():
            yield session
            await _run_the_end(session.info)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A write transaction on the driver alone (:class:`Transaction`), for the hot paths: it
        commits when the block ends normally, after the statements left for its end, and rolls back
        otherwise."""
        unit = Transaction(self.write_engine, sqlite=self.is_sqlite)
        try:
            yield unit
            await unit.commit()
        finally:
            await unit.close()

    async def autocommit(self, statements: Callable[[Driver], Awaitable[T]]) -> T:
        """Run ``statements`` on a write connection outside any transaction (see the module's
        docstring); on SQLite they queue for the one writer like a write transaction. Answers what
        ``statements`` answer."""
        raw = await self.write_engine.raw_connection()
        driver = Driver(raw.driver_connection, sqlite=self.is_sqlite)
        try:
            return await statements(driver)
        finally:
            await _given_back(raw, driver)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session, session.begin():
            yield session
            assert _AT_THE_END not in session.info, "statements left for the end of a read transaction"

    def pool_use(self) -> tuple[int, int]:
        """Connections checked out of this process's pools, and connections they hold open."""
        engines = {id(engine): engine for engine in (self.write_engine, self.read_engine)}.values()
        pools = [engine.pool for engine in engines if isinstance(engine.pool, QueuePool)]
        in_use = sum(pool.checkedout() for pool in pools)
        return in_use, in_use + sum(pool.checkedin() for pool in pools)

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()

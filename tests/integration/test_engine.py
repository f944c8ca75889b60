"""Engine plumbing: statements sent straight to the driver, and how SQLite connections go back to
their pool."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import weakref
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from asyncpg.exceptions import LockNotAvailableError
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncSession
from support.databases import sqlite_copy
from support.webhooks import wait_until

from server.db import engine
from server.db.engine import Database, Driver, Read, Together, Unit, at_the_end, driver_of
from server.db.models import App, JwtReplay, LedgerEntry, OutboxMessage
from server.db.rows import COPY_ROWS, Shape, attach, insert_all
from server.log_redaction import redact

INSERT = "INSERT INTO jwt_replays (iss, jti, exp) VALUES (:iss, :jti, CAST(:exp AS BIGINT)) RETURNING jti"
INSERT_ONLY = INSERT.removesuffix(" RETURNING jti")


async def backend_pid(unit: Unit) -> int:
    """The PostgreSQL server process of ``unit``'s connection."""
    ((pid,),) = await (await driver_of(unit)).fetch("SELECT pg_backend_pid()", {})
    return int(pid)


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
        async with db.write() as session:  # and the connection the database refused a statement on works
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


class Abandoned(Exception):
    """Raised to end a write transaction without committing it."""


async def test_statements_sent_in_a_session_commit_and_roll_back_with_it(db: Database) -> None:
    """``driver_of(session)`` sends statements in the session's own transaction, also when they are
    its first (SQLAlchemy's asyncpg adapter begins lazily): they roll back with it, the session's
    own statements see them, and the session's unwritten objects are written before them."""

    async def abandoned() -> None:
        async with db.write() as session:
            driver = await driver_of(session)
            await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "rolled-back", "exp": 1})
            assert await session.scalar(select(func.count()).select_from(JwtReplay)) == 1
            raise Abandoned

    with pytest.raises(Abandoned):
        await abandoned()
    assert await replays(db) == 0
    async with db.write() as session:
        session.add(JwtReplay(iss="did:web:a", jti="pending", exp=1))
        driver = await driver_of(session)
        rows = await driver.fetch("SELECT jti FROM jwt_replays WHERE iss = :iss", {"iss": "did:web:a"})
        assert rows == [("pending",)]
        await driver.execute(INSERT_ONLY, {"iss": "did:web:a", "jti": "x", "exp": 2})
    assert await replays(db) == 2


async def test_a_list_parameter_spreads_over_in(db: Database) -> None:
    async with db.write() as session:
        session.add_all(JwtReplay(iss="did:web:a", jti=f"j{n}", exp=n) for n in range(5))
    async with db.read() as session:
        driver = await driver_of(session)
        query = "SELECT jti FROM jwt_replays WHERE exp IN (:exps) AND iss = :iss ORDER BY jti"
        assert await driver.fetch(query, {"exps": [1, 3], "iss": "did:web:a"}) == [("j1",), ("j3",)]
        assert await driver.fetch(query, {"exps": (4,), "iss": "did:web:a"}) == [("j4",)]


async def test_a_long_list_reads_every_row_it_names(db: Database) -> None:
    """``fetch_in`` over more values than one SQLite statement takes answers every row they name,
    once; on PostgreSQL a list is one array parameter, so even a list longer than a statement's
    limit of 32,767 parameters is one statement."""
    written = [JwtReplay(iss="did:web:a", jti=f"j{n:05}", exp=n) for n in range(1_200)]
    async with db.write() as session:
        await insert_all(await driver_of(session), (Shape(JwtReplay, "j"), written))
    evens = [f"j{n:05}" for n in range(0, 1_200, 2)]
    wanted = evens + evens + ["none"]
    query = "SELECT jti FROM jwt_replays WHERE jti IN (:jtis) AND iss = :iss"
    async with db.read() as session:
        driver = await driver_of(session)
        rows = await driver.fetch_in(query, {"iss": "did:web:a"}, "jtis", wanted[600:] + wanted[:600])
        assert sorted(jti for (jti,) in rows) == evens
        assert await driver.fetch_in(query, {"iss": "did:web:a"}, "jtis", []) == []
        if not driver.sqlite:
            many = [f"j{n:05}" for n in range(40_000)]
            assert len(await driver.fetch(query, {"iss": "did:web:a", "jtis": many})) == 1_200


@pytest.mark.parametrize("sqlite", [True, False], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize(
    "where",
    ["exp = :exps", "exp NOT IN (:exps)", "exp IN (:exps) OR iss = :exps", "exp in (:exps)"],
    ids=["equals", "not-in", "also-elsewhere", "lowercase"],
)
async def test_a_list_parameter_must_fill_an_in(sqlite: bool, where: str) -> None:
    """A list parameter anywhere but ``IN (:name)`` is a mistake in the statement, named as such
    on either engine, before anything is sent."""
    driver = Driver(None, sqlite=sqlite)
    with pytest.raises(ValueError, match="IN \\(:exps\\)"):
        await driver.fetch(f"SELECT jti FROM jwt_replays WHERE {where}", {"exps": [1, 2]})


async def test_a_shape_writes_and_reads_what_the_orm_does(db: Database) -> None:
    """A row inserted by a Shape reads back through the ORM as it was written (JSON, booleans,
    defaults), the ORM's rows load through a Shape the same, and an attached object's later
    changes are written by the session."""
    shape = Shape(App, "a")
    written = App(id="app_1", did="did:web:a", environment="test", created_ms=1, updated_ms=2)
    async with db.write() as session:
        await shape.insert(await driver_of(session), written)
        attach(session, written)
        written.name = "changed later"
        written.fee_to_buyer = True
    async with db.read() as session:
        app = await session.get(App, "app_1")
        assert app is not None
        assert (app.name, app.status, app.fee_bps, app.fee_to_buyer, app.delivery) == (
            "changed later",
            "active",
            0,
            True,
            "webhook",
        )
        rows = await (await driver_of(session)).fetch(f"SELECT {shape.columns} FROM apps a", {})
        loaded = shape.load(rows[0])
        assert {k: getattr(loaded, k) for k in ("id", "name", "fee_to_buyer", "updated_ms")} == {
            "id": "app_1",
            "name": "changed later",
            "fee_to_buyer": True,
            "updated_ms": 2,
        }
    entry = LedgerEntry(
        at_ms=1,
        environment="test",
        subject="hold",
        subject_id="h",
        action="held",
        data={"items": {"t": 2}, "none": None},
    )
    async with db.write() as session:
        await Shape(LedgerEntry, "l").insert(await driver_of(session), entry)
    async with db.read() as session:
        assert (await session.scalars(select(LedgerEntry.data))).one() == {"items": {"t": 2}, "none": None}


async def test_many_rows_of_a_shape_read_back_as_written_and_keep_their_constraints(db: Database) -> None:
    """From ``COPY_ROWS`` instances on, PostgreSQL takes them by COPY: JSON (with nulls inside),
    absent values and defaults read back through the ORM as one statement each would have written
    them, and a broken unique constraint is SQLAlchemy's ``IntegrityError`` all the same."""
    entries = [
        LedgerEntry(
            at_ms=n,
            environment="test",
            subject="hold",
            subject_id=f"h{n}",
            action="held",
            data={"n": n, "x": None},
        )
        for n in range(COPY_ROWS + 5)
    ]
    async with db.write() as session:
        await Shape(LedgerEntry, "l").insert_many(await driver_of(session), entries)
    async with db.read() as session:
        read = (await session.scalars(select(LedgerEntry).order_by(LedgerEntry.at_ms))).all()
    assert [(e.at_ms, e.subject_id, e.data, e.actor) for e in read] == [
        (n, f"h{n}", {"n": n, "x": None}, None) for n in range(COPY_ROWS + 5)
    ]
    twice = [JwtReplay(iss="did:web:a", jti=f"j{n % COPY_ROWS}", exp=n) for n in range(COPY_ROWS + 1)]
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await Shape(JwtReplay, "j").insert_many(await driver_of(session), twice)
    assert await replays(db) == 0


async def test_a_session_asks_for_its_driver_again_in_each_transaction(db: Database) -> None:
    """The driver a transaction got is answered again within it, and a later transaction of the same
    session gets its own: what it sends rolls back with that one."""
    async with AsyncSession(db.write_engine) as session:
        first = await driver_of(session)
        assert await driver_of(session) is first
        await first.execute(INSERT_ONLY, {"iss": "did:web:a", "jti": "kept", "exp": 1})
        await session.commit()
        second = await driver_of(session)
        await second.execute(INSERT_ONLY, {"iss": "did:web:a", "jti": "undone", "exp": 1})
        await session.rollback()
    async with db.read() as session:
        assert list(await session.scalars(select(JwtReplay.jti))) == ["kept"]


async def test_a_finished_session_is_freed_without_the_garbage_collector(db: Database) -> None:
    """Asking a session for its driver leaves no reference cycle behind: a session kept until a
    full collection holds everything it loaded, and those collections stall the server under load
    (a check-in's p99 went from 31 to 80 ms)."""
    gc.collect()
    gc.disable()
    try:
        async with db.write() as session:
            await driver_of(session)
            freed = weakref.ref(session.sync_session)
        del session
        assert freed() is None
    finally:
        gc.enable()


async def test_a_broken_constraint_raises_what_the_orm_raises(db: Database) -> None:
    """A duplicate key sent through the driver raises SQLAlchemy's IntegrityError, as the ORM's flush
    does, so the callers that answer a lost race ("stored concurrently: retry", a delivery answered
    as a duplicate) see it whichever route wrote."""
    row = {"iss": "did:web:a", "jti": "one", "exp": 1}
    insert_only = INSERT_ONLY
    async with db.write() as session:
        await (await driver_of(session)).execute(insert_only, row)
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await (await driver_of(session)).execute_many(insert_only, [row])
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await (await driver_of(session)).fetch(INSERT, row)
    assert await replays(db) == 1


async def test_a_shape_update_writes_the_row_and_leaves_nothing_to_flush(db: Database) -> None:
    """``Shape.update`` writes the columns it is given (JSON encoded, other columns untouched) and
    changes the object as already written: a session tracking it sends no second UPDATE, so a
    concurrent change of another column is not overwritten with the object's stale value."""
    shape = Shape(App, "a")
    async with db.write() as session:
        session.add(
            App(id="app_1", did="did:web:a", environment="test", name="first", created_ms=1, updated_ms=1)
        )
    async with db.write() as session:
        app = await session.get(App, "app_1")
        assert app is not None
        await session.execute(update(App).where(App.id == "app_1").values(name="renamed elsewhere"))
        await shape.update(await driver_of(session), app, fee_to_buyer=True, updated_ms=5)
        assert (app.fee_to_buyer, app.updated_ms) == (True, 5)
        assert not session.dirty
    async with db.read() as session:
        stored = await session.get(App, "app_1")
        assert stored is not None
        assert (stored.name, stored.fee_to_buyer, stored.updated_ms) == ("renamed elsewhere", True, 5)


async def test_a_busy_pool_waits_for_its_connections_instead_of_opening_more(database_url: str) -> None:
    """More transactions at once than the pool holds wait their turn on the same connections, which
    stay open: none is opened beyond the pool and closed again (on PostgreSQL a new connection costs
    a server process and a handshake, several times a request's own work)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL pool: SQLite's writers share one connection by design")
    db = Database(database_url, pool_size=3)
    try:

        async def backend() -> int:
            async with db.write() as session:
                pid = await backend_pid(session)
                await asyncio.sleep(0.02)  # still busy when the others arrive
                return pid

        first = set(await asyncio.gather(*(backend() for _ in range(12))))
        again = set(await asyncio.gather(*(backend() for _ in range(12))))
        assert len(first) == 3 and again == first
    finally:
        await db.dispose()


async def test_an_instance_a_shape_makes_is_written_alike_by_the_shape_and_the_session(db: Database) -> None:
    """``Shape.new`` skips the ORM's attribute events: its instance is still written whole by the
    shape and by a session's flush, reads a column left out as its scalar default (as written) or
    None, and refuses a name that is no column."""
    shape = Shape(LedgerEntry, "l")

    def made(subject_id: str) -> LedgerEntry:
        return shape.new(
            at_ms=1, environment="test", subject="hold", subject_id=subject_id, action="held", data={"n": 1}
        )

    assert made("x").actor is None
    app = Shape(App, "a").new(id="app_1", did="did:web:a.example", environment="test", created_ms=1)
    assert (app.fee_bps, app.fee_to_buyer, app.delivery, app.webhook_url) == (0, False, "webhook", None)
    with pytest.raises(AssertionError, match="not columns"):
        shape.new(at_ms=1, subjectId="typo")
    async with db.write() as session:
        await shape.insert(await driver_of(session), made("by-shape"))
        session.add(made("by-session"))
    async with db.read() as session:
        rows = (
            await session.execute(select(LedgerEntry.subject_id, LedgerEntry.data, LedgerEntry.actor))
        ).all()
    assert sorted(map(tuple, rows)) == [("by-session", {"n": 1}, None), ("by-shape", {"n": 1}, None)]


async def test_rows_of_several_shapes_go_in_one_statement_on_postgresql(db: Database) -> None:
    """``insert_all`` writes rows of several tables in one round trip on PostgreSQL (a row may name
    another inserted by the same statement: foreign keys are checked at its end), one statement a
    table on SQLite; None stands for no row."""
    apps_, messages = Shape(App, "a"), Shape(OutboxMessage, "o")
    app = apps_.new(id="app_1", did="did:web:a", environment="test", created_ms=1, updated_ms=1)
    message = messages.new(
        delivery_id="whd_1",
        app_id="app_1",
        environment="test",
        event_type="ticket.hold.created",
        body="{}",
        state="pending",
        attempts=0,
        next_attempt_ms=1,
        created_ms=1,
    )
    async with db.write() as session:
        driver = await driver_of(session)
        sent = sent_by(driver)
        await insert_all(
            driver, (apps_, [app]), (messages, [message, None]), (Shape(LedgerEntry, "l"), [None])
        )
    assert len(sent) == (2 if db.is_sqlite else 1)
    async with db.read() as session:
        assert (await session.scalars(select(OutboxMessage.app_id))).all() == ["app_1"]


@pytest.mark.parametrize("kind", ["write", "transaction"])
async def test_statements_left_for_the_end_run_last_in_the_transaction(db: Database, kind: str) -> None:
    """``at_the_end``: what a write block (a session's or a driver's :class:`Transaction`) leaves
    for its end runs after everything the block wrote, in the order left, before the commit and
    inside the transaction (a failure there undoes the block's writes); a block that fails runs none
    of it."""
    sent: list[str] = []
    begin: Callable[[], AbstractAsyncContextManager[Unit]] = getattr(db, kind)

    async def insert(session: Unit, jti: str) -> None:
        sent.append(jti)
        await (await driver_of(session)).fetch(INSERT, {"iss": "did:web:a", "jti": jti, "exp": 1})

    async with begin() as session:
        at_the_end(session, functools.partial(insert, session, "last"))
        at_the_end(session, functools.partial(insert, session, "after last"))
        await insert(session, "block")
    assert sent == ["block", "last", "after last"] and await replays(db) == 3

    async def refused_at_the_end() -> None:
        async with begin() as session:
            at_the_end(session, functools.partial(insert, session, "block"))  # a replay: refused
            await insert(session, "undone")

    async def failed() -> None:
        async with begin() as session:
            at_the_end(session, functools.partial(insert, session, "never"))
            raise Abandoned

    with pytest.raises(IntegrityError):
        await refused_at_the_end()
    assert await replays(db) == 3
    with pytest.raises(Abandoned):
        await failed()
    assert "never" not in sent and await replays(db) == 3


async def test_a_transaction_commits_at_its_end_and_undoes_a_failed_block(db: Database) -> None:
    """A :class:`Transaction`'s writes are seen by no one else before its block ends, are committed
    when it ends normally, and are undone when it fails."""
    async with db.transaction() as unit:
        await (await unit.driver()).fetch(INSERT, {"iss": "did:web:a", "jti": "kept", "exp": 1})
        assert await replays(db) == 0
    assert await replays(db) == 1

    async def failed() -> None:
        async with db.transaction() as unit:
            await (await unit.driver()).fetch(INSERT, {"iss": "did:web:a", "jti": "undone", "exp": 1})
            raise Abandoned

    with pytest.raises(Abandoned):
        await failed()
    assert await replays(db) == 1
    assert db.pool_use()[0] == 0  # every connection given back


async def test_a_transaction_takes_its_connection_at_its_first_statement(db: Database) -> None:
    """Until it sends a statement, a :class:`Transaction` holds no connection and, on SQLite, not
    the one write lock: another writer finishes meanwhile (it would wait for the block's end)."""
    async with db.transaction() as unit:
        assert db.pool_use()[0] == 0
        async with asyncio.timeout(10):
            async with db.write() as session:
                session.add(JwtReplay(iss="did:web:a", jti="meanwhile", exp=1))
        await (await unit.driver()).fetch(INSERT, {"iss": "did:web:a", "jti": "mine", "exp": 1})
        assert db.pool_use()[0] == 1
    assert await replays(db) == 2 and db.pool_use()[0] == 0


async def test_a_transaction_interrupted_mid_statement_leaves_nothing_behind(db: Database) -> None:
    """A statement cut off (a request cancelled, a deadline) leaves its transaction's connection in
    an unknown state: it is closed, not given back, so nothing the block wrote commits later, and
    the next transactions run at once. On SQLite the statement is stopped too: left to run on its
    thread, it held the one write lock for half a minute here."""
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )

    async def cut_off() -> None:
        async with asyncio.timeout(0.3), db.transaction() as unit:
            driver = await unit.driver()
            await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "cut off", "exp": 1})
            await driver.fetch(slow, {})

    with pytest.raises(TimeoutError):
        await cut_off()
    async with asyncio.timeout(10):
        async with db.transaction() as unit:
            await (await unit.driver()).fetch(INSERT, {"iss": "did:web:a", "jti": "next", "exp": 1})
        async with db.read() as session:
            assert list(await session.scalars(select(JwtReplay.jti))) == ["next"]


async def test_callers_waiting_for_a_connection_take_turns(database_url: str) -> None:
    """A connection given back goes to whoever waited for it, not to the caller that gave it back
    and asks again at once: with one connection and eight callers each writing in turn (a spend,
    then a transaction, as a request does), no caller gets ahead of another by more than a few
    of rounds. Without the turn, one caller ran hundreds of rounds while the others waited."""
    db = Database(database_url, pool_size=1)
    done = [0] * 8
    spread = 0
    try:

        async def caller(index: int) -> None:
            nonlocal spread
            for round_ in range(40):
                jti = f"{index}-{round_}"
                spend = {"iss": "s", "jti": jti, "exp": 1}
                await db.autocommit(functools.partial(Driver.execute, sql=INSERT_ONLY, params=spend))
                async with db.transaction() as unit:
                    await (await unit.driver()).execute(INSERT_ONLY, {"iss": "t", "jti": jti, "exp": 1})
                done[index] += 1
                spread = max(spread, max(done) - min(done))

        async with asyncio.timeout(120):
            await asyncio.gather(*(caller(i) for i in range(8)))
        assert await replays(db) == 8 * 40 * 2
        assert spread <= 5, f"a caller got {spread} rounds ahead of another"
    finally:
        await db.dispose()


async def test_a_transaction_whose_statement_failed_does_not_commit(db: Database) -> None:
    """A block that catches a failed statement and carries on cannot commit what it wrote before
    it: asking for the driver again, or ending the block, raises, and the transaction rolls back
    (on PostgreSQL a COMMIT of a failed transaction would have rolled back without a word)."""

    async def caught_and_carried_on() -> None:
        async with db.transaction() as unit:
            driver = await unit.driver()
            await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "before", "exp": 1})
            with contextlib.suppress(IntegrityError):
                await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "before", "exp": 1})
            with pytest.raises(PendingRollbackError):
                await unit.driver()

    with pytest.raises(PendingRollbackError):
        await caught_and_carried_on()
    assert await replays(db) == 0 and db.pool_use()[0] == 0


async def test_a_refused_statement_keeps_its_connection(database_url: str) -> None:
    """A statement the database refuses (a broken constraint) leaves the connection usable: its
    transaction rolls back and the connection goes back to the pool, not closed and opened again
    (on PostgreSQL a new connection is a new server process)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server process per connection")
    db = Database(database_url, pool_size=1)
    try:

        async def backend() -> int:
            async with db.transaction() as unit:
                return await backend_pid(unit)

        async def refused() -> None:
            async with db.transaction() as unit:
                driver = await unit.driver()
                await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "twice", "exp": 1})
                await driver.fetch(INSERT, {"iss": "did:web:a", "jti": "twice", "exp": 1})

        first = await backend()
        with pytest.raises(IntegrityError):
            await refused()
        once = functools.partial(
            Driver.execute, sql=INSERT_ONLY, params={"iss": "a", "jti": "once", "exp": 1}
        )
        await db.autocommit(once)
        with pytest.raises(IntegrityError):
            await db.autocommit(once)
        assert await backend() == first and await replays(db) == 1
    finally:
        await db.dispose()


# Made when this module is imported: each connection makes sure of its function at its first checkout.
LOCK_THEN_COUNT = Together(
    "tickets_test_lock_then_count",
    [("locked", "text"), ("iss", "text")],
    [
        # The lock, and the same count as the next statement's, read by the locking statement.
        Read(
            "r.jti, (SELECT COUNT(*) FROM jwt_replays c WHERE c.iss = :iss)",
            "FROM jwt_replays r WHERE r.jti = :locked",
            lock=True,
        ),
        Read("COUNT(*)", "FROM jwt_replays r WHERE r.iss = :iss"),
    ],
)
LEDGER = Shape(LedgerEntry, "l")
LEDGER_ROWS = Together(
    "tickets_test_ledger_rows",
    [("subjects", "text[]")],
    [Read(LEDGER.portable_columns, "FROM ledger l WHERE l.subject_id IN (:subjects) ORDER BY l.subject_id")],
)


# A lock of the rows of one table of a join (``Read.of``), and of every table's (the control).
_REPLAY_AND_ENTRY = (
    "r.jti, l.subject_id",
    "FROM jwt_replays r JOIN ledger l ON l.subject_id = r.jti WHERE r.jti = :locked",
)
LOCK_OF_ONE = Together(
    "tickets_test_lock_of_one", [("locked", "text")], [Read(*_REPLAY_AND_ENTRY, lock=True, of="r")]
)
LOCK_OF_ALL = Together(
    "tickets_test_lock_of_all", [("locked", "text")], [Read(*_REPLAY_AND_ENTRY, lock=True)]
)


async def test_a_lock_of_one_table_leaves_the_rows_joined_to_it_free(db: Database) -> None:
    """A statement sent together that locks the rows of one table of its join (a check-in's ticket,
    joined to its app, its list and its event) leaves the other tables' rows free: another
    transaction may lock them meanwhile. Locking every table's rows, the control, does not."""
    if db.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: nothing can wait for a row's lock")
    async with db.transaction() as unit:
        driver = await unit.driver()
        await driver.fetch(INSERT, {"iss": "did:web:lock", "jti": "joined", "exp": 1})
        entry = LEDGER.new(at_ms=1, environment="test", subject="hold", subject_id="joined", action="made")
        await LEDGER.insert(driver, entry)
    taken: dict[str, list[bool]] = {}
    for name, reads in (("of one", LOCK_OF_ONE), ("of all", LOCK_OF_ALL)):
        async with db.transaction() as holder:
            assert await (await holder.driver()).together(reads, {"locked": "joined"}) == [
                [("joined", "joined")]
            ]
            taken[name] = [
                await _locked_elsewhere(db, "SELECT jti FROM jwt_replays WHERE jti = 'joined'"),
                await _locked_elsewhere(db, "SELECT subject_id FROM ledger WHERE subject_id = 'joined'"),
            ]
    assert taken == {"of one": [True, False], "of all": [True, True]}


async def _locked_elsewhere(db: Database, select: str) -> bool:
    """Whether the rows ``select`` reads are locked by another transaction."""
    try:
        async with db.transaction() as unit:
            await (await unit.driver()).fetch(select + " FOR UPDATE NOWAIT", {})
    except LockNotAvailableError:
        return True
    return False


async def test_statements_together_see_what_the_lock_before_them_waited_for(db: Database) -> None:
    """Statements sent together (one round trip on PostgreSQL) each take their own snapshot: the
    statement after a lock sees what the transaction it waited for committed. The same count read
    by the locking statement itself does not (SQLite runs one writer at a time)."""
    async with db.transaction() as first:
        await (await first.driver()).fetch(INSERT, {"iss": "did:web:lock", "jti": "row", "exp": 1})
    async with db.transaction() as unit:  # a connection of the pool, made before and given back
        found = await (await unit.driver()).together(LOCK_THEN_COUNT, {"locked": "row", "iss": "did:web:a"})
        assert found == [[("row", 0)], [(0,)]]
    if db.is_sqlite:
        return
    assert await _after_waiting(db, "did:web:a") == [[("row", 0)], [(1,)]]


async def _after_waiting(db: Database, iss: str) -> list[list[tuple[Any, ...]]]:
    """What LOCK_THEN_COUNT reads when it waited for the lock of a transaction that then inserted a
    row of ``iss`` and committed."""
    async with db.transaction() as holder:
        holding = await holder.driver()
        await holding.fetch("SELECT jti FROM jwt_replays WHERE jti = 'row' FOR UPDATE", {})

        async def waiting() -> list[list[tuple[Any, ...]]]:
            async with db.transaction() as unit:
                return await (await unit.driver()).together(LOCK_THEN_COUNT, {"locked": "row", "iss": iss})

        waiter = asyncio.create_task(waiting())
        await wait_until(functools.partial(_waits_for_a_lock, db), 60, "the statements to wait for the lock")
        await holding.fetch(INSERT, {"iss": iss, "jti": "committed while it waited", "exp": 1})
    return await asyncio.wait_for(waiter, 60)


async def _waits_for_a_lock(db: Database) -> bool:
    async with db.read() as session:
        rows = await (await driver_of(session)).fetch(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
            {},
        )
    return bool(rows)


async def test_rows_read_together_load_as_the_rows_read_alone(db: Database) -> None:
    """A row carried back in a JSON array loads as the same row read by its own statement: JSON
    columns, large integers and NULLs alike."""
    entries = [
        LEDGER.new(
            at_ms=2**53 + n,
            environment="test",
            subject="hold",
            subject_id=f"s{n}",
            action="created",
            actor=actor,
            data=data,
        )
        for n, (actor, data) in enumerate(
            [(None, {"n": [1, "two", None]}), ("someone", {"é": True}), (None, None)]
        )
    ]
    async with db.transaction() as unit:
        await LEDGER.insert_many(await unit.driver(), entries)
    subjects = ["s0", "s1", "s2"]
    async with db.transaction() as unit:
        driver = await unit.driver()
        (together,) = await driver.together(LEDGER_ROWS, {"subjects": subjects})
        alone = await driver.fetch(
            f"SELECT {LEDGER.columns} FROM ledger l WHERE l.subject_id IN (:subjects) ORDER BY l.subject_id",
            {"subjects": subjects},
        )
    assert [LEDGER.params(LEDGER.load(row)) for row in together] == [
        LEDGER.params(LEDGER.load(row)) for row in alone
    ]
    assert [LEDGER.load(row).data for row in together] == [{"n": [1, "two", None]}, {"é": True}, None]


def sent_by(driver: Driver, sent: list[str] | None = None) -> list[str]:
    """The statements ``driver`` sends from now on, as sent (a spy on its one way out), into
    ``sent`` if given."""
    sent = [] if sent is None else sent
    send = driver._sent

    def counted(sql: str, statement: Any) -> Any:
        sent.append(sql)
        return send(sql, statement)

    driver._sent = counted  # type: ignore[method-assign]
    return sent


def replay(jti: str) -> dict[str, Any]:
    return {"iss": "did:web:later", "jti": jti, "exp": 1}


async def replays_written(db: Database) -> list[str]:
    async with db.read() as session:
        found = await session.scalars(select(JwtReplay.jti).where(JwtReplay.iss == "did:web:later"))
        return sorted(found)


async def test_writes_left_for_later_go_together_before_the_next_statement(db: Database) -> None:
    """In a transaction on the driver, the writes left for later go before the next statement, which
    sees them: to PostgreSQL in one statement (each with its parameters apart), then the statement;
    on SQLite one after the other in the statement's own trip to its thread, with the transaction's
    BEGIN IMMEDIATE if it is the first. The last go before the commit (on SQLite, in its trip)."""
    trips = [1, 2, 3] if db.is_sqlite else [2, 4, 6]
    async with db.transaction() as unit:
        driver = await unit.driver()
        sent = sent_by(driver)
        for jti in "abc":
            await driver.later(INSERT_ONLY, replay(jti))
        assert len(sent) == 0
        counted = await driver.fetch("SELECT COUNT(*) FROM jwt_replays WHERE iss = :iss", replay("-"))
        assert counted == [(3,)]
        assert len(sent) == trips[0]
        await driver.later(INSERT_ONLY, replay("d"))
        await driver.execute(INSERT_ONLY, replay("e"))
        assert len(sent) == trips[1]
        await driver.later(INSERT_ONLY, replay("f"))
    assert len(sent) == trips[2]
    assert await replays_written(db) == ["a", "b", "c", "d", "e", "f"]


async def left_for_later(db: Database, sent: list[str], *jtis: str, then: Exception | None = None) -> None:
    """A transaction that leaves the replays ``jtis`` for later, then raises ``then``; what its
    driver sends after its ``BEGIN`` goes into ``sent``."""
    async with db.transaction() as unit:
        driver = await unit.driver()
        sent_by(driver, sent)
        for jti in jtis:
            await driver.later(INSERT_ONLY, replay(jti))
        if then is not None:
            raise then


async def test_writes_left_for_later_are_dropped_with_a_rollback_and_fail_at_the_commit(db: Database) -> None:
    """A transaction that rolls back sends none of the writes it left for later (on SQLite, where
    its BEGIN IMMEDIATE waited for them, nothing at all, and it never took the write lock); one of
    them that the database refuses fails the commit, and none of the others is written."""
    await left_for_later(db, [], "kept")
    sent: list[str] = []
    with pytest.raises(RuntimeError):
        await left_for_later(db, sent, "dropped", then=RuntimeError("the block fails"))
    assert sent == ([] if db.is_sqlite else ["ROLLBACK"])
    with pytest.raises(IntegrityError):
        await left_for_later(db, [], "new", "kept")  # already written
    assert await replays_written(db) == ["kept"]


async def test_a_transaction_that_sends_nothing_commits_nothing(db: Database) -> None:
    """A transaction asked for its driver that then sends no statement commits nothing: on SQLite,
    where its BEGIN IMMEDIATE waits for a statement, it sends nothing at all and never takes the one
    write lock."""
    async with db.transaction() as unit:
        sent = sent_by(await unit.driver())
    assert sent == ([] if db.is_sqlite else ["COMMIT"])


async def test_a_failed_first_statement_rolls_back_and_the_connection_serves_on(db: Database) -> None:
    """A first statement the database refuses, sent with the transaction's begin and a write left
    for later (on SQLite in one trip), rolls all of it back; the next transaction, on the same
    connection on SQLite, commits."""

    async def twice() -> None:
        async with db.transaction() as unit:
            driver = await unit.driver()
            await driver.later(INSERT_ONLY, replay("twice"))
            await driver.execute(INSERT_ONLY, replay("twice"))

    with pytest.raises(IntegrityError):
        await twice()
    async with db.transaction() as unit:
        await (await unit.driver()).execute(INSERT_ONLY, replay("next"))
    assert await replays_written(db) == ["next"]


async def test_writes_left_for_later_are_never_lost_silently(db: Database) -> None:
    """A statement refused before it reaches the database (a list written where it may not stand),
    after a write left for later: the transaction either still holds the write and commits it
    (PostgreSQL sent it first, on its own) or can only roll back (SQLite would have sent it in the
    refused statement's trip): never a commit without it."""
    committed = True
    try:
        async with db.transaction() as unit:
            driver = await unit.driver()
            await driver.later(INSERT_ONLY, replay("held"))
            with pytest.raises(ValueError, match="is not written as IN"):
                await driver.fetch("SELECT 1 WHERE 1 NOT IN (:xs)", {"xs": [1]})
    except PendingRollbackError:
        committed = False
    assert await replays_written(db) == (["held"] if committed else [])
    assert committed is not db.is_sqlite


async def test_statements_together_take_one_trip_to_sqlites_thread(db: Database) -> None:
    """On SQLite, whose statements run on the connection's own thread, the statements of a
    :class:`Together` go there in one trip, and answer what they answer sent one by one."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL sends them as one function call (the tests above)")
    async with db.transaction() as unit:
        driver = await unit.driver()
        for jti in ("row", "other"):
            await driver.fetch(INSERT, {"iss": "did:web:a", "jti": jti, "exp": 1})
    async with db.transaction() as unit:
        driver = await unit.driver()
        connection = driver._connection
        trips: list[object] = []
        execute = connection._execute  # aiosqlite's: one function run on the thread

        async def counted(function: Any, *args: Any) -> Any:
            trips.append(function)
            return await execute(function, *args)

        connection._execute = counted
        params = {"locked": "row", "iss": "did:web:a"}
        together = await driver.together(LOCK_THEN_COUNT, params)
        assert len(trips) == 1
        assert together == await driver.one_by_one(LOCK_THEN_COUNT, params) == [[("row", 2)], [(2,)]]
        assert len(trips) == 3  # the control: one trip a statement
        del connection._execute  # the pooled connection's own again


async def test_statements_together_go_one_by_one_where_the_function_cannot_be_made(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may not make the function (or a read-only server) still gets its rows, the
    statements sent one by one, and the operator one line saying so; nothing else fails."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite sends the statements one by one anyway")
    role = f"tickets_limited_{os.getpid()}"
    admin = Database(database_url)
    try:
        async with admin.transaction() as unit:
            driver = await unit.driver()
            await driver.execute(f"CREATE ROLE {role} LOGIN", {})
            await driver.execute(f"GRANT USAGE ON SCHEMA public TO {role}", {})
            await driver.execute(f"GRANT SELECT, INSERT, UPDATE ON jwt_replays TO {role}", {})
            await driver.fetch(INSERT, {"iss": "did:web:lock", "jti": "row", "exp": 1})
        monkeypatch.setattr(engine, "_REFUSED_ONCE", set())
        limited = Database(make_url(database_url).set(username=role).render_as_string(hide_password=False))
        try:
            async with limited.transaction() as unit:
                found = await (await unit.driver()).together(
                    LOCK_THEN_COUNT, {"locked": "row", "iss": "did:web:a"}
                )
            async with limited.read() as session:  # and the connection serves everything else
                assert await session.scalar(select(func.count()).select_from(JwtReplay)) == 1
        finally:
            await limited.dispose()
        assert found == [[("row", 0)], [(0,)]]
        # As the operator reads it, redacted or not: the function is named.
        said = [redact(r.getMessage()) for r in caplog.records]
        refusals = [line for line in said if "function tickets_test_lock_then_count, version" in line]
        assert len(refusals) == 1 and "refused to make" in refusals[0], said
    finally:
        async with admin.transaction() as unit:
            driver = await unit.driver()
            await driver.execute(f"DROP OWNED BY {role}", {})
            await driver.execute(f"DROP ROLE {role}", {})
        await admin.dispose()

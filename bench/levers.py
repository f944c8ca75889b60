"""Isolated levers of the hot paths, each measured before and after in the same run, in this process
(no server, no load generator): what one of them changes is a few microseconds a request, which a
whole-server phase on a shared 2-core machine cannot resolve.

* access-log line: one ``tickets.access`` line as ``tickets serve`` writes it (JSON format, the
  redacting record factory installed), the redaction applying each rule in turn (before) or scanning
  once for any rule and returning a text with nothing to redact as it is (after, ``redact``);
* hold output: a ``createTicketHold`` answer encoded by ``json.dumps`` or by msgspec (what Litestar
  encodes a handler's answer with);
* rate limits: a call counted for its client address and its caller in two committed statements
  (what ``dispatch`` does) or in one statement counting both scopes (``ratelimit.count`` of two
  scopes), on SQLite and on PostgreSQL;
* rows of four tables in a write transaction (what a hold writes: four inserts), one statement a
  table (before) or all in one statement (after, ``server.db.rows.insert_all``), on PostgreSQL
  (SQLite sends one statement a table either way);
* a write transaction of one statement, sent to the driver in an ORM session's transaction
  (before, ``Database.write`` and ``driver_of``) or in a transaction on the driver alone (after,
  ``Database.transaction``), on SQLite and on PostgreSQL;
* a check-in's reads, in a transaction on the driver: its ticket locked with its default list, its
  event and the seller's address, then its admissions at the list, one statement after the other
  (before, ``Driver.one_by_one``) or together in one round trip (after, ``Driver.together``; on
  SQLite one trip to the connection's thread instead of one a statement), of a ticket admitted twice;
* four single-row writes in a transaction on the driver (what a payment's completion writes before
  its sale), each sent at once (before) or left for later, all four in one statement before the
  commit (after, ``Driver.later``), on PostgreSQL;
* a hold's five statements as the server sends them (its token spent, ``BEGIN``, its group locked
  and its places counted, its rows in one statement, ``COMMIT``): on asyncpg, the server's driver,
  one round trip each (before), or on psycopg in pipeline mode, the first three in one round trip
  and the last two in another (after), on PostgreSQL: what a driver that pipelines would save
  (ADR 0023). Both on a raw connection of their own, on tables of their own, each way on groups of
  its own. Pipelined without a sync after it, the spend joins the transaction the ``BEGIN`` opens
  (the server spends a token on its own, committed at once): the same statements, not the same
  meaning, which is what the CPU is measured of.

Rows are per call; p50/p99 per operation; on PostgreSQL, the CPU of the database's connection processes
per call too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import logging.config
import os
import re
import resource
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import psycopg

from bench import deploy, load, procfs
from bench.results import Options, Row, RunResult, Workload, find, ratio
from server import log_redaction
from server.db import migrate
from server.db.engine import Database, Driver, Together, driver_of
from server.db.models import IdempotencyKey, JwtReplay, LedgerEntry
from server.db.rows import Shape, insert_all
from server.domain.checkin.service import AT_DEFAULT_LIST
from server.domain.ratelimit import count
from server.domain.ratewindows import Scope, Window
from server.observability import RequestContext, logging_config
from server.web import observe

IN_PROCESS = "in-process"
LOG_BEFORE, LOG_AFTER = "access-log line, rule by rule", "access-log line, one scan"
JSON_BEFORE, JSON_AFTER = "hold output, json.dumps", "hold output, msgspec"
LIMIT_BEFORE, LIMIT_AFTER = "rate limits, 2 statements", "rate limits, 1 statement"
INSERTS_BEFORE, INSERTS_AFTER = "4 tables' rows, 4 statements", "4 tables' rows, 1 statement"
WRITE_BEFORE, WRITE_AFTER = "a write, in a session", "a write, on the driver alone"
SCAN_BEFORE, SCAN_AFTER = "a scan's reads, one by one", "a scan's reads, together"
LATER_BEFORE, LATER_AFTER = "4 writes, each at once", "4 writes, left for later"
PIPE_BEFORE, PIPE_AFTER = "a hold's 5 statements, one by one", "a hold's 5 statements, pipelined"
PAIRS = (
    (LOG_BEFORE, LOG_AFTER),
    (JSON_BEFORE, JSON_AFTER),
    (LIMIT_BEFORE, LIMIT_AFTER),
    (INSERTS_BEFORE, INSERTS_AFTER),
    (WRITE_BEFORE, WRITE_AFTER),
    (SCAN_BEFORE, SCAN_AFTER),
    (LATER_BEFORE, LATER_AFTER),
    (PIPE_BEFORE, PIPE_AFTER),
)
ENTRY, REPLAY, KEY = Shape(LedgerEntry, "l"), Shape(JwtReplay, "j"), Shape(IdempotencyKey, "k")
COUNT, QUICK_COUNT = 20_000, 4_000
LIMIT_CALLS, QUICK_LIMIT_CALLS = 2_000, 400
LIMIT = 10**9  # never reached: the counting is measured, not the refusal

HOLD_OUTPUT: dict[str, Any] = {
    "holdId": "hold_01JD3K4M5N6P7Q8R9S0T1V2W3X",
    "holdToken": "chk_9Yb2mQx7_Lk-3Np0Rs5Tu8Wv1Xy4Za6B",
    "status": "held",
    "expiresAt": "2030-12-31T20:15:00.000Z",
    "amount": 5000,
    "currency": "eur",
    "items": [{"tierId": "tier_01JD3K4M5N6P7Q8R9S0T1V2W3X", "quantity": 2, "unitAmount": 2500}],
    "fees": {"app": 0, "buyer": 0},
}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _row(configuration: str, scenario: str, times_s: list[float], elapsed_s: float, cpu_s: float) -> Row:
    ms = [t * 1000 for t in times_s]
    return Row(
        configuration=configuration,
        scenario=scenario,
        requests=len(ms),
        ok=len(ms),
        rate=len(ms) / elapsed_s,
        p50_ms=load.percentile(ms, 50),
        p99_ms=load.percentile(ms, 99),
        peak_rss_mb=None,
        server_cpu_ms=cpu_s * 1000 / len(ms),
        database_cpu_ms=None,
        client_cpu_ms=0.0,
        other_cores=0.0,
    )


def _timed(configuration: str, scenario: str, operation: Callable[[], object], n: int) -> Row:
    operation()
    times = []
    cpu, started = _cpu_s(), time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        operation()
        times.append(time.perf_counter() - t)
    return _row(configuration, scenario, times, time.perf_counter() - started, _cpu_s() - cpu)


async def _timed_async(
    configuration: str, scenario: str, operation: Callable[[], Awaitable[None]], n: int, db: Database
) -> Row:
    """``operation`` timed ``n`` times after one untimed call; on PostgreSQL, with the CPU of the
    database's connection processes (those open after the first call) per call."""
    await operation()
    backends = [] if db.is_sqlite else await db.autocommit(_backends)
    database_s = sum(procfs.cpu_seconds(backends).values())
    times = []
    cpu, started = _cpu_s(), time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await operation()
        times.append(time.perf_counter() - t)
    row = _row(configuration, scenario, times, time.perf_counter() - started, _cpu_s() - cpu)
    if not backends:
        return row
    database_s = sum(procfs.cpu_seconds(backends).values()) - database_s
    return dataclasses.replace(row, database_cpu_ms=database_s * 1000 / n)


async def _backends(driver: Driver) -> list[int]:
    rows = await driver.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend'",
        {},
    )
    return [pid for (pid,) in rows]


Operation = Callable[[], Awaitable[None]]


async def _before_and_after(
    db: Database, configuration: str, before: tuple[str, Operation], after: tuple[str, Operation], n: int
) -> list[Row]:
    """A database lever's two ways, timed one after the other on ``db`` (disposed of after)."""
    try:
        return [
            await _timed_async(configuration, name, operation, n, db) for name, operation in (before, after)
        ]
    finally:
        await db.dispose()


def _rule_by_rule(text: str) -> str:
    for pattern, replacement in log_redaction._RULES:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def _access_logging() -> Any:
    """The process's logging as ``tickets serve`` sets it (JSON), writing to /dev/null; restored."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_factory = root.handlers[:], root.level, logging.getLogRecordFactory()
    with open(os.devnull, "w") as sink:
        logging.config.dictConfig(logging_config("json", "warning"))
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)
        log_redaction.install()
        try:
            yield
        finally:
            logging.setLogRecordFactory(saved_factory)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)


def access_log_rows(n: int) -> list[Row]:
    scope: Any = {"path": "/xrpc/tickets.atmosphere.createTicketHold", "method": "POST"}
    context = RequestContext("req_01JD3K4M5N6P7Q8R9S0T1V2W3X")
    context.nsid, context.caller_did, context.environment = (
        "tickets.atmosphere.createTicketHold",
        "did:web:bench-app.example",
        "test",
    )

    def line() -> None:
        observe._log_access(scope, context, 200, 0.0123)

    rows = []
    with _access_logging():
        one_scan = log_redaction.redact
        try:
            log_redaction.redact = _rule_by_rule  # the record factory calls it by this name
            rows.append(_timed(IN_PROCESS, LOG_BEFORE, line, n))
        finally:
            log_redaction.redact = one_scan
        rows.append(_timed(IN_PROCESS, LOG_AFTER, line, n))
    return rows


def json_rows(n: int) -> list[Row]:
    encoder = msgspec.json.Encoder()
    return [
        _timed(IN_PROCESS, JSON_BEFORE, lambda: json.dumps(HOLD_OUTPUT).encode(), n),
        _timed(IN_PROCESS, JSON_AFTER, lambda: encoder.encode(HOLD_OUTPUT), n),
    ]


async def rate_limit_rows(configuration: str, url: str, n: int) -> list[Row]:
    db = Database(url)
    window = Window(int(time.time() * 1000), 60_000)
    address, caller = Scope("ip:bench:m", LIMIT), Scope("caller:bench:m", LIMIT)

    async def two() -> None:
        await count(db, [address], window)
        await count(db, [caller], window)

    async def one() -> None:
        await count(db, [address, caller], window)

    return await _before_and_after(db, configuration, (LIMIT_BEFORE, two), (LIMIT_AFTER, one), n)


def _four_rows(k: int) -> list[tuple[Shape[Any], list[Any]]]:
    """A row of each of four tables (a ledger entry twice), as a hold's or a payment's writes."""
    entry = {
        "at_ms": k,
        "environment": "test",
        "subject": "hold",
        "subject_id": f"hold_{k}",
        "actor": None,
    }
    return [
        (ENTRY, [ENTRY.new(**entry, action="held", data={"items": {"tier_1": 2}})]),
        (REPLAY, [REPLAY.new(iss="did:web:bench.example", jti=f"jti_{k}", exp=k)]),
        (
            KEY,
            [
                KEY.new(
                    scope="bench",
                    key=f"key_{k}",
                    request_hash="0" * 64,
                    state="done",
                    lease_until_ms=k,
                    response={"holdId": f"hold_{k}"},
                    created_ms=k,
                )
            ],
        ),
        (ENTRY, [ENTRY.new(**entry, action="noted", data=None)]),
    ]


async def insert_rows(configuration: str, url: str, n: int) -> list[Row]:
    db = Database(url)
    made = itertools.count()

    async def each() -> None:
        async with db.write() as session:
            driver = await driver_of(session)
            for shape, rows in _four_rows(next(made)):
                await shape.insert_many(driver, rows)

    async def together() -> None:
        async with db.write() as session:
            await insert_all(await driver_of(session), *_four_rows(next(made)))

    return await _before_and_after(db, configuration, (INSERTS_BEFORE, each), (INSERTS_AFTER, together), n)


async def later_rows(configuration: str, url: str, n: int) -> list[Row]:
    """Four writes of a transaction on the driver, each sent at once or left for later."""
    db = Database(url)
    made = itertools.count(10**9)  # apart from insert_rows' keys

    def writing(later: bool) -> Operation:
        async def operation() -> None:
            async with db.transaction() as unit:
                driver = await unit.driver()
                for shape, (row,) in _four_rows(next(made)):
                    await shape.insert(driver, row, later=later)

        return operation

    return await _before_and_after(
        db, configuration, (LATER_BEFORE, writing(False)), (LATER_AFTER, writing(True)), n
    )


_HOLD_TABLES = """
CREATE TABLE lever_groups (id text PRIMARY KEY, capacity integer NOT NULL);
CREATE TABLE lever_holds (
    id text PRIMARY KEY, group_id text NOT NULL REFERENCES lever_groups (id),
    quantity integer NOT NULL, expires_ms bigint NOT NULL, data text NOT NULL
);
CREATE INDEX lever_holds_group ON lever_holds (group_id, expires_ms);
CREATE TABLE lever_replays (iss text, jti text, exp bigint, PRIMARY KEY (iss, jti));
CREATE TABLE lever_ledger (id bigserial PRIMARY KEY, at_ms bigint, subject_id text, data text);
INSERT INTO lever_groups SELECT 'g' || n, 1000000000 FROM generate_series(0, 31) n;
"""
# Each with its parameters numbered in the order they appear (psycopg's ``%s`` are positional).
_SPEND = "INSERT INTO lever_replays (iss, jti, exp) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING jti"
_LOCKED = (
    "SELECT g.capacity, (SELECT coalesce(sum(h.quantity), 0) FROM lever_holds h "
    "WHERE h.group_id = g.id AND h.expires_ms > $1) FROM lever_groups g WHERE g.id = $2 FOR UPDATE"
)
_ROWS = (
    "WITH hold AS (INSERT INTO lever_holds (id, group_id, quantity, expires_ms, data) "
    "VALUES ($1, $2, $3, $4, $5)) INSERT INTO lever_ledger (at_ms, subject_id, data) VALUES ($6, $7, $8)"
)


def _positional(sql: str) -> str:
    return re.sub(r"\$\d+", "%s", sql)


def _hold_parameters(n: int, first_group: int) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """A hold's spend, locked read and rows: a fresh token, one of 16 groups from ``first_group`` (each
    way its own, so that both count the places of as many holds)."""
    now_ms, hold_id, group = int(time.time() * 1000), f"hold_{n}", f"g{first_group + n % 16}"
    return (
        ("did:web:lever.example", f"jti-{n}", now_ms // 1000 + 300),
        (now_ms, group),
        (hold_id, group, 1, now_ms + 900_000, '{"items": 1}', now_ms, hold_id, '{"held": 1}'),
    )


async def pipeline_rows(configuration: str, url: str, n: int) -> list[Row]:
    """A hold's five statements, one round trip each on asyncpg, or pipelined in two on psycopg."""
    made = itertools.count()
    one = await asyncpg.connect(deploy.dsn(url))
    piped = await psycopg.AsyncConnection.connect(deploy.dsn(url), autocommit=True, prepare_threshold=0)
    await one.execute(_HOLD_TABLES)
    spend, locked, rows = (_positional(sql) for sql in (_SPEND, _LOCKED, _ROWS))

    async def one_by_one() -> None:
        spent, read, written = _hold_parameters(next(made), 0)
        assert await one.fetchrow(_SPEND, *spent) is not None
        await one.execute("BEGIN")
        capacity, held = await one.fetchrow(_LOCKED, *read)
        assert held < capacity
        await one.execute(_ROWS, *written)
        await one.execute("COMMIT")

    async def pipelined() -> None:
        spent, read, written = _hold_parameters(next(made), 16)
        async with piped.pipeline():  # sent, and answered, as the block ends
            token = await piped.execute(spend, spent)
            await piped.execute("BEGIN")
            counted = await piped.execute(locked, read)
        assert await token.fetchone() is not None
        found = await counted.fetchone()
        assert found is not None
        capacity, held = found
        assert held < capacity
        async with piped.pipeline():
            await piped.execute(rows, written)
            await piped.execute("COMMIT")

    try:
        return await _before_and_after(
            Database(url), configuration, (PIPE_BEFORE, one_by_one), (PIPE_AFTER, pipelined), n
        )
    finally:
        await one.close()
        await piped.close()


async def write_rows(configuration: str, url: str, n: int) -> list[Row]:
    db = Database(url)
    made = itertools.count()

    def replay() -> JwtReplay:
        k = next(made)
        return REPLAY.new(iss="did:web:bench.example", jti=f"write_{k}", exp=k)

    async def in_session() -> None:
        async with db.write() as session:
            await REPLAY.insert(await driver_of(session), replay())

    async def on_the_driver() -> None:
        async with db.transaction() as unit:
            await REPLAY.insert(await unit.driver(), replay())

    return await _before_and_after(
        db, configuration, (WRITE_BEFORE, in_session), (WRITE_AFTER, on_the_driver), n
    )


# One ticket of an app and an event, the event's default list, and two admissions of the ticket at
# it; written with the foreign keys' checks off in their transaction (its tier, group and hold are
# not needed here).
_SCANNED = (
    "INSERT INTO apps (id, did, environment, status, created_ms, updated_ms) "
    "VALUES ('app_lever', :app_did, 'test', 'active', 1, 1)",
    "INSERT INTO events (id, environment, organizer_did, owner_app_id, uri, title, status, created_ms, "
    "updated_ms) VALUES ('event_lever', 'test', :organizer_did, 'app_lever', :event_uri, 'Lever', "
    "'active', 1, 1)",
    "INSERT INTO tickets (id, environment, app_id, event_id, tier_id, capacity_group_id, hold_id, "
    "ticket_number, ticket_ref, generation, unit_amount, currency, status, created_ms, updated_ms) "
    "VALUES ('ticket_lever', 'test', 'app_lever', 'event_lever', 'tier_lever', 'group_lever', "
    "'hold_lever', 'T-1', 'ref_lever', 1, 2500, 'eur', 'active', 1, 1)",
    "INSERT INTO check_in_lists (id, event_id, name, status, is_default, allow_multiple_entries, "
    "allow_reentry, created_ms, updated_ms) "
    "VALUES ('list_lever', 'event_lever', 'Main entrance', 'active', true, false, true, 1, 1)",
    *(
        "INSERT INTO check_in_records (id, device_id, environment, event_id, list_id, ticket_id, "
        "direction, decision, reason, device_ms, clock_offset_ms, server_ms, kept) VALUES "
        f"('checkin_lever_{n}', 'online', 'test', 'event_lever', 'list_lever', 'ticket_lever', "
        f"'{direction}', 'admit', 'ok', {n}, 0, {n}, true)"
        for n, direction in ((1, "entry"), (2, "exit"))
    ),
)


async def scan_read_rows(configuration: str, url: str, n: int) -> list[Row]:
    db = Database(url)
    await _scanned(db)
    reads, params = AT_DEFAULT_LIST[True], {"ticket_id": "ticket_lever", "environment": "test"}
    Send = Callable[[Driver, Together, dict[str, Any]], Awaitable[list[list[tuple[Any, ...]]]]]

    def reading(send: Send) -> Operation:
        async def operation() -> None:
            async with db.transaction() as unit:
                found = await send(await unit.driver(), reads, params)
            if [len(rows) for rows in found] != [1, 2]:
                raise AssertionError(f"the ticket and its two admissions, not {found}")

        return operation

    return await _before_and_after(
        db,
        configuration,
        (SCAN_BEFORE, reading(Driver.one_by_one)),
        (SCAN_AFTER, reading(Driver.together)),
        n,
    )


_SCANNED_NAMES = {
    "app_did": "did:web:lever.example",
    "organizer_did": "did:plc:lever",
    "event_uri": "at://did:plc:lever/community.lexicon.calendar.event/lever",
}


async def _scanned(db: Database) -> None:
    """The scanned ticket and what it needs, written with the foreign keys' checks off: on
    PostgreSQL for the set-up's transaction alone (SET LOCAL), on SQLite for its one write
    connection, on again after."""
    if db.is_sqlite:
        await db.autocommit(lambda driver: driver.execute("PRAGMA foreign_keys = OFF", {}))
    try:
        async with db.transaction() as unit:
            driver = await unit.driver()
            if not db.is_sqlite:
                await driver.execute("SET LOCAL session_replication_role = replica", {})
            for statement in _SCANNED:
                await driver.execute(statement, _SCANNED_NAMES)  # each takes the names it has
    finally:
        if db.is_sqlite:
            await db.autocommit(lambda driver: driver.execute("PRAGMA foreign_keys = ON", {}))


async def run(options: Options) -> RunResult:
    out = RunResult()
    n = QUICK_COUNT if options.quick else COUNT
    calls = QUICK_LIMIT_CALLS if options.quick else LIMIT_CALLS
    out.rows += access_log_rows(n) + json_rows(n)
    folder = Path(tempfile.mkdtemp(prefix="tickets-bench-levers-"))
    database = ""
    try:
        sqlite_url = f"sqlite+aiosqlite:///{folder / 'levers.sqlite3'}"
        await asyncio.to_thread(migrate.upgrade, sqlite_url)
        out.rows += await rate_limit_rows("SQLite", sqlite_url, calls)
        out.rows += await write_rows("SQLite", sqlite_url, calls)
        out.rows += await scan_read_rows("SQLite", sqlite_url, calls)
        pg_url = await deploy.create_database()
        database = pg_url.rsplit("/", 1)[-1]
        await asyncio.to_thread(migrate.upgrade, pg_url)
        out.rows += await rate_limit_rows("PostgreSQL", pg_url, calls)
        out.rows += await insert_rows("PostgreSQL", pg_url, calls)
        out.rows += await later_rows("PostgreSQL", pg_url, calls)
        out.rows += await pipeline_rows("PostgreSQL", pg_url, calls)
        out.rows += await write_rows("PostgreSQL", pg_url, calls)
        out.rows += await scan_read_rows("PostgreSQL", pg_url, calls)
    finally:
        if database:
            await deploy.drop_database(database)
        shutil.rmtree(folder, ignore_errors=True)
    out.notes.append(
        "server CPU: this process's CPU per operation; db: PostgreSQL's connection processes' per "
        "operation; p50/p99 per operation"
    )
    return out


def ratios(rows: Sequence[Row]) -> list[str]:
    """Each lever's after against its before: CPU and p50 per operation."""
    lines = []
    for before_name, after_name in PAIRS:
        for configuration in (IN_PROCESS, "SQLite", "PostgreSQL"):
            before, after = find(rows, configuration, before_name), find(rows, configuration, after_name)
            if before and after:
                database = ""
                if after.database_cpu_ms is not None and before.database_cpu_ms is not None:
                    database = (
                        f", the database's CPU {after.database_cpu_ms * 1000:.1f} / "
                        f"{before.database_cpu_ms * 1000:.1f} µs = "
                        f"{ratio(after.database_cpu_ms, before.database_cpu_ms)}"
                    )
                lines.append(
                    f"{configuration} {after_name} / {before_name}: CPU "
                    f"{after.server_cpu_ms * 1000:.1f} / {before.server_cpu_ms * 1000:.1f} µs = "
                    f"{ratio(after.server_cpu_ms, before.server_cpu_ms)}, p50 "
                    f"{ratio(after.p50_ms, before.p50_ms)}{database}"
                )
    return lines


WORKLOAD = Workload(
    name="levers",
    summary="isolated levers, before and after in one run: log redaction, JSON encoding, rate limits, "
    "inserts together, a write without the session, a scan's reads together, writes left for later, "
    "a hold's statements pipelined",
    run=run,
    ratios=ratios,
)

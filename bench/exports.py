"""Organizer exports of one check-in list of 50,000 tickets (docs/performance.md: CSV ≤ 2 s, XLSX ≤ 5 s,
PDF ≤ 10 s), on SQLite and PostgreSQL.

The tickets, their orders and a door night of scans are inserted in bulk straight into a migrated
database; then ``export_list`` (load the rows, write the file) is timed in this process for each
format, three times, and the median kept. The row's ``ok`` column is the exported tickets, ``req/s``
the tickets per second, ``p50 ms`` the median and ``p99 ms`` the slowest export, ``peak RSS`` the
process's peak during that format's exports (started again after the seeding and each format).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bench import deploy, load, procfs
from bench.results import Options, Row, RunResult, Workload, find, ratio
from server.db import migrate
from server.db.engine import Database
from server.db.models import App, CapacityGroup, CheckInList, CheckInRecord, Event, Hold, Ticket, Tier
from server.domain.common import SystemClock, new_id
from server.domain.exports.service import export_list
from server.domain.issuance.service import ticket_number

TICKETS, QUICK_TICKETS = 50_000, 5_000
RUNS, QUICK_RUNS = 3, 1
FORMATS = ("csv", "xlsx", "pdf")
TARGET_S = {"csv": 2.0, "xlsx": 5.0, "pdf": 10.0}
# pretix here: a CSV of 2,010 tickets in about a second.
PRETIX_CSV_TICKETS_PER_S = 2_010.0
ENVIRONMENT = "test"
BATCH = 5_000

FIRST_NAMES = ["Ada", "Émile", "Zoë", "Grace", "Łukasz", "Søren", "María José", "Chloé", "Olga", "Nnamdi"]
LAST_NAMES = ["Lovelace", "Zola", "Ångström", "Hopper", "Kowalski", "Kierkegaard", "García", "Ivanova"]
OTHER_NAMES = ["山田 太郎", "Ελένη Παππά", None, ""]
TIERS = [("General admission", 2500), ("Early bird", 1800), ("Supporter", 5000)]
GATES = ["North", "South", None]


def _attendee(rng: random.Random) -> str | None:
    if rng.random() < 0.04:
        return rng.choice(OTHER_NAMES)
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


async def _insert(db: Database, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        async with db.write() as session:
            await session.execute(insert(model), rows[start : start + BATCH])


async def seed(db: Database, tickets: int) -> str:
    """An event with three tiers, ``tickets`` tickets in orders of two on its default list, and the
    scans of a door night: 60 % admitted, a tenth of them out again, some refused. Answers the list id."""
    rng = random.Random(7)
    now = SystemClock().now_ms()
    stamps = {"created_ms": now, "updated_ms": now}
    app = App(id=new_id("app", now), did="did:web:bench-exports.example", environment=ENVIRONMENT, **stamps)
    event = Event(
        id=new_id("event", now),
        environment=ENVIRONMENT,
        organizer_did="did:web:organizer.bench",
        owner_app_id=app.id,
        uri="at://did:web:organizer.bench/community.lexicon.calendar.event/bench-exports",
        title="Export night",
        status="active",
        **stamps,
    )
    group = CapacityGroup(
        id=new_id("group", now),
        event_id=event.id,
        name="Hall",
        total_capacity=tickets,
        sold=tickets,
        status="active",
        owner_app_id=app.id,
        **stamps,
    )
    tiers = [
        Tier(
            id=new_id("tier", now),
            event_id=event.id,
            capacity_group_id=group.id,
            title=title,
            currency="eur",
            unit_amount=amount,
            quantity_total=tickets,
            sold=len(range(n, tickets, len(TIERS))),
            max_per_order=10,
            status="active",
            owner_app_id=app.id,
            **stamps,
        )
        for n, (title, amount) in enumerate(TIERS)
    ]
    checklist = CheckInList(
        id=new_id("checklist", now),
        event_id=event.id,
        name="Main entrance",
        is_default=True,
        status="active",
        **stamps,
    )
    async with db.write() as session:
        session.add(app)
        await session.flush()
        session.add(event)
        await session.flush()
        session.add(group)
        await session.flush()
        session.add_all([*tiers, checklist])
    hold_rows, ticket_rows = [], []
    for n in range(tickets):
        if n % 2 == 0:
            hold = {
                "id": new_id("hold", now),
                "app_id": app.id,
                "environment": ENVIRONMENT,
                "event_id": event.id,
                "token": new_id("tok", now),
                "status": "completed",
                "buyer_did": f"did:plc:buyer{n:020d}",
                "payment_id": f"pay_bench_{n:08d}",
                "amount": 0,
                "currency": "eur",
                "expires_ms": now,
                **stamps,
            }
            hold_rows.append(hold)
        tier = tiers[n % len(tiers)]
        ticket_rows.append(
            {
                "id": new_id("ticket", now),
                "environment": ENVIRONMENT,
                "app_id": app.id,
                "event_id": event.id,
                "tier_id": tier.id,
                "capacity_group_id": group.id,
                "hold_id": hold["id"],
                "payment_id": hold["payment_id"],
                "ticket_number": ticket_number(),
                "buyer_did": hold["buyer_did"],
                "attendee_name": _attendee(rng),
                "attendee_email": f"guest{n}@example.org",
                "unit_amount": tier.unit_amount,
                "currency": "eur",
                "status": "voided" if n % 97 == 0 else "active",
                "generation": 1,
                **stamps,
            }
        )
    record_rows = []
    scans = itertools.count()
    for ticket in ticket_rows:
        if rng.random() >= 0.6:
            continue
        at = now + rng.randrange(3_600_000)
        device = f"desk-{rng.randrange(4)}"
        steps = [("entry", "admit", "ok")]
        if rng.random() < 0.1:
            steps.append(("exit", "admit", "ok"))
        if rng.random() < 0.03:
            steps.append(("entry", "refuse", "already_checked_in"))
        for offset, (direction, decision, reason) in enumerate(steps):
            record_rows.append(
                {
                    "id": f"scan-{next(scans)}",
                    "device_id": device,
                    "environment": ENVIRONMENT,
                    "event_id": event.id,
                    "list_id": checklist.id,
                    "ticket_id": ticket["id"],
                    "token_generation": 1,
                    "direction": direction,
                    "decision": decision,
                    "reason": reason,
                    "gate": rng.choice(GATES),
                    "scanner_did": None,
                    "device_ms": at + offset * 60_000,
                    "server_ms": at + offset * 60_000 + 40,
                }
            )
    await _insert(db, Hold, hold_rows)
    await _insert(db, Ticket, ticket_rows)
    await _insert(db, CheckInRecord, record_rows)
    return checklist.id


async def _measure(db: Database, list_id: str, fmt: str, runs: int) -> tuple[list[float], int]:
    """Seconds of each export, and the size of the file."""
    seconds, size = [], 0
    for _ in range(runs):
        async with db.read() as session:
            started = time.perf_counter()
            body, _, _ = await export_list(session, ENVIRONMENT, list_id, fmt)
            seconds.append(time.perf_counter() - started)
        size = len(body)
    return seconds, size


async def _on(backend: str, options: Options, out: RunResult) -> None:
    tickets = QUICK_TICKETS if options.quick else TICKETS
    runs = QUICK_RUNS if options.quick else RUNS
    folder = Path(tempfile.mkdtemp(prefix="tickets-bench-exports-"))
    database = ""
    try:
        if backend == "PostgreSQL":
            url = await deploy.create_database()
            database = make_url(url).database or ""
        else:
            url = f"sqlite+aiosqlite:///{folder / 'tickets.sqlite3'}"
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url)
        try:
            list_id = await seed(db, tickets)
            for fmt in FORMATS:
                if options.settle_s and (busy := await load.settle(options.settle_s)) >= 0.25:
                    out.notes.append(f"{backend} {fmt}: the machine was still busy ({busy:.2f} cores)")
                procfs.reset_own_peak()  # the peak of this format's exports, not of the seeding
                cpu_before = time.process_time()
                seconds, size = await _measure(db, list_id, fmt, runs)
                cpu_ms = (time.process_time() - cpu_before) * 1000 / runs
                median = statistics.median(seconds)
                out.rows.append(
                    Row(
                        configuration=backend,
                        scenario=fmt,
                        requests=runs,
                        ok=tickets,
                        rate=tickets / median,
                        p50_ms=median * 1000,
                        p99_ms=max(seconds) * 1000,
                        peak_rss_mb=procfs.own_peak_mb(),
                        server_cpu_ms=cpu_ms,
                        database_cpu_ms=None,
                        client_cpu_ms=0.0,
                        other_cores=0.0,
                    )
                )
                out.notes.append(
                    f"{backend} {fmt}: {size / 1e6:.1f} MB; runs {', '.join(f'{s:.2f} s' for s in seconds)}"
                )
        finally:
            await db.dispose()
    finally:
        if database:
            await deploy.drop_database(database)
        shutil.rmtree(folder, ignore_errors=True)


async def run(options: Options) -> RunResult:
    out = RunResult()
    out.notes.append(
        f"one process (pid {os.getpid()}); peak RSS is this process's during each format's exports"
    )
    for backend in ("SQLite", "PostgreSQL"):
        await _on(backend, options, out)
    return out


def ratios(rows: Sequence[Row]) -> list[str]:
    """Median seconds per export against the targets of docs/performance.md (they are for 50,000 tickets)."""
    lines = []
    for backend in ("SQLite", "PostgreSQL"):
        for fmt in FORMATS:
            row = find(rows, backend, fmt)
            if row is None:
                continue
            seconds = row.p50_ms / 1000 * TICKETS / row.ok
            lines.append(
                f"{backend:<10}  {fmt:<4}  {seconds:5.2f} s for {TICKETS:,} tickets"
                f"{'' if row.ok == TICKETS else ' (scaled)'}: {ratio(seconds, TARGET_S[fmt])} "
                f"the {TARGET_S[fmt]:.0f} s target"
            )
        csv = find(rows, backend, "csv")
        if csv is not None:
            lines.append(
                f"{backend:<10}  csv   {csv.rate / PRETIX_CSV_TICKETS_PER_S:.0f}x pretix's tickets per second"
            )
    return lines


WORKLOAD = Workload(
    name="exports",
    summary=f"export_list of one check-in list of {TICKETS:,} tickets: CSV, XLSX and PDF (median of {RUNS})",
    run=run,
    ratios=ratios,
)

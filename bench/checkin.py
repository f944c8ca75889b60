"""Online check-in (``checkInTicket``) of distinct tickets, on each configuration.

The tickets are issued first (holds of ten, paid with the broker's signed webhook; not timed). Then
a warm-up on tickets of its own, 8 clients each checking in the next pass from a shared list, and a
single client. Every scan must answer 200, and the list's ``checkedIn`` count and the tickets the
database records as admitted must then equal the tickets scanned (each admitted exactly once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy import distinct, func, select

from bench import floor, load
from bench.deploy import CONFIGURATIONS, Configuration, deployed, read_scalar
from bench.paid import issue, server_environment
from bench.results import Options, Row, RunResult, Workload, find, ratio
from bench.stage import Stage, each_configuration
from bench.xrpc import BenchApp
from server.db.models import CheckInRecord

CONCURRENCY = 8
CAPACITY = 200_000

# The targets (docs/performance.md): PostgreSQL, 2 processes; SQLite at least half the rate.
TARGET_RATE, TARGET_P99_MS, TARGET_SINGLE_P50_MS = 900.0, 30.0, 3.0
PRETIX_RATE, PRETIX_P99_MS, PRETIX_SINGLE_RATE, PRETIX_SINGLE_P50_MS = 47.0, 285.0, 25.0, 38.0
MANY, ONE = "8 clients", "1 client"


@dataclass(frozen=True)
class Sizes:
    warm_up: int
    many: int
    one: int


FULL = Sizes(warm_up=200, many=3000, one=500)
QUICK = Sizes(warm_up=64, many=600, one=150)


async def run(options: Options) -> RunResult:
    out = RunResult()
    sizes = QUICK if options.quick else FULL

    async def measure(configuration: Configuration) -> None:
        app = BenchApp()
        with server_environment():
            async with (
                deployed(configuration, app.did, app.did_documents()) as server,
                load.pool(server.url, CONCURRENCY) as client,
            ):
                event = await app.event(client)
                tier = await app.tier_in_own_group(client, event, CAPACITY)
                tickets = await issue(app, client, tier, sizes.warm_up + sizes.many + sizes.one)
                tokens = iter(t["passToken"] for t in tickets)

                def scans(count: int) -> list[httpx.Request]:
                    return [
                        app.procedure(client, "checkInTicket", {"ticketToken": next(tokens)})
                        for _ in range(count)
                    ]

                await load.warm_up(client, scans(sizes.warm_up), CONCURRENCY)
                for scenario, count, concurrency in ((MANY, sizes.many, CONCURRENCY), (ONE, sizes.one, 1)):
                    stage = Stage(app, server, client, options, out, concurrency)
                    phase = await stage.measure(scenario, scans(count))
                    out.rows.append(Row.of(stage.name, scenario, phase, phase.count("200")))
                    if phase.count("200") != count:
                        out.failures.append(
                            f"{stage.name} {scenario}: {dict(phase.outcomes)} for {count} scans"
                        )
                query = app.query(client, "listCheckInLists", {"eventId": event.id})
                lists = (await app.ok(client, query))["checkInLists"]
                admitted = sum(checklist["counts"]["checkedIn"] for checklist in lists)
                scanned = sizes.warm_up + sizes.many + sizes.one
                out.notes.append(
                    f"{configuration.name}: {scanned} distinct tickets scanned, {admitted} checked in"
                )
                stored = await read_scalar(
                    server,
                    select(func.count(distinct(CheckInRecord.ticket_id))).where(
                        CheckInRecord.event_id == event.id, CheckInRecord.decision == "admit"
                    ),
                )
                if admitted != scanned or stored != scanned:
                    out.failures.append(
                        f"{configuration.name}: {admitted} checked in ({stored} tickets admitted in the "
                        f"database) after {scanned} distinct scans"
                    )

    await each_configuration(options, out, measure)
    return out


def ratios(rows: Sequence[Row]) -> list[str]:
    """Each configuration against the targets (docs/performance.md) and pretix; SQLite against PostgreSQL."""
    lines = []
    for c in CONFIGURATIONS:
        many, one = find(rows, c.name, MANY), find(rows, c.name, ONE)
        target = c.rate_target(TARGET_RATE)
        if many:
            lines.append(
                f"{MANY}  {c.name:<13} {many.rate:5.0f}/s p99 {many.p99_ms:5.1f} ms: "
                f"rate {ratio(many.rate, target)} the target {target:.0f}/s, "
                f"p99 {ratio(many.p99_ms, TARGET_P99_MS)} the {TARGET_P99_MS:.0f} ms; "
                f"vs pretix rate {ratio(many.rate, PRETIX_RATE)}, p99 {ratio(many.p99_ms, PRETIX_P99_MS)}"
            )
        if one:
            lines.append(
                f"{ONE}   {c.name:<13} {one.rate:5.0f}/s p50 {one.p50_ms:5.1f} ms: p50 "
                f"{ratio(one.p50_ms, TARGET_SINGLE_P50_MS)} the {TARGET_SINGLE_P50_MS:.0f} ms target; "
                f"vs pretix "
                f"rate {ratio(one.rate, PRETIX_SINGLE_RATE)}, p50 {ratio(one.p50_ms, PRETIX_SINGLE_P50_MS)}"
            )
    sqlite, pg1, pg2 = (find(rows, c.name, MANY) for c in CONFIGURATIONS)
    if sqlite and pg2:
        lines.append(
            f"{MANY}  SQLite 1p / PostgreSQL 2p req/s: {ratio(sqlite.rate, pg2.rate)} (target >= 0.50x)"
        )
    if pg1 and pg2:
        lines.append(f"{MANY}  PostgreSQL 2p / 1p req/s: {ratio(pg2.rate, pg1.rate)}")
    return lines


WORKLOAD = Workload(
    name="checkin",
    summary="checkInTicket of distinct tickets: 8 clients and 1 client",
    run=run,
    ratios=ratios,
    against_floor={MANY: floor.HOLD, ONE: floor.HOLD},
)

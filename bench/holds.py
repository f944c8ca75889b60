"""Checkout holds (``createTicketHold``), on each configuration:

* contended: one capacity group of 100 with one tier; 300 holds of one place, 16 in flight. Exactly
  100 must succeed, the database must then hold exactly 100 places for the tier and the availability
  endpoint show none left (0 oversold). A phase that
  other work disturbed is measured again on a fresh group, and checked again.
* uncontended: 16 tiers, each in its own large group over 4 events; holds spread over the tiers,
  16 in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select

from bench import floor, load
from bench.deploy import CONFIGURATIONS, Configuration, deployed, read_scalar
from bench.results import Options, Row, RunResult, Workload, find, measured, ratio
from bench.stage import Stage, each_configuration
from bench.xrpc import BenchApp, Event
from server.db.models import HoldItem

CONCURRENCY = 16
CONTENDED_CAPACITY = 100
CONTENDED_REQUESTS = 300
UNCONTENDED_TIERS = 16
UNCONTENDED_EVENTS = 4
LARGE_CAPACITY = 100_000
REFUSALS = ("409 SoldOut", "409 TierSoldOut", "409 InsufficientAvailability")

# The server targets (docs/performance.md) (PostgreSQL, 2 processes); SQLite must reach half the rate.
TARGET_RATE, TARGET_P99_MS = 800.0, 50.0
PRETIX_RATE, PRETIX_P99_MS = 41.0, 1000.0


@dataclass(frozen=True)
class Sizes:
    warm_up: int
    uncontended: int


FULL = Sizes(warm_up=300, uncontended=2000)
QUICK = Sizes(warm_up=64, uncontended=300)


@dataclass(frozen=True)
class Catalog:
    """The tiers the holds go to (the contended tier is made afresh for every attempt)."""

    warm_up_tier: str
    uncontended_tiers: list[str]


async def build_catalog(app: BenchApp, client: httpx.AsyncClient) -> Catalog:
    """A warm-up tier, and the uncontended tiers: each in its own large group, over a few events."""
    warm_up = await app.event(client)
    warm_up_tier = await app.tier_in_own_group(client, warm_up, LARGE_CAPACITY)
    events = [await app.event(client) for _ in range(UNCONTENDED_EVENTS)]
    tiers = [
        await app.tier_in_own_group(client, events[n % UNCONTENDED_EVENTS], LARGE_CAPACITY)
        for n in range(UNCONTENDED_TIERS)
    ]
    return Catalog(warm_up_tier, tiers)


@dataclass
class HoldStage(Stage):
    """The holds workload on one configuration."""

    catalog: Catalog

    @property
    def sizes(self) -> Sizes:
        return QUICK if self.options.quick else FULL

    def holds(self, tiers: Sequence[str], count: int) -> list[httpx.Request]:
        """``count`` signed holds of one place, round-robin over ``tiers``."""
        bodies = ({"items": [{"tierId": tiers[n % len(tiers)], "quantity": 1}]} for n in range(count))
        return [self.app.procedure(self.client, "createTicketHold", body) for body in bodies]

    async def warm_up(self) -> None:
        """Untimed holds on a tier of their own: connections open, every server process warm."""
        requests = self.holds([self.catalog.warm_up_tier], self.sizes.warm_up)
        await load.warm_up(self.client, requests, self.concurrency)

    async def contended(self) -> None:
        """300 holds for 100 places on a fresh tier: exactly 100 granted, and availability agrees."""

        async def attempt() -> load.Phase:
            event = await self.app.event(self.client)
            tier = await self.app.tier_in_own_group(self.client, event, CONTENDED_CAPACITY)
            phase = await self.measure("contended", self.holds([tier], CONTENDED_REQUESTS))
            await self.check_sold_out(event, tier, phase)
            return phase

        phase = await self.steady("contended", attempt)
        self.out.rows.append(Row.of(self.name, "contended", phase, phase.count("200")))

    async def check_sold_out(self, event: Event, tier: str, phase: load.Phase) -> None:
        ok = phase.count("200")
        problems = []
        if ok > CONTENDED_CAPACITY:
            problems.append(f"OVERSOLD: {ok} holds granted for a capacity of {CONTENDED_CAPACITY}")
        elif ok < CONTENDED_CAPACITY:
            problems.append(f"only {ok} of {CONTENDED_CAPACITY} places sold with demand left over")
        unexpected = phase.requests - ok - sum(phase.count(r) for r in REFUSALS)
        if unexpected:
            problems.append(f"{unexpected} holds failed unexpectedly: {dict(phase.outcomes)}")
        places = await read_scalar(
            self.server, select(func.coalesce(func.sum(HoldItem.quantity), 0)).where(HoldItem.tier_id == tier)
        )
        if places != ok:
            problems.append(f"the database holds {places} places for the tier after {ok} holds granted")
        query = self.app.query(self.client, "getTicketAvailability", {"eventId": event.id})
        availability = await self.app.ok(self.client, query)
        left = {t["tierId"]: t["availableQuantity"] for t in availability["tiers"]}.get(tier)
        if left != CONTENDED_CAPACITY - ok or left != 0:
            problems.append(f"availability shows {left} left after {ok} holds on {CONTENDED_CAPACITY} places")
        self.out.failures += [f"{self.name} contended: {p}" for p in problems]

    async def uncontended(self) -> None:
        """Holds spread over many tiers: every one granted."""
        count = self.sizes.uncontended

        async def attempt() -> load.Phase:
            phase = await self.measure("uncontended", self.holds(self.catalog.uncontended_tiers, count))
            if phase.count("200") != count:
                failed = f"{count - phase.count('200')} holds failed: {dict(phase.outcomes)}"
                self.out.failures.append(f"{self.name} uncontended: {failed}")
            return phase

        phase = await self.steady("uncontended", attempt)
        self.out.rows.append(Row.of(self.name, "uncontended", phase, phase.count("200")))


async def run(options: Options) -> RunResult:
    out = RunResult()

    async def measure(configuration: Configuration) -> None:
        app = BenchApp()
        async with (
            deployed(configuration, app.did, app.did_documents()) as server,
            load.pool(server.url, CONCURRENCY) as client,
        ):
            catalog = await build_catalog(app, client)
            stage = HoldStage(app, server, client, options, out, CONCURRENCY, catalog)
            await stage.warm_up()
            await stage.contended()
            await stage.uncontended()

    await each_configuration(options, out, measure)
    return out


def ratios(rows: Sequence[Row]) -> list[str]:
    """SQLite vs PostgreSQL, 2 vs 1 processes, and the contended figures against the targets."""
    lines = []
    for scenario in ("contended", "uncontended"):
        sqlite, pg1, pg2 = (find(rows, c.name, scenario) for c in CONFIGURATIONS)
        if sqlite and pg2:
            embedded = ratio(sqlite.rate, pg2.rate)
            lines.append(f"{scenario:<11}  SQLite 1p / PostgreSQL 2p req/s: {embedded} (target >= 0.50x)")
        if sqlite and pg1:
            lines.append(f"{scenario:<11}  SQLite 1p / PostgreSQL 1p req/s: {ratio(sqlite.rate, pg1.rate)}")
        if pg1 and pg2:
            lines.append(
                f"{scenario:<11}  PostgreSQL 2p / 1p req/s: {ratio(pg2.rate, pg1.rate)}, "
                f"p99: {ratio(pg2.p99_ms, pg1.p99_ms)}"
            )
    for c, row in measured(rows, "contended"):
        target = c.rate_target(TARGET_RATE)  # SQLite's p99 is held to the same 50 ms
        lines.append(
            f"contended    {c.name:<13} vs target {target:.0f}/s p99 {TARGET_P99_MS:.0f} ms: "
            f"rate {ratio(row.rate, target)}, p99 {ratio(row.p99_ms, TARGET_P99_MS)}; "
            f"vs pretix {PRETIX_RATE:.0f}/s p99 {PRETIX_P99_MS:,.0f} ms: "
            f"rate {ratio(row.rate, PRETIX_RATE)}, p99 {ratio(row.p99_ms, PRETIX_P99_MS)}"
        )
    return lines


WORKLOAD = Workload(
    name="holds",
    summary="createTicketHold: contended (capacity 100, 300 requests) and uncontended, 16 in flight",
    run=run,
    ratios=ratios,
    against_floor={"contended": floor.HOT_ROW, "uncontended": floor.HOLD},
)

"""Stateful property test of the capacity ledger against a plain-Python model.

Random sequences of holds, releases, clock jumps, sweeps and capacity changes run on the real
services and a real database. After every step: sold + held never exceeds any tier's or group's
capacity, availability always equals capacity - sold - active holds, and the service agrees with the
model on every decision (granted or refused)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from support.catalog import app_with_active_event
from support.databases import empty_pg, sqlite_copy

from server.db.engine import Database
from server.domain.caller import Caller
from server.domain.catalog import service as catalog
from server.domain.catalog.service import TierInput
from server.domain.holds import service as holds
from server.domain.holds.service import HoldRequest
from server.errors import CapacityBelowCommitted, InsufficientAvailability

TTL_MS = 1_000
START_MS = 1_800_000_000_000
GROUPS = 2
TIERS = 3


@dataclass
class ModelHold:
    items: dict[int, int]
    expires_ms: int
    live: bool = True  # not released or expired by a sweep


@dataclass
class Model:
    group_capacity: list[int]
    tier_quantity: list[int]
    tier_group: list[int]
    holds: dict[str, ModelHold] = field(default_factory=dict)

    def active(self, now_ms: int) -> list[ModelHold]:
        return [h for h in self.holds.values() if h.live and h.expires_ms > now_ms]

    def tier_held(self, tier: int, now_ms: int) -> int:
        return sum(h.items.get(tier, 0) for h in self.active(now_ms))

    def group_held(self, group: int, now_ms: int) -> int:
        return sum(self.tier_held(t, now_ms) for t in range(TIERS) if self.tier_group[t] == group)

    def fits(self, items: dict[int, int], now_ms: int) -> bool:
        for tier, quantity in items.items():
            if quantity > self.tier_quantity[tier] - self.tier_held(tier, now_ms):
                return False
        for group in range(GROUPS):
            asked = sum(q for t, q in items.items() if self.tier_group[t] == group)
            if asked > self.group_capacity[group] - self.group_held(group, now_ms):
                return False
        return True


class LedgerMachine(RuleBasedStateMachine):
    database_url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.db = Database(self.database_url)
        self.now = START_MS

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.dispose())
        self.loop.close()

    @initialize(
        capacities=st.lists(st.integers(1, 12), min_size=GROUPS, max_size=GROUPS),
        quantities=st.lists(st.integers(1, 12), min_size=TIERS, max_size=TIERS),
        groups=st.lists(st.integers(0, GROUPS - 1), min_size=TIERS, max_size=TIERS),
    )
    def build(self, capacities: list[int], quantities: list[int], groups: list[int]) -> None:
        self.model = Model(capacities, quantities, groups)

        async def setup() -> tuple[Caller, list[str], list[str]]:
            async with self.db.write() as session:
                caller, event = await app_with_active_event(
                    session, "did:web:model.example", "at://did:plc:org/e/1", self.now
                )
                group_ids = [
                    (await catalog.create_group(session, caller, event, f"g{n}", c, self.now)).id
                    for n, c in enumerate(capacities)
                ]
                tier_ids = []
                for n, (quantity, group) in enumerate(zip(quantities, groups, strict=True)):
                    tier = await catalog.create_tier(
                        session,
                        caller,
                        event,
                        TierInput(
                            title=f"t{n}",
                            currency="eur",
                            unit_amount=100,
                            quantity_total=quantity,
                            max_per_order=50,
                        ),
                        self.now,
                        group_id=group_ids[group],
                    )
                    tier_ids.append(tier.id)
            return caller, group_ids, tier_ids

        self.caller, self.group_ids, self.tier_ids = self.run(setup())

    @rule(items=st.dictionaries(st.integers(0, TIERS - 1), st.integers(1, 6), min_size=1, max_size=TIERS))
    def hold(self, items: dict[int, int]) -> None:
        expected = self.model.fits(items, self.now)
        request = HoldRequest(items={self.tier_ids[t]: q for t, q in items.items()})

        async def attempt() -> str | None:
            try:
                async with self.db.write() as session:
                    result = await holds.create_hold(session, self.caller, request, self.now, TTL_MS)
                    return result.hold.id
            except InsufficientAvailability:
                return None

        hold_id = self.run(attempt())
        assert (hold_id is not None) == expected, (items, self.model)
        if hold_id is not None:
            self.model.holds[hold_id] = ModelHold(dict(items), self.now + TTL_MS)

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.model.holds)))

        async def release() -> str:
            async with self.db.write() as session:
                hold = await holds.release_hold(session, self.caller, hold_id, None, self.now)
                return holds.effective_status(hold, self.now)

        status = self.run(release())
        model = self.model.holds[hold_id]
        if model.live:
            assert status == ("released" if model.expires_ms > self.now else "expired")
        model.live = False

    @rule(ms=st.integers(0, 2 * TTL_MS))
    def advance(self, ms: int) -> None:
        self.now += ms

    @rule()
    def sweep(self) -> None:
        async def sweep() -> list[str]:
            async with self.db.write() as session:
                return [h.id for h in await holds.sweep_expired(session, self.now)]

        swept = set(self.run(sweep()))
        lapsed = {i for i, h in self.model.holds.items() if h.live and h.expires_ms <= self.now}
        assert swept == lapsed
        for hold_id in swept:
            self.model.holds[hold_id].live = False

    @rule(group=st.integers(0, GROUPS - 1), capacity=st.integers(1, 15))
    def resize_group(self, group: int, capacity: int) -> None:
        allowed = capacity >= self.model.group_held(group, self.now)

        async def resize() -> bool:
            try:
                async with self.db.write() as session:
                    await catalog.update_group(
                        session, self.caller, self.group_ids[group], {"total_capacity": capacity}, self.now
                    )
            except CapacityBelowCommitted:
                return False
            return True

        assert self.run(resize()) == allowed
        if allowed:
            self.model.group_capacity[group] = capacity

    @rule(tier=st.integers(0, TIERS - 1), quantity=st.integers(1, 15))
    def resize_tier(self, tier: int, quantity: int) -> None:
        allowed = quantity >= self.model.tier_held(tier, self.now)

        async def resize() -> bool:
            try:
                async with self.db.write() as session:
                    await catalog.update_tier(
                        session, self.caller, self.tier_ids[tier], {"quantity_total": quantity}, self.now
                    )
            except CapacityBelowCommitted:
                return False
            return True

        assert self.run(resize()) == allowed
        if allowed:
            self.model.tier_quantity[tier] = quantity

    @invariant()
    def counters_match_the_model(self) -> None:
        if not hasattr(self, "tier_ids"):
            return

        async def snapshot() -> list[catalog.TierState]:
            async with self.db.read() as session:
                event = (await catalog.find_tier(session, "test", self.tier_ids[0])).event_id
                found = await catalog.find_event(session, "test", event_id=event)
                return (await catalog.inventory(session, found, self.now)).tiers

        states = {s.tier.id: s for s in self.run(snapshot())}
        for n, tier_id in enumerate(self.tier_ids):
            state = states[tier_id]
            group = self.model.tier_group[n]
            tier_pool, group_pool = state.pool, state.group.pool
            assert tier_pool.capacity == self.model.tier_quantity[n]
            assert tier_pool.held == self.model.tier_held(n, self.now)
            assert group_pool.capacity == self.model.group_capacity[group]
            assert group_pool.held == self.model.group_held(group, self.now)
            assert tier_pool.sold + tier_pool.held <= tier_pool.capacity
            assert group_pool.sold + group_pool.held <= group_pool.capacity
            assert tier_pool.available == tier_pool.capacity - tier_pool.sold - tier_pool.held
            assert state.available == min(tier_pool.available, group_pool.available)


def test_ledger_rules_hold_for_any_sequence(
    database_url: str, tmp_path: Path, sqlite_template_file: Path
) -> None:
    examples = [0]

    class Machine(LedgerMachine):
        def __init__(self) -> None:
            examples[0] += 1
            folder = tmp_path / f"example-{examples[0]}"
            folder.mkdir()
            if database_url.startswith("sqlite"):
                type(self).database_url = sqlite_copy(sqlite_template_file, folder)
            else:
                asyncio.run(empty_pg(database_url))
                type(self).database_url = database_url
            super().__init__()

    Machine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Machine.TestCase().runTest()

"""The sweeper ends a batch of lapsed holds together: every hold expired, its places given back, its
ledger entry and its app's message written, in a number of statements that does not grow with the
batch. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update
from support.catalog import app_with_active_event

from server.db.engine import Database, Driver
from server.db.models import App, Hold, HoldItem, LedgerEntry, OutboxMessage
from server.domain.caller import Caller
from server.domain.catalog import service as catalog
from server.domain.catalog.service import TierInput
from server.domain.holds import service as holds
from server.domain.holds.service import HoldRequest

NOW_MS = 1_800_000_000_000
TTL_MS = 60_000
HOLDS = 120


async def tier_of_an_app_with_a_webhook(db: Database) -> tuple[Caller, str]:
    async with db.write() as session:
        caller, event = await app_with_active_event(
            session, "did:web:sweep.example", "at://did:plc:org/e/s", NOW_MS
        )
        await session.execute(
            update(App).where(App.id == caller.app_id).values(webhook_url="https://app.invalid/h")
        )
        group = await catalog.create_group(session, caller, event, "room", HOLDS, NOW_MS)
        tier = await catalog.create_tier(
            session,
            caller,
            event,
            TierInput(title="entry", currency="eur", unit_amount=100, quantity_total=HOLDS, max_per_order=5),
            NOW_MS,
            group_id=group.id,
        )
    return caller, tier.id


async def test_a_sweep_ends_its_holds_together(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    caller, tier_id = await tier_of_an_app_with_a_webhook(db)
    for _ in range(HOLDS):
        async with db.transaction() as unit:
            await holds.create_hold(unit, caller, HoldRequest(items={tier_id: 1}), NOW_MS, TTL_MS)

    sent: list[str] = []
    send = Driver._sent

    async def counted(driver: Driver, sql: str, statement: Any) -> Any:
        sent.append(sql)
        return await send(driver, sql, statement)

    monkeypatch.setattr(Driver, "_sent", counted)
    async with db.write() as session:
        expired = await holds.sweep_expired(session, NOW_MS + TTL_MS)
    monkeypatch.undo()

    assert len(expired) == HOLDS
    assert len(sent) <= 10, f"{len(sent)} statements to end {HOLDS} holds"
    async with db.read() as session:
        statuses = set(await session.scalars(select(Hold.status)))
        entries = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.action == "expired")
        )
        told = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.event_type == "ticket.hold.expired")
        )
        still_held = await session.scalar(
            select(func.count()).select_from(HoldItem).where(HoldItem.active_until_ms.is_not(None))
        )
    assert statuses == {"expired"} and entries == HOLDS and told == HOLDS and still_held == 0

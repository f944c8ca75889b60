"""What the payment tests read back: rows straight from the database, and a hold to pay for."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.db.engine import Database
from server.settings import Settings
from support.catalog import active_event, shared_group
from support.server import AppClient


async def rows(settings: Settings, model: Any, *where: Any) -> list[Any]:
    """Every row of ``model`` matching ``where``, in primary-key order."""
    db = Database(settings.resolved_database_url)
    try:
        async with db.read() as session:
            return list(
                await session.scalars(select(model).where(*where).order_by(*model.__table__.primary_key))
            )
    finally:
        await db.dispose()


async def new_hold(
    app: AppClient, quantity: int = 2, capacity: int = 10, **extra: Any
) -> tuple[str, str, dict[str, Any]]:
    """A fresh event with one tier (1,000 minor units of eur a place) and a hold on it: answers
    (event id, tier id, the hold as ``createTicketHold`` answered)."""
    event = await active_event(app)
    _, (tier,) = await shared_group(app, event, capacity=capacity, tiers=1)
    hold = await app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": quantity}], **extra})
    return event["id"], tier, hold

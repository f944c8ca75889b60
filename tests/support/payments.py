"""What the payment tests read back: rows straight from the database, and a hold to pay for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import Base, Hold
from server.domain.caller import Caller
from server.domain.catalog import service as catalog
from server.domain.catalog.service import EventInput, TierInput
from server.domain.holds import service as holds
from server.domain.holds.service import HoldRequest
from server.domain.issuance.list_keys import Keyring
from server.settings import Settings
from support.catalog import active_event, consenting, shared_group
from support.server import AppClient

ModelT = TypeVar("ModelT", bound=Base)


async def rows(settings: Settings, model: type[ModelT], *where: Any) -> list[ModelT]:
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


async def tier_with_holds(
    session: AsyncSession,
    caller: Caller,
    key: str,
    quantities: Sequence[int],
    now_ms: int,
    *,
    keyring: Keyring,
    **request: Any,
) -> tuple[str, list[Hold]]:
    """Straight through the domain: an active event (its URI made of ``key``, its door list's key
    sealed by ``keyring``), ticketed with the organizer's consent, a tier of 20 places at 100 eur,
    and a hold of it per quantity (``request``: more of each hold's request). Answers (tier id,
    holds)."""
    event = await catalog.ensure_event(
        session,
        consenting(caller, "did:plc:org"),
        "did:plc:org",
        EventInput(uri=f"at://did:plc:org/e/{key}", title="E"),
        now_ms,
        keyring=keyring,
        status="active",
    )
    tier = await catalog.create_tier(
        session,
        caller,
        event,
        TierInput(title="t", currency="eur", unit_amount=100, quantity_total=20),
        now_ms,
    )
    made = [
        await holds.create_hold(session, caller, HoldRequest({tier.id: q}, **request), now_ms, 600_000)
        for q in quantities
    ]
    return tier.id, [r.hold for r in made]

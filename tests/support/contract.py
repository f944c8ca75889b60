"""What real event apps read, as field → type tables, and the checks the contract suite makes with them.

The tables are the public SDK's output types (app-node beta.4) and what the pilot event app reads
(docs/contract.md). A field listed must be present with exactly its JSON type; optional fields are
left out rather than sent as ``null``, so no value anywhere in an answer may be ``null``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import select

from server.db.engine import Database
from server.db.models import OutboxMessage
from support.catalog import ORGANIZER, event_input
from support.server import AppClient, Identity

Shape = Mapping[str, type | tuple[type, ...]]

# The SDK's ticket summary, wherever tickets are listed, issued, verified or checked in.
TICKET_SUMMARY: Shape = {
    "id": str,
    "ticketId": str,
    "tierId": str,
    "eventId": str,
    "eventUri": str,
    "status": str,
}
EVENT_SUMMARY: Shape = {"id": str, "uri": str, "title": str, "startsAt": str}
TIER_SUMMARY: Shape = {
    "id": str,
    "title": str,
    "status": str,
    "currency": str,
    "unitAmount": int,
    "quantityTotal": int,
}
GROUP_SUMMARY: Shape = {"id": str, "name": str, "status": str, "totalCapacity": int}
PRESENTATION: Shape = {"event": dict, "tier": dict, "organizer": dict}
# The lifecycle event data every event gives at the top level of ``data`` (when it applies).
LIFECYCLE_TOP: Shape = {"eventId": str, "eventUri": str, "holdId": str}
EVENT_TYPE_BASE = "money.atmosphere.event.receive"
# The tier fields the SDK types ``T | null``, as it sends them when they are not set: null.
TIER_NULLS: dict[str, None] = dict.fromkeys(
    ("description", "saleStartsAt", "saleEndsAt", "tierRef", "productRef", "priceRef")
)


def shape(value: Any, fields: Shape, where: str = "answer") -> dict[str, Any]:
    """``value`` is an object with every one of ``fields``, each of exactly its type (a bool is
    not an int here)."""
    assert isinstance(value, dict), f"{where} is not an object: {value!r}"
    for name, kind in fields.items():
        assert name in value, f"{where}.{name} is missing"
        kinds = kind if isinstance(kind, tuple) else (kind,)
        got = value[name]
        assert isinstance(got, kinds) and not (isinstance(got, bool) and bool not in kinds), (
            f"{where}.{name} is {type(got).__name__} {got!r}, not {kind}"
        )
    return value


def no_nulls(value: Any, where: str = "answer") -> None:
    """Optional fields are omitted, never ``null``, at any depth."""
    assert value is not None, f"{where} is null"
    if isinstance(value, dict):
        for name, item in value.items():
            no_nulls(item, f"{where}.{name}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            no_nulls(item, f"{where}[{n}]")


def tier_request(event_uri: str, **fields: Any) -> dict[str, Any]:
    """``createTicketTier`` as the SDK sends it: every optional field it types ``T | null`` is null."""
    return {
        "organizerDid": ORGANIZER,
        "event": {"uri": event_uri},
        "title": "General admission",
        "currency": "eur",
        "unitAmount": 2500,
        "quantityTotal": 100,
        **TIER_NULLS,
        "metadata": {"source": "sdk"},
        **fields,
    }


async def sdk_event(client: AppClient, title: str = "Pilot night") -> dict[str, Any]:
    """An active event, made the way the pilot makes it (with metadata)."""
    out = await client.ok(
        "createTicketEvent",
        {
            "organizerDid": ORGANIZER,
            "event": event_input(title),
            "status": "active",
            "metadata": {"pilot": {"eventPage": "/e/1"}},
        },
    )
    event: dict[str, Any] = out["event"]
    return event


async def sdk_tier(client: AppClient, event_uri: str, **fields: Any) -> dict[str, Any]:
    out = await client.ok("createTicketTier", tier_request(event_uri, **fields))
    tier: dict[str, Any] = out["tier"]
    return tier


def buyer_assertion(buyer: Identity, lxm: str) -> str:
    """The buyer's own service-auth token for ``lxm``, as the pilot mints it."""
    return buyer.token(lxm)


async def poll(check: Callable[[], Awaitable[Any]], timeout_s: float = 15.0) -> Any:
    """Call ``check`` until it answers something truthy, the way an app polls."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "gave up polling"
        await asyncio.sleep(0.05)


async def outbox_bodies(database_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every queued lifecycle event's body (exactly the bytes a receiver gets), by type."""
    db = Database(database_url)
    try:
        async with db.read() as session:
            rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            found: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                found.setdefault(row.event_type, []).append(json.loads(row.body))
            return found
    finally:
        await db.dispose()

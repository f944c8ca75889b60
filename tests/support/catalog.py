"""Builders for catalog fixtures over XRPC."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Event
from server.domain import apps
from server.domain.caller import Caller
from server.domain.catalog import service as catalog
from server.domain.catalog.service import EventInput
from server.domain.issuance.list_keys import Keyring
from support.server import AppClient

ORGANIZER = "did:plc:organizer0000000000000000"
_counter = itertools.count(1)


def consenting(caller: Caller, organizer: str) -> Caller:
    """An in-process caller whose call carries the organizer's (verified) assertion, as an app's
    first call for an organizer does: ``ensure_event`` records the consent its later calls rely on."""
    return replace(caller, organizer_did=organizer, organizer_jti=f"jti-{next(_counter)}")


def event_input(title: str = "Test night") -> dict[str, Any]:
    return {
        "uri": f"at://{ORGANIZER}/community.lexicon.calendar.event/3kevent{next(_counter):06d}",
        "title": title,
        "startsAt": "2026-12-31T20:00:00.000Z",
    }


async def active_event(client: AppClient, title: str = "Test night") -> dict[str, Any]:
    out = await client.ok(
        "createTicketEvent", {"organizerDid": ORGANIZER, "event": event_input(title), "status": "active"}
    )
    event: dict[str, Any] = out["event"]
    return event


def for_event(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The body of an organizer's call about ``event`` (a tier, a capacity group): ``fields`` with
    the organizer and the event's reference."""
    return {"organizerDid": ORGANIZER, "event": {"uri": event["uri"]}, **fields}


async def tier_id(
    client: AppClient, event: dict[str, Any], title: str, *, unit_amount: int, quantity: int, **fields: Any
) -> str:
    """A new tier in euros for ``event`` (with ``fields`` besides); answers its id."""
    out = await client.ok(
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "title": title,
            "currency": "eur",
            "unitAmount": unit_amount,
            "quantityTotal": quantity,
            **fields,
        },
    )
    tier: str = out["tier"]["id"]
    return tier


async def shared_group(
    client: AppClient,
    event: dict[str, Any],
    capacity: int,
    tiers: int,
    *,
    quantity: int | None = None,
    max_per_order: int = 10,
) -> tuple[str, list[str]]:
    """A capacity group of ``capacity`` and ``tiers`` tiers in it; answers (group id, tier ids)."""
    group = await client.ok(
        "createCapacityGroup",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "name": "Hall",
            "totalCapacity": capacity,
        },
    )
    group_id = group["capacityGroup"]["id"]
    tier_ids = []
    for n in range(tiers):
        out = await client.ok(
            "createTicketTier",
            {
                "organizerDid": ORGANIZER,
                "event": {"uri": event["uri"]},
                "title": f"Tier {n}",
                "currency": "eur",
                "unitAmount": 1000 + n,
                "quantityTotal": quantity or capacity,
                "maxPerOrder": max_per_order,
                "capacityGroupId": group_id,
            },
        )
        tier_ids.append(out["tier"]["id"])
    return group_id, tier_ids


async def app_with_active_event(
    session: AsyncSession, did: str, uri: str, now_ms: int
) -> tuple[Caller, Event]:
    """In process: a registered app (environment ``test``) and an active event of it, its organizer's
    consent recorded."""
    app = await apps.register_app(session, did=did, environment="test", now_ms=0)
    await session.flush()
    caller = Caller(app.id, app.did, "test")
    event = await catalog.ensure_event(
        session,
        consenting(caller, "did:plc:org"),
        "did:plc:org",
        EventInput(uri=uri, title="E"),
        now_ms,
        keyring=Keyring(b"k" * 32),
        status="active",
    )
    return caller, event

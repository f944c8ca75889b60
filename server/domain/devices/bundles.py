"""Building a check-in list's offline bundle (format: :mod:`sync.bundle`), full or as a delta from a
cursor of the event's ticket change feed."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import CheckInList, Device, Event, ListKey, Ticket, TicketChange, Tier
from server.domain.checkin.door import admitted_tickets, rules_of
from server.domain.issuance.list_keys import Keyring
from sync.bundle import FORMAT_VERSION, TicketEntry, pack_entries, seal_entry, sign_bundle, tier_refs

# Changes younger than this may still be joined by others committing with lower sequence numbers:
# the cursor handed out stops before them, so they are sent again (entries are upserts) and none is
# ever skipped.
SETTLE_MS = 10_000


async def build_bundle(
    session: AsyncSession, keyring: Keyring, checklist: CheckInList, since: int | None, now_ms: int
) -> dict[str, Any]:
    event = await session.get(Event, checklist.event_id)
    assert event is not None
    changes = select(TicketChange.ticket_id, func.max(TicketChange.seq).label("version")).where(
        TicketChange.event_id == event.id
    )
    if since is not None:
        changes = changes.where(TicketChange.seq > since)
    latest = changes.group_by(TicketChange.ticket_id).subquery()
    # The entries' columns only: loading 50,000 tickets as mapped objects took most of a full
    # bundle's time.
    query = select(
        Ticket.id,
        Ticket.ticket_number,
        Ticket.attendee_name,
        Ticket.tier_id,
        Ticket.status,
        Ticket.generation,
        latest.c.version,
    ).join(latest, latest.c.ticket_id == Ticket.id)
    rows = (await session.execute(query.where(admitted_tickets(checklist)).order_by(Ticket.id))).all()
    settled = await session.scalar(
        select(func.max(TicketChange.seq)).where(
            TicketChange.event_id == event.id, TicketChange.at_ms <= now_ms - SETTLE_MS
        )
    )
    cursor = max(settled or 0, since or 0)
    entries = [
        seal_entry(TicketEntry(ticket_id, number, name or "", tier_id, status, generation), version)
        for ticket_id, number, name, tier_id, status, generation, version in rows
    ]
    keys = list(await session.scalars(select(ListKey).where(ListKey.list_id == checklist.id)))
    tiers = dict((await session.execute(select(Tier.id, Tier.title).where(Tier.event_id == event.id))).all())
    tier_refs(tiers)  # every entry's tier reference resolves to one tier
    admissible = (
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.event_id == event.id, Ticket.status == "active", admitted_tickets(checklist))
    )
    desks = await session.execute(select(Device.id, Device.name).where(Device.event_id == event.id))
    active = next(k for k in keys if k.status == "active")
    body = {
        "format": FORMAT_VERSION,
        "checkInListId": checklist.id,
        "eventId": event.id,
        "event": {"title": event.title, "startsAtMs": event.starts_ms},
        "full": since is None,
        "since": since,
        "seq": cursor,
        "issuedAtMs": now_ms,
        "list": {"name": checklist.name, **rules_of(checklist).to_wire(), "gates": checklist.gates},
        "keys": [
            {"keyId": k.key_id, "publicKey": base64.b64encode(k.public_key).decode(), "status": k.status}
            for k in sorted(keys, key=lambda k: k.key_id)
        ],
        "tiers": dict(sorted(tiers.items())),
        "count": len(entries),
        "admissible": int(await session.scalar(admissible) or 0),
        "devices": dict(sorted((device_id, name) for device_id, name in desks.all())),
        "entries": pack_entries(entries),
    }
    return sign_bundle(body, keyring.unseal(active))

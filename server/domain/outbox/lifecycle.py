"""The ``data`` of every lifecycle event an app receives, in the public SDK's shape.

The SDK reads ``{eventId, eventUri, holdId, paymentId, issuedCount, tickets[]}`` at the top level of
``data`` (each optional), a ticket entry being ``{id, ticketId, tierId, eventId, eventUri, status}``.
Every event gives the ones that apply; the nested objects (``hold``, ``ticket``, ``checkIn``) stay
beside them. Absent values are left out, never sent as ``null``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.atproto.datetimes import format_datetime
from server.db.models import Ticket
from server.domain.common import compact


def ticket_entry(ticket: Ticket, event_uri: str, *, status: str | None = None) -> dict[str, Any]:
    """One ticket as the SDK lists it; ``status`` overrides the ticket's (``issued`` when new)."""
    return compact(
        {
            "id": ticket.id,
            "ticketId": ticket.id,
            "tierId": ticket.tier_id,
            "eventId": ticket.event_id,
            "eventUri": event_uri,
            "status": status or ticket.status,
            "paymentId": ticket.payment_id,
            "claimId": ticket.claim_id,
            "ticketNumber": ticket.ticket_number,
            "generation": ticket.generation,
        }
    )


def event_data(
    *,
    event_id: str,
    event_uri: str,
    hold_id: str | None = None,
    payment_id: str | None = None,
    tickets: Sequence[dict[str, Any]] | None = None,
    issued_count: int | None = None,
    **nested: Any,
) -> dict[str, Any]:
    """The top-level fields, then ``nested`` (objects kept for the readers of earlier versions,
    and event-specific fields such as ``claimId`` or ``reason``)."""
    top = {
        "eventId": event_id,
        "eventUri": event_uri,
        "holdId": hold_id,
        "paymentId": payment_id,
        "issuedCount": issued_count,
        "tickets": None if tickets is None else list(tickets),
    }
    return compact({**top, **nested})


def ticket_event_data(ticket: Ticket, event_uri: str, **nested: Any) -> dict[str, Any]:
    """A change of one ticket (voided, refunded, transferred, checked in)."""
    entry = ticket_entry(ticket, event_uri)
    return event_data(
        event_id=ticket.event_id,
        event_uri=event_uri,
        hold_id=ticket.hold_id,
        payment_id=ticket.payment_id,
        tickets=[entry],
        ticket=entry,
        **nested,
    )


def check_in_entry(
    record_id: str,
    list_id: str,
    at_ms: int,
    *,
    scanner_did: str | None = None,
    gate: str | None = None,
    offline: bool = False,
) -> dict[str, Any]:
    """``data.checkIn`` of ``ticket.checked-in``: the record, when the ticket was scanned, and
    ``offline: true`` for a desk's offline decision that reached the service later."""
    return compact(
        {
            "id": record_id,
            "checkInListId": list_id,
            "scannerDid": scanner_did,
            "gate": gate,
            "checkedInAt": format_datetime(at_ms),
            "offline": True if offline else None,
        }
    )

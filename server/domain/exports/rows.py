"""What an export of a check-in list contains: one row per ticket the list admits (the door list)
or one row per scan (the check-in log), loaded with a few set-based queries whatever the size."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.datetimes import format_datetime
from server.db.engine import driver_of
from server.db.models import CheckInConflict, CheckInList, CheckInRecord, Ticket
from server.domain.checkin.door import admitted_tier_ids
from server.domain.checkin.undo import UNDO_COLUMNS, without_undone
from server.domain.exports.rules import display_name, name_order, price


class DoorRow(NamedTuple):
    """A ticket the list admits, whatever its status, with its check-in state on this list. Times are
    RFC 3339 UTC; ``checked_in_at``, ``gate`` and ``device`` describe the first admitted entry,
    ``inside`` follows the last admitted scan and ``last_scan_at`` is the latest scan of any decision."""

    ticket_number: str
    attendee_name: str
    attendee_email: str | None
    buyer_did: str | None
    tier: str
    unit_amount: int
    currency: str
    status: str
    checked_in_at: str | None
    last_scan_at: str | None
    gate: str | None
    device: str | None
    inside: bool
    ticket_id: str
    order_id: str
    payment_id: str | None

    @property
    def price(self) -> Decimal:
        return price(self.unit_amount, self.currency)


class ScanRow(NamedTuple):
    """One scan of the list's check-in log. The ticket fields are empty when the scanned pass named
    no ticket of this service."""

    server_at: str
    device_at: str
    device_id: str
    gate: str | None
    scanner_did: str | None
    direction: str
    decision: str
    reason: str
    ticket_number: str | None
    attendee_name: str | None
    ticket_id: str | None


# A door list's tickets with their tier's title, read through the driver: 50,000 rows without the
# ORM's result rows (0.3 of 1.8 s in a CSV export of 50,000 tickets on PostgreSQL, in one process).
_DOOR_TICKETS = (
    "SELECT t.ticket_number, t.attendee_name, t.attendee_email, t.buyer_did, r.title, t.unit_amount, "
    "t.currency, t.status, t.id, t.hold_id, t.payment_id FROM tickets t JOIN tiers r ON r.id = t.tier_id "
    "WHERE t.event_id = :event_id"
)


async def _door_tickets(session: AsyncSession, checklist: CheckInList) -> list[tuple[Any, ...]]:
    """The tickets of the list's event whose tier the list admits (:func:`admitted_tier_ids`)."""
    driver = await driver_of(session)
    event = {"event_id": checklist.event_id}
    tier_ids = admitted_tier_ids(checklist)
    if tier_ids is None:
        return await driver.fetch(_DOOR_TICKETS, event)
    return await driver.fetch_in(f"{_DOOR_TICKETS} AND t.tier_id IN (:tiers)", event, "tiers", tier_ids)


async def list_rows(session: AsyncSession, checklist: CheckInList) -> list[DoorRow]:
    """Every ticket of the list's event whose tier the list admits, sorted by :func:`name_order`."""
    scans = await session.execute(
        select(
            CheckInRecord.ticket_id,
            CheckInRecord.direction,
            CheckInRecord.decision,
            CheckInRecord.server_ms,
            CheckInRecord.gate,
            *UNDO_COLUMNS,
        )
        .where(
            CheckInRecord.list_id == checklist.id,
            CheckInRecord.ticket_id.is_not(None),
            CheckInRecord.kept.is_(True),
        )
        .order_by(CheckInRecord.server_ms, CheckInRecord.seq)
    )
    # By ticket id (never None here: the query leaves out scans of unknown passes).
    first_entry: dict[str | None, tuple[int, str | None, str]] = {}
    last_scan: dict[str | None, int] = {}
    inside: dict[str | None, bool] = {}
    for scan in without_undone(scans.all()):
        ticket_id = scan.ticket_id
        last_scan[ticket_id] = scan.server_ms
        if scan.decision == "admit":
            inside[ticket_id] = scan.direction == "entry"
            if scan.direction == "entry" and ticket_id not in first_entry:
                first_entry[ticket_id] = (scan.server_ms, scan.gate, scan.device_id)
    found = sorted(await _door_tickets(session, checklist), key=lambda t: name_order(t[1], t[0]))
    rows = []
    for number, name, email, buyer, tier, amount, currency, status, ticket_id, hold_id, payment_id in found:
        entry = first_entry.get(ticket_id)
        scanned = last_scan.get(ticket_id)
        rows.append(
            DoorRow(
                ticket_number=number,
                attendee_name=display_name(name),
                attendee_email=email,
                buyer_did=buyer,
                tier=tier,
                unit_amount=amount,
                currency=currency,
                status=status,
                checked_in_at=None if entry is None else format_datetime(entry[0]),
                last_scan_at=None if scanned is None else format_datetime(scanned),
                gate=None if entry is None else entry[1],
                device=None if entry is None else entry[2],
                inside=inside.get(ticket_id, False),
                ticket_id=ticket_id,
                order_id=hold_id,
                payment_id=payment_id,
            )
        )
    return rows


async def scan_rows(session: AsyncSession, checklist: CheckInList) -> list[ScanRow]:
    """The list's check-in log, one row per scan, in server time order."""
    scans = await session.execute(
        select(
            CheckInRecord.server_ms,
            CheckInRecord.device_ms,
            CheckInRecord.device_id,
            CheckInRecord.gate,
            CheckInRecord.scanner_did,
            CheckInRecord.direction,
            CheckInRecord.decision,
            CheckInRecord.reason,
            Ticket.ticket_number,
            Ticket.id,
            Ticket.attendee_name,
            CheckInRecord.ticket_id,
        )
        .outerjoin(Ticket, Ticket.id == CheckInRecord.ticket_id)
        .where(CheckInRecord.list_id == checklist.id, CheckInRecord.kept.is_(True))
        .order_by(CheckInRecord.server_ms, CheckInRecord.seq)
    )
    return [
        ScanRow(
            server_at=format_datetime(server_ms),
            device_at=format_datetime(device_ms),
            device_id=device_id,
            gate=gate,
            scanner_did=scanner_did,
            direction=direction,
            decision=decision,
            reason=reason,
            ticket_number=number,
            attendee_name=None if known is None else display_name(name),
            ticket_id=ticket_id,
        )
        for (
            server_ms,
            device_ms,
            device_id,
            gate,
            scanner_did,
            direction,
            decision,
            reason,
            number,
            known,
            name,
            ticket_id,
        ) in scans
    ]


class ConflictRow(NamedTuple):
    """One conflict the merge rules found on the list, for the organizer to look at."""

    detected_at: str
    kind: str
    ticket_number: str | None
    attendee_name: str | None
    ticket_id: str | None
    records: str  # "device/record; device/record"
    conflict_id: str


async def conflict_rows(session: AsyncSession, checklist: CheckInList) -> list[ConflictRow]:
    rows = await session.execute(
        select(CheckInConflict, Ticket.ticket_number, Ticket.attendee_name)
        .outerjoin(Ticket, Ticket.id == CheckInConflict.ticket_id)
        .where(CheckInConflict.list_id == checklist.id)
        .order_by(CheckInConflict.detected_ms, CheckInConflict.id)
    )
    return [
        ConflictRow(
            format_datetime(c.detected_ms),
            c.kind,
            number,
            name,
            c.ticket_id,
            "; ".join(f"{device}/{record}" for device, record in c.records),
            c.id,
        )
        for c, number, name in rows.all()
    ]

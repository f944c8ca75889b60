"""The server's rows in the kernel's terms (:mod:`sync.checkin`, :mod:`sync.records`): a check-in
list as its door rules, a logged scan as a sync record, and the kernel's rule of which tickets a
list admits as a condition on the ``tickets`` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, true

from server.db.models import CheckInList, CheckInRecord, Ticket
from server.db.rows import Shape
from sync.checkin import Direction, ListRules, Reason, Verdict
from sync.records import Record

# A logged scan, read and written through the driver (``check_in_records`` aliased ``r``).
RECORD = Shape(CheckInRecord, "r")


def row_of(
    record: Record,
    *,
    environment: str,
    event_id: str,
    server_ms: int,
    kept: bool,
    app_id: str | None = None,
    metadata: Any = None,
) -> CheckInRecord:
    """The row that logs ``record`` (the inverse of :func:`record_of`), received at ``server_ms``
    from a desk or the server's own door (``app_id``: the app that scanned online), to be written
    by :data:`RECORD`."""
    return RECORD.new(
        id=record.record_id,
        device_id=record.device_id,
        environment=environment,
        event_id=event_id,
        list_id=record.list_id,
        ticket_id=record.ticket_id,
        token_generation=record.token_generation,
        direction=record.direction.value,
        decision=record.decision.value,
        reason=record.reason.value,
        gate=record.gate,
        scanner_did=record.scanner_did,
        manual_reason=record.manual_reason,
        app_id=app_id,
        device_ms=record.device_ms,
        clock_offset_ms=record.clock_offset_ms,
        server_ms=server_ms,
        metadata_=metadata,
        kept=kept,
    )


def rules_of(checklist: CheckInList) -> ListRules:
    return ListRules(
        list_id=checklist.id,
        tier_ids=frozenset(checklist.tier_ids) if checklist.tier_ids is not None else None,
        allow_multiple_entries=checklist.allow_multiple_entries,
        allow_reentry=checklist.allow_reentry,
        valid_from_ms=checklist.valid_from_ms,
        valid_until_ms=checklist.valid_until_ms,
        active=checklist.status == "active",
    )


def admitted_tier_ids(checklist: CheckInList) -> list[str] | None:
    """:meth:`sync.checkin.ListRules.admits_tier` as the tiers whose tickets the list admits, in
    order; None: every tier."""
    tier_ids = rules_of(checklist).tier_ids
    return None if tier_ids is None else sorted(tier_ids)


def admitted_tickets(checklist: CheckInList) -> ColumnElement[bool]:
    """:func:`admitted_tier_ids` over ``tickets``: the tickets of the list's tiers, or of every tier."""
    tier_ids = admitted_tier_ids(checklist)
    return true() if tier_ids is None else Ticket.tier_id.in_(tier_ids)


def record_of(row: CheckInRecord) -> Record:
    """A logged scan as a sync record (the merge rules' and the wire's form)."""
    return Record(
        device_id=row.device_id,
        record_id=row.id,
        list_id=row.list_id,
        ticket_id=row.ticket_id,
        token_generation=row.token_generation,
        direction=Direction(row.direction),
        decision=Verdict(row.decision),
        reason=Reason(row.reason),
        device_ms=row.device_ms,
        clock_offset_ms=row.clock_offset_ms,
        gate=row.gate,
        scanner_did=row.scanner_did,
        manual_reason=row.manual_reason,
    )

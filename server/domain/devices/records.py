"""Storing the check-in records desks upload: each once by ``(device id, record id)``, in a few
set-based statements per batch. A desk uploads only its own records: a batch carrying another
device's id (another desk's, or the server's own ``online``) is refused whole, before anything is
read or written, so no desk can take a key another device will write under."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from sqlalchemy import insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import CheckInRecord, Ticket
from server.domain.checkin.service import record_of
from server.domain.devices.conflicts import record_conflicts, record_key_reuse
from server.domain.outbox.lifecycle import check_in_entry, ticket_event_data
from server.domain.outbox.service import enqueue, event_uri
from server.errors import RecordDeviceMismatch
from sync.checkin import Direction
from sync.records import Record, RecordKey, is_ticket_ref

CHUNK = 500


async def _stored(session: AsyncSession, keys: Sequence[RecordKey]) -> dict[RecordKey, CheckInRecord]:
    found: dict[RecordKey, CheckInRecord] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = [(k.device_id, k.record_id) for k in keys[start : start + CHUNK]]
        rows = await session.scalars(
            select(CheckInRecord).where(tuple_(CheckInRecord.device_id, CheckInRecord.id).in_(chunk))
        )
        found.update({RecordKey(r.device_id, r.id): r for r in rows})
    return found


def ensure_own(uploader: str, records: Sequence[Record]) -> None:
    """Refuse a batch in which any record is not ``uploader``'s own."""
    foreign = sum(1 for record in records if record.device_id != uploader)
    if foreign:
        raise RecordDeviceMismatch(
            f"{foreign} of {len(records)} records carry another device's id: a desk uploads only "
            "the records it wrote itself, nothing of this batch was stored"
        )


async def resolve_tickets(
    session: AsyncSession, environment: str, records: Sequence[Record]
) -> list[Record | None]:
    """The records with their ticket named by id: a desk names it by reference
    (:func:`sync.records.ticket_ref`), resolved here; None for a reference no ticket of the
    environment has."""
    refs = sorted({r.ticket_id for r in records if r.ticket_id is not None and is_ticket_ref(r.ticket_id)})
    ids: dict[str, str] = {}
    for start in range(0, len(refs), CHUNK):
        rows = await session.execute(
            select(Ticket.ticket_ref, Ticket.id).where(
                Ticket.ticket_ref.in_(refs[start : start + CHUNK]), Ticket.environment == environment
            )
        )
        ids.update((ref, ticket_id) for ref, ticket_id in rows.all())
    return [
        record
        if record.ticket_id is None or not is_ticket_ref(record.ticket_id)
        else (replace(record, ticket_id=ids[record.ticket_id]) if record.ticket_id in ids else None)
        for record in records
    ]


async def store_records(
    session: AsyncSession,
    environment: str,
    uploader: str,
    records: Sequence[Record],
    event_ids: Mapping[str, str],
    now_ms: int,
) -> list[str]:
    """The records of the desk ``uploader`` (any other device's refuse the batch), one status per
    record: ``stored``, ``duplicate`` (already here — a different record under a
    stored key is kept out and recorded as a ``key_reuse`` conflict) or ``rejected`` (a list the
    uploading desk is not enrolled for). Conflicts of the new records are derived in the same
    transaction."""
    ensure_own(uploader, records)
    existing = await _stored(session, [r.key for r in records])
    statuses: list[str] = []
    fresh: dict[RecordKey, Record] = {}
    for record in records:
        if record.list_id not in event_ids:
            statuses.append("rejected")
            continue
        kept = existing.get(record.key)
        if kept is not None or record.key in fresh:
            if kept is not None and record_of(kept) != record:
                await record_key_reuse(session, environment, kept, now_ms)
            statuses.append("duplicate")
            continue
        fresh[record.key] = record
        statuses.append("stored")
    if fresh:
        await session.execute(
            insert(CheckInRecord),
            [
                {
                    "id": r.record_id,
                    "device_id": r.device_id,
                    "environment": environment,
                    "event_id": event_ids[r.list_id],
                    "list_id": r.list_id,
                    "ticket_id": r.ticket_id,
                    "token_generation": r.token_generation,
                    "direction": r.direction.value,
                    "decision": r.decision.value,
                    "reason": r.reason.value,
                    "gate": r.gate,
                    "scanner_did": r.scanner_did,
                    "manual_reason": r.manual_reason,
                    "app_id": None,
                    "device_ms": r.device_ms,
                    "clock_offset_ms": r.clock_offset_ms,
                    "server_ms": now_ms,
                }
                for r in fresh.values()
            ],
        )
        await record_conflicts(session, environment, list(fresh.values()), now_ms)
        await tell_apps(session, environment, list(fresh.values()), now_ms)
    return statuses


async def tell_apps(session: AsyncSession, environment: str, records: Sequence[Record], now_ms: int) -> None:
    """``ticket.checked-in`` for each admitted entry a desk decided offline, to the app that sold
    the ticket, with the scan's time and ``offline: true``. Called for newly stored records only
    (a record is stored once by its key), so each is told once, however often a desk uploads it;
    an entry the server decided online was told then, and its upload is a duplicate."""
    told = [r for r in records if r.admitted and r.direction is Direction.ENTRY and r.ticket_id is not None]
    if not told:
        return
    rows = await session.scalars(select(Ticket).where(Ticket.id.in_({r.ticket_id for r in told})))
    tickets = {ticket.id: ticket for ticket in rows}
    for record in told:
        ticket = tickets.get(record.ticket_id or "")
        if ticket is None:
            continue
        entry = check_in_entry(
            record.record_id,
            record.list_id,
            record.effective_ms,
            scanner_did=record.scanner_did,
            gate=record.gate,
            offline=True,
        )
        data = ticket_event_data(ticket, await event_uri(session, ticket.event_id), checkIn=entry)
        await enqueue(session, ticket.app_id, environment, "ticket.checked-in", data, now_ms)

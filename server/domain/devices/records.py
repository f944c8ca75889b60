"""Storing the check-in records desks upload by the kernel's acceptance rule
(:func:`sync.protocol.accept`), in a few set-based statements per batch. A desk uploads only its
own records: a batch carrying another device's id (another desk's, or the server's own
``online``) is refused whole, before anything is read or written, so no desk can take a key
another device will write under."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import driver_of
from server.db.models import CheckInRecord, Ticket
from server.db.rows import insert_all
from server.domain.checkin.door import RECORD, record_of, row_of
from server.domain.devices.conflicts import keep_conflict, kept_records, lock_tickets, record_conflicts
from server.domain.outbox.lifecycle import check_in_entry, ticket_event_data
from server.domain.outbox.service import MESSAGE as OUTBOX_MESSAGE
from server.domain.outbox.service import event_uri, outbox_message, webhook_url
from server.errors import RecordDeviceMismatch
from sync.merge import key_reuse
from sync.protocol import accept
from sync.records import Record, RecordKey, is_ticket_ref

_HELD = (
    f"SELECT {RECORD.columns} FROM check_in_records r "  # noqa: S608 (constant names)
    "WHERE r.device_id = :device_id AND r.id IN (:record_ids)"
)
# By the unique reference alone, the environment compared here: with the environment in the
# statement, a planner whose statistics trail a large sale scans the environment's every ticket.
_TICKET_IDS = "SELECT t.ticket_ref, t.id, t.environment FROM tickets t WHERE t.ticket_ref IN (:refs)"
_ENVIRONMENTS = "SELECT t.id, t.environment FROM tickets t WHERE t.id IN (:ids)"


async def _held(session: AsyncSession, keys: Iterable[RecordKey]) -> list[CheckInRecord]:
    """Every record stored under ``keys``, kept or not (as read: in no session)."""
    by_device: dict[str, set[str]] = {}
    for key in keys:
        by_device.setdefault(key.device_id, set()).add(key.record_id)
    driver = await driver_of(session)
    rows: list[tuple[Any, ...]] = []
    for device_id, record_ids in sorted(by_device.items()):
        rows += await driver.fetch_in(_HELD, {"device_id": device_id}, "record_ids", sorted(record_ids))
    return [RECORD.load(row) for row in rows]


def ensure_own(uploader: str, records: Sequence[Record]) -> None:
    """Refuse a batch in which any record is not ``uploader``'s own."""
    foreign = sum(1 for record in records if record.device_id != uploader)
    if foreign:
        raise RecordDeviceMismatch(
            f"{foreign} of {len(records)} records carry another device's id: a desk uploads only "
            "the records it wrote itself, nothing of this batch was stored"
        )


# A record as desks hold it (its ticket named by reference), and as the server stores it (by id).
Uploaded = tuple[Record, Record]


async def resolve_tickets(
    session: AsyncSession, environment: str, records: Sequence[Record]
) -> list[Uploaded | None]:
    """Each record as desks hold it and with its ticket named by id: a desk names it by reference
    (:func:`sync.records.ticket_ref`), resolved here; None for a record naming, by reference or by
    id, no ticket of the environment (another environment's tickets are no tickets of it)."""
    named = {r.ticket_id for r in records if r.ticket_id is not None}
    refs = sorted(ticket for ticket in named if is_ticket_ref(ticket))
    driver = await driver_of(session)
    rows = await driver.fetch_in(_TICKET_IDS, {}, "refs", refs)
    ids = {ref: ticket_id for ref, ticket_id, its_environment in rows if its_environment == environment}
    by_id = sorted(named.difference(refs))
    known = {
        ticket_id
        for ticket_id, its in await driver.fetch_in(_ENVIRONMENTS, {}, "ids", by_id)
        if its == environment
    }

    def both(record: Record) -> Uploaded | None:
        if record.ticket_id is None:
            return record, record
        if not is_ticket_ref(record.ticket_id):
            return (record.with_ticket_ref(), record) if record.ticket_id in known else None
        found = ids.get(record.ticket_id)
        return None if found is None else (record, record.naming(found))

    return [both(record) for record in records]


async def store_records(
    session: AsyncSession,
    environment: str,
    uploader: str,
    uploaded: Sequence[Uploaded],
    event_ids: Mapping[str, str],
    now_ms: int,
) -> list[str]:
    """The records of the desk ``uploader`` (any other device's refuse the batch), one status per
    record: ``rejected`` for a list the uploading desk is not enrolled for, else as the kernel's
    acceptance rule (:func:`sync.protocol.accept`) says: ``stored`` (new here, a different record
    under a stored key too) or ``duplicate`` (already here). Of the records under one key the
    kernel's canonical one is kept, whatever the arrival order; the door state, the conflicts
    (``key_reuse`` among them) and the apps' ``ticket.checked-in`` follow the kept records, all in
    the same transaction.

    The kernel compares records as desks hold them, their tickets named by reference
    (:func:`resolve_tickets`), so the server keeps the record every desk keeps."""
    ensure_own(uploader, [record for _, record in uploaded])
    batch = [pair for pair in uploaded if pair[1].list_id in event_ids]
    rows = await _held(session, (record.key for _, record in batch))
    as_desks = {record_of(row).with_ticket_ref(): row for row in rows}
    plain = dict(batch)
    accepted = accept(as_desks, [as_desk for as_desk, _ in batch])
    results = iter(accepted.results)
    statuses = [next(results).value if record.list_id in event_ids else "rejected" for _, record in uploaded]

    def by_id(record: Record) -> Record:
        """A record of the kernel's answer as the server holds it: its ticket named by id."""
        return plain[record] if record in plain else record_of(as_desks[record])

    changed = [by_id(record) for record in (*accepted.kept, *accepted.superseded)]
    touched = {(r.list_id, r.ticket_id) for r in changed if r.ticket_id is not None}
    # The touched pairs' kept records, read once their tickets are locked and before this batch's
    # own are written: what is kept after it is that, less the records it supersedes, plus those it
    # keeps.
    tickets = await lock_tickets(session, (ticket_id for _, ticket_id in touched))
    kept_before = await kept_records(session, touched)
    if accepted.superseded:
        await session.execute(
            update(CheckInRecord)
            .where(CheckInRecord.seq.in_([as_desks[record].seq for record in accepted.superseded]))
            .values(kept=False)
        )
    if accepted.stored:
        kept = set(accepted.kept)
        await RECORD.insert_many(
            await driver_of(session),
            (
                row_of(
                    plain[r],
                    environment=environment,
                    event_id=event_ids[r.list_id],
                    server_ms=now_ms,
                    kept=r in kept,
                )
                for r in accepted.stored
            ),
        )

    superseded = {as_desks[record].seq for record in accepted.superseded}
    kept_after = [record_of(row) for row in kept_before if row.seq not in superseded]
    await record_conflicts(
        session,
        environment,
        touched,
        kept_after + [plain[record] for record in accepted.kept],
        tickets,
        now_ms,
    )
    for variants in accepted.reused.values():
        kept_one = variants[0]
        event_id = event_ids[kept_one.list_id] if kept_one in plain else as_desks[kept_one].event_id
        reuse = key_reuse(tuple(by_id(record) for record in variants))
        await keep_conflict(session, environment, event_id, reuse, now_ms)
    await tell_apps(
        session, environment, [plain[record] for record in accepted.first_entries], tickets, now_ms
    )
    return statuses


async def tell_apps(
    session: AsyncSession,
    environment: str,
    records: Sequence[Record],
    tickets: Mapping[str, Ticket],
    now_ms: int,
) -> None:
    """``ticket.checked-in`` for each admitted entry a desk decided offline, to the app that sold
    the ticket, with the scan's time and ``offline: true``. Called for the kernel's first entries
    of a batch (:attr:`sync.protocol.Acceptance.first_entries`), so a key is told once, however
    often a desk uploads it or reuses it; an entry the server decided online was told then, and
    its upload is a duplicate."""
    if not records:
        return
    named = [tickets[r.ticket_id] for r in records if r.ticket_id is not None and r.ticket_id in tickets]
    destinations = {app_id: await webhook_url(session, app_id) for app_id in {t.app_id for t in named}}
    # Only the tickets of apps whose events go somewhere are told (the rest would make nothing).
    told = {ticket.id: ticket for ticket in named if destinations[ticket.app_id]}
    uris = {event: await event_uri(session, event) for event in {t.event_id for t in told.values()}}
    messages = []
    for record in records:
        ticket = told.get(record.ticket_id or "")
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
        data = ticket_event_data(ticket, uris[ticket.event_id], checkIn=entry)
        messages.append(
            outbox_message(
                ticket.app_id, destinations[ticket.app_id], environment, "ticket.checked-in", data, now_ms
            )
        )
    await insert_all(await driver_of(session), (OUTBOX_MESSAGE, messages))

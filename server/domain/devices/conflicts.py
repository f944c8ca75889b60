"""Conflicts derived from the check-in records by the shared merge rules (:mod:`sync.merge`), kept
as rows for the organizer. Recomputed for the (list, ticket) pairs a batch of records touched, from
all of their records: the same set gives the same conflicts on every replica, so the server's rows
match what every desk shows."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.datetimes import format_datetime
from server.db.engine import driver_of
from server.db.models import CheckInConflict, CheckInList, CheckInRecord, Event, Ticket
from server.db.rows import Shape
from server.domain.checkin.door import RECORD, rules_of
from server.domain.common import compact
from server.domain.outbox.lifecycle import event_data, ticket_entry
from server.domain.outbox.service import enqueue
from sync.merge import Conflict, StatusChange, TicketHistory, derive
from sync.records import Record

TICKET = Shape(Ticket, "t")
# Ordered per ticket as the merge rules read them (slices split by ticket, so each stays whole).
_STATUS_CHANGES = (
    "SELECT e.ticket_id, e.at_ms, e.status, e.generation FROM ticket_events e "
    "WHERE e.ticket_id IN (:ticket_ids) ORDER BY e.ticket_id, e.at_ms, e.id"
)
_KEPT_OF_TICKETS = (
    f"SELECT {RECORD.columns} FROM check_in_records r "  # noqa: S608 (constant names)
    "WHERE r.list_id IN (:list_ids) AND r.ticket_id IN (:ticket_ids) AND r.kept"
)
_TICKETS_OF = f"SELECT {TICKET.columns} FROM tickets t WHERE t.id IN (:ticket_ids)"  # noqa: S608 (constant names)
# Locked in the order Python sorts their ids (code points), whatever the database's collation.
_IN_LOCK_ORDER = ' ORDER BY t.id COLLATE "C"'


async def ticket_histories(session: AsyncSession, tickets: Mapping[str, Ticket]) -> dict[str, TicketHistory]:
    """The status changes of ``tickets`` (read with :func:`lock_tickets`), as the merge rules read them."""
    changes: dict[str, list[StatusChange]] = {}
    driver = await driver_of(session)
    for ticket_id, at_ms, status, generation in await driver.fetch_in(
        _STATUS_CHANGES, {}, "ticket_ids", sorted(tickets)
    ):
        changes.setdefault(ticket_id, []).append(StatusChange(at_ms, status, generation))
    return {t: TicketHistory(t, tickets[t].tier_id, tuple(c)) for t, c in changes.items()}


Pair = tuple[str, str]  # (list, ticket)


async def lock_tickets(
    session: AsyncSession, ticket_ids: Iterable[str], *, lock: bool = True
) -> dict[str, Ticket]:
    """The tickets of ``ticket_ids`` (as read: in no session), their rows locked as an online
    check-in locks its ticket's (:func:`server.domain.checkin.service.evaluate`), in id order, so
    that two uploads never wait for each other in a cycle. An upload then waits for every other
    transaction judging or admitting one of its tickets (another desk's upload, a scan at the door,
    a void) and reads what it committed. Without it, on PostgreSQL, two transactions each judged a
    ticket without the other's records: an admission in each was a conflict neither recorded, or a
    second online admission. SQLite runs one write transaction at a time and needs no lock.
    ``lock=False`` reads them only (what the tests' negative controls do)."""
    ids = sorted(set(ticket_ids))
    if not ids:
        return {}
    driver = await driver_of(session)
    locked = lock and not driver.sqlite
    rows = await driver.fetch_in(
        _TICKETS_OF + (_IN_LOCK_ORDER + driver.for_update() if locked else ""), {}, "ticket_ids", ids
    )
    return {ticket.id: ticket for ticket in map(TICKET.load, rows)}


async def kept_records(session: AsyncSession, pairs: Collection[Pair]) -> list[CheckInRecord]:
    """The kept records of the ``pairs``, as read (in no session); read after their tickets are
    locked (:func:`lock_tickets`), they include every other transaction's that judged them."""
    if not pairs:
        return []
    ticket_ids = sorted({p[1] for p in pairs})
    list_ids = sorted({p[0] for p in pairs})
    touched = await (await driver_of(session)).fetch_in(
        _KEPT_OF_TICKETS, {"list_ids": list_ids}, "ticket_ids", ticket_ids
    )
    return [row for row in map(RECORD.load, touched) if (row.list_id, row.ticket_id) in pairs]


async def record_conflicts(
    session: AsyncSession,
    environment: str,
    pairs: Collection[Pair],
    kept: Iterable[Record],
    tickets: Mapping[str, Ticket],
    now_ms: int,
) -> None:
    """Derive and store (once, by their stable id) the conflicts of the ``pairs``, from ``kept``:
    every kept record of them; ``tickets``: theirs (:func:`lock_tickets`)."""
    if not pairs:
        return
    lists = {
        c.id: c
        for c in await session.scalars(select(CheckInList).where(CheckInList.id.in_({p[0] for p in pairs})))
    }
    derived = derive(
        kept,
        {list_id: rules_of(checklist) for list_id, checklist in lists.items()},
        await ticket_histories(session, tickets),
    )
    for conflict in derived.conflicts:
        await keep_conflict(session, environment, lists[conflict.list_id].event_id, conflict, now_ms)


async def keep_conflict(
    session: AsyncSession, environment: str, event_id: str, conflict: Conflict, now_ms: int
) -> None:
    """Store a conflict once, under its stable id, and tell the event's app (``ticket.conflict``)
    the first time."""
    if await session.get(CheckInConflict, conflict.conflict_id) is not None:
        return
    row = CheckInConflict(
        id=conflict.conflict_id,
        environment=environment,
        event_id=event_id,
        list_id=conflict.list_id,
        ticket_id=conflict.ticket_id,
        kind=conflict.kind.value,
        records=[[k.device_id, k.record_id] for k in conflict.records],
        detected_ms=now_ms,
    )
    session.add(row)
    await session.flush()
    await _announce(session, row, now_ms)


async def _announce(session: AsyncSession, conflict: CheckInConflict, now_ms: int) -> None:
    """The ``ticket.conflict`` lifecycle event, to the app the event belongs to."""
    event = await session.get(Event, conflict.event_id)
    assert event is not None
    ticket = None if conflict.ticket_id is None else await session.get(Ticket, conflict.ticket_id)
    data = event_data(
        event_id=event.id,
        event_uri=event.uri,
        tickets=None if ticket is None else [ticket_entry(ticket, event.uri)],
        conflict=conflict_view(conflict),
    )
    await enqueue(session, event.owner_app_id, conflict.environment, "ticket.conflict", data, now_ms)


def conflict_view(conflict: CheckInConflict) -> dict[str, Any]:
    """A conflict as apps and the console see it (no resolution)."""
    return compact(
        {
            "id": conflict.id,
            "kind": conflict.kind,
            "eventId": conflict.event_id,
            "checkInListId": conflict.list_id,
            "ticketId": conflict.ticket_id,
            "records": [{"deviceId": d, "id": r} for d, r in conflict.records],
            "detectedAt": format_datetime(conflict.detected_ms),
        }
    )

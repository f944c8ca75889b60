"""Check-in list management. Every list has its own signing keys; because passes are signed when
rendered, a list created or changed after issuance is on every pass rendered after the change."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import CheckInList, CheckInRecord, Event, ListKey, Ticket, Tier
from server.domain.caller import Caller
from server.domain.catalog.service import ensure_can_manage, find_event
from server.domain.checkin.door import admitted_tickets, record_of
from server.domain.issuance.list_keys import Keyring, add_list, add_list_key, ensure_default_list
from server.domain.publishing.marks import mark_changed
from server.errors import CheckInListNotFound, InvalidRequest, TierNotFound
from sync.merge import judge_ticket
from sync.records import Record

LIST_STATUSES = ("active", "archived")


@dataclass(frozen=True, slots=True)
class ListCounts:
    checked_in: int
    inside: int
    admissible: int
    scans: int
    refused: int


# A list, by id, of an event of the environment (bind ``list_id`` and ``environment``).
LIST_IN_ENVIRONMENT = (
    select(CheckInList)
    .join(Event, Event.id == CheckInList.event_id)
    .where(CheckInList.id == bindparam("list_id"), Event.environment == bindparam("environment"))
    .execution_options(populate_existing=True)
)


async def find_list(session: AsyncSession, environment: str, list_id: str) -> CheckInList:
    found = await session.scalar(LIST_IN_ENVIRONMENT, {"list_id": list_id, "environment": environment})
    if found is None:
        raise CheckInListNotFound(f"check-in list {list_id} not found")
    return found


async def _check_tiers(session: AsyncSession, event_id: str, tier_ids: list[str] | None) -> None:
    if not tier_ids:
        return
    known = set(
        await session.scalars(select(Tier.id).where(Tier.event_id == event_id, Tier.id.in_(tier_ids)))
    )
    missing = [t for t in tier_ids if t not in known]
    if missing:
        raise TierNotFound(f"not tiers of this event: {', '.join(missing)}")


def _check_window(valid_from: int | None, valid_until: int | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidRequest("validUntil must be after validFrom")


async def create_list(
    session: AsyncSession,
    keyring: Keyring,
    caller: Caller,
    event_id: str,
    fields: dict[str, Any],
    now_ms: int,
) -> CheckInList:
    """``fields`` are column values (name, description, tier_ids, allow_*, valid_*, gates)."""
    event = await find_event(session, caller.environment, event_id=event_id)
    await ensure_can_manage(session, event, caller)
    await ensure_default_list(session, keyring, event.id, now_ms)
    await _check_tiers(session, event.id, fields.get("tier_ids"))
    _check_window(fields.get("valid_from_ms"), fields.get("valid_until_ms"))
    return await add_list(session, keyring, event.id, now_ms, is_default=False, **fields)


async def update_list(
    session: AsyncSession,
    keyring: Keyring,
    caller: Caller,
    list_id: str,
    changes: dict[str, Any],
    now_ms: int,
    *,
    rotate_key: bool = False,
) -> CheckInList:
    checklist = await find_list(session, caller.environment, list_id)
    event = await find_event(session, caller.environment, event_id=checklist.event_id)
    await ensure_can_manage(session, event, caller)
    if changes.get("status") not in (None, *LIST_STATUSES):
        raise InvalidRequest(f"status must be one of {', '.join(LIST_STATUSES)}")
    if "tier_ids" in changes:
        await _check_tiers(session, event.id, changes["tier_ids"])
    _check_window(
        changes.get("valid_from_ms", checklist.valid_from_ms),
        changes.get("valid_until_ms", checklist.valid_until_ms),
    )
    for name, value in changes.items():
        setattr(checklist, name, value)
    checklist.updated_ms = now_ms
    if rotate_key:
        await add_list_key(session, keyring, checklist.id, now_ms)
    await mark_changed(session, event.id)
    return checklist


async def event_lists(session: AsyncSession, caller: Caller, event_id: str) -> list[CheckInList]:
    """The lists of an event the caller manages. A read: it makes nothing (an event gets its default
    list when it is created, or by ``createCheckInList``)."""
    event = await find_event(session, caller.environment, event_id=event_id)
    await ensure_can_manage(session, event, caller)
    return list(
        await session.scalars(
            select(CheckInList).where(CheckInList.event_id == event.id).order_by(CheckInList.id)
        )
    )


async def key_ids(session: AsyncSession, list_id: str) -> list[str]:
    """Active key first, then retired ones, newest first."""
    rows = await session.execute(
        select(ListKey.key_id, ListKey.status)
        .where(ListKey.list_id == list_id)
        .order_by(ListKey.created_ms.desc())
    )
    return [k for k, status in sorted(rows.all(), key=lambda row: row[1] != "active")]


async def counts(session: AsyncSession, checklist: CheckInList) -> ListCounts:
    """Live counts of the kept records: each ticket's door state as the kernel folds it
    (:func:`sync.merge.judge_ticket`: the admissions that stand, in the total order), the scans and
    refusals, and the active tickets the list admits."""
    admitted = await session.scalars(
        select(CheckInRecord).where(
            CheckInRecord.list_id == checklist.id,
            CheckInRecord.decision == "admit",
            CheckInRecord.ticket_id.is_not(None),
            CheckInRecord.kept.is_(True),
        )
    )
    by_ticket: dict[str | None, list[Record]] = defaultdict(list)
    for row in admitted:
        by_ticket[row.ticket_id].append(record_of(row))
    doors = [judge_ticket(records, None, None).door for records in by_ticket.values()]
    totals = await session.execute(
        select(CheckInRecord.decision, func.count())
        .where(CheckInRecord.list_id == checklist.id, CheckInRecord.kept.is_(True))
        .group_by(CheckInRecord.decision)
    )
    by_decision = dict(totals.all())
    admissible = (
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.event_id == checklist.event_id, Ticket.status == "active", admitted_tickets(checklist))
    )
    return ListCounts(
        checked_in=sum(1 for door in doors if door.entries),
        inside=sum(1 for door in doors if door.inside),
        admissible=int(await session.scalar(admissible) or 0),
        scans=sum(by_decision.values()),
        refused=by_decision.get("refuse", 0),
    )


async def search(session: AsyncSession, checklist: CheckInList, text: str, limit: int) -> list[Ticket]:
    """Tickets the list admits whose number starts with ``text`` (dashes and case ignored) or whose
    attendee name contains it (case ignored)."""
    number = text.upper().replace("-", "")
    query = select(Ticket).where(
        Ticket.event_id == checklist.event_id,
        func.replace(Ticket.ticket_number, "-", "").like(f"{escape_like(number)}%", escape="\\")
        | func.lower(Ticket.attendee_name).like(f"%{escape_like(text.lower())}%", escape="\\"),
        admitted_tickets(checklist),
    )
    return list(
        await session.scalars(query.order_by(Ticket.attendee_name, Ticket.ticket_number).limit(limit))
    )


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class ListFacts:
    """A list with what is shown of it: its live counts and its key ids."""

    checklist: CheckInList
    counts: ListCounts
    key_ids: list[str]


async def list_facts(session: AsyncSession, checklist: CheckInList) -> ListFacts:
    return ListFacts(checklist, await counts(session, checklist), await key_ids(session, checklist.id))


async def create(
    db: Database, keyring: Keyring, caller: Caller, event_id: str, fields: dict[str, Any], now_ms: int
) -> ListFacts:
    """``createCheckInList``: :func:`create_list` in its own write transaction."""
    async with db.write() as session:
        return await list_facts(
            session, await create_list(session, keyring, caller, event_id, fields, now_ms)
        )


async def update(
    db: Database,
    keyring: Keyring,
    caller: Caller,
    list_id: str,
    changes: dict[str, Any],
    now_ms: int,
    *,
    rotate_key: bool,
) -> ListFacts:
    """``updateCheckInList``: :func:`update_list` in its own write transaction."""
    async with db.write() as session:
        changed = await update_list(session, keyring, caller, list_id, changes, now_ms, rotate_key=rotate_key)
        return await list_facts(session, changed)


async def listed(db: Database, caller: Caller, event_id: str) -> list[ListFacts]:
    """``listCheckInLists``: the lists of an event the caller manages."""
    async with db.read() as session:
        return [
            await list_facts(session, checklist) for checklist in await event_lists(session, caller, event_id)
        ]

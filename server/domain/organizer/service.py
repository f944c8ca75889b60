"""The organizer's view of one event (already authorized, see :mod:`.access`): the facts of the
organizer methods' answers, which ``server/xrpc/views.py`` shapes for the wire and the console
renders too."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import (
    CapacityGroup,
    CheckInConflict,
    CheckInList,
    CheckInRecord,
    ConflictResolution,
    Device,
    Event,
    Hold,
    HoldItem,
    OutboxMessage,
    Payment,
    Ticket,
    TicketEvent,
    Tier,
)
from server.domain import ledger
from server.domain.catalog.rules import Pool, tier_available
from server.domain.catalog.service import held_places
from server.domain.checkin.lists import ListCounts, counts, escape_like
from server.domain.devices import service as devices
from server.domain.exports.service import export_list
from server.domain.issuance import service as issuance
from server.domain.organizer.access import Viewer, viewed_event
from server.domain.organizer.rules import OrderLine, TierMoney, add_order, entry_buckets
from server.domain.outbox import service as outbox
from server.errors import (
    CheckInListNotFound,
    ConflictNotFound,
    CustomerEmailMissing,
    DeviceNotFound,
    InvalidRequest,
    TicketNotActive,
    TicketNotFound,
    WebhookDeliveryNotFound,
)

ATTENTION = ("needs_refund", "needs_review")
PAYMENT_ISSUES = (*ATTENTION, "partially_refunded")
OUTCOMES = ("admitted", "refused", "dismissed")
CONFLICT_STATES = ("open", "resolved", "all")


# --- the summary ---------------------------------------------------------------------------------


async def _money_per_tier(session: AsyncSession, event_id: str) -> dict[str, TierMoney]:
    """Gross, discounts and fees of the completed orders per tier (an order's discount and app fee
    shared among its lines by their amounts), and refunds: the refunded tickets' prices."""
    money: dict[str, TierMoney] = {}
    rows = await session.execute(
        select(
            Hold.id,
            Hold.discount_amount,
            Hold.app_fee_amount,
            HoldItem.tier_id,
            HoldItem.quantity,
            HoldItem.unit_amount,
        )
        .join(HoldItem, HoldItem.hold_id == Hold.id)
        .where(Hold.event_id == event_id, Hold.status == "completed")
        .order_by(Hold.id, HoldItem.id)
    )
    orders: dict[str, list[Any]] = defaultdict(list)
    for row in rows.all():
        orders[row.id].append(row)
    for lines in orders.values():
        order = [OrderLine(line.tier_id, line.quantity, line.unit_amount) for line in lines]
        add_order(money, order, lines[0].discount_amount, lines[0].app_fee_amount)
    refunds = await session.execute(
        select(Ticket.tier_id, func.sum(Ticket.unit_amount))
        .where(Ticket.event_id == event_id, Ticket.status == "refunded")
        .group_by(Ticket.tier_id)
    )
    for tier_id, amount in refunds.all():
        money.setdefault(tier_id, TierMoney()).refunds += int(amount)
    return money


@dataclass(frozen=True, slots=True)
class TierSales:
    """A tier's sales: places sold, held and left, and the money of its completed orders."""

    tier: Tier
    held: int
    available: int
    money: TierMoney


async def _tiers(session: AsyncSession, event: Event, now_ms: int) -> list[TierSales]:
    tiers = list(
        await session.scalars(
            select(Tier).where(Tier.event_id == event.id).order_by(Tier.created_ms, Tier.id)
        )
    )
    groups = {
        g.id: g
        for g in await session.scalars(select(CapacityGroup).where(CapacityGroup.event_id == event.id))
    }
    held = await held_places(session, groups, now_ms)
    money = await _money_per_tier(session, event.id)
    out = []
    for tier in tiers:
        group = groups[tier.capacity_group_id]
        in_group = Pool(group.total_capacity, group.sold, held.per_group.get(group.id, 0))
        in_tier = Pool(tier.quantity_total, tier.sold, held.per_tier.get(tier.id, 0))
        m = money.get(tier.id, TierMoney())
        out.append(TierSales(tier, held.per_tier.get(tier.id, 0), tier_available(in_tier, in_group), m))
    return out


async def _breakdown(session: AsyncSession, list_id: str, column: Any) -> list[tuple[str, int]]:
    """Admitted entries of a list per gate or per desk."""
    rows = await session.execute(
        select(column, func.count())
        .where(
            CheckInRecord.list_id == list_id,
            CheckInRecord.decision == "admit",
            CheckInRecord.direction == "entry",
            CheckInRecord.kept.is_(True),
        )
        .group_by(column)
        .order_by(column)
    )
    return [(name or "", int(n)) for name, n in rows.all()]


@dataclass(frozen=True, slots=True)
class ListDoor:
    """A check-in list's door: its counts, and its admitted entries per gate and per desk."""

    checklist: CheckInList
    counts: ListCounts
    by_gate: list[tuple[str, int]]
    by_device: list[tuple[str, int]]


async def _lists(session: AsyncSession, event: Event) -> list[ListDoor]:
    return [
        ListDoor(
            checklist,
            await counts(session, checklist),
            await _breakdown(session, checklist.id, CheckInRecord.gate),
            await _breakdown(session, checklist.id, CheckInRecord.device_id),
        )
        for checklist in await session.scalars(
            select(CheckInList).where(CheckInList.event_id == event.id).order_by(CheckInList.id)
        )
    ]


def _open_conflicts(event_id: str) -> Any:
    resolved = select(ConflictResolution.conflict_id)
    return select(CheckInConflict).where(
        CheckInConflict.event_id == event_id, CheckInConflict.id.not_in(resolved)
    )


def _event_payments(event_id: str, statuses: tuple[str, ...]) -> Any:
    return (
        select(Payment)
        .join(Hold, Hold.id == Payment.hold_id)
        .where(Hold.event_id == event_id, Payment.status.in_(statuses))
    )


async def _count(session: AsyncSession, query: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


@dataclass(frozen=True, slots=True)
class Summary:
    """Sales per tier, door counts per check-in list, open conflicts and payments needing
    attention, as of ``as_of_ms``."""

    event: Event
    tiers: list[TierSales]
    lists: list[ListDoor]
    open_conflicts: int
    payments_needing_attention: int
    as_of_ms: int


async def event_summary(session: AsyncSession, event: Event, now_ms: int) -> Summary:
    return Summary(
        event,
        await _tiers(session, event, now_ms),
        await _lists(session, event),
        await _count(session, _open_conflicts(event.id)),
        await _count(session, _event_payments(event.id, ATTENTION)),
        now_ms,
    )


def _log(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    subject: str,
    subject_id: str,
    action: str,
    now_ms: int,
    data: dict[str, Any] | None = None,
) -> None:
    """The ledger entry of a change the viewer made to one of the event's things."""
    session.add(
        ledger.entry(
            environment=event.environment,
            event_id=event.id,
            subject=subject,
            subject_id=subject_id,
            action=action,
            actor=viewer.actor,
            now_ms=now_ms,
            data=data,
        )
    )


# --- conflicts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConflictHistory:
    """A conflict and every resolution of it, oldest first (the last one stands)."""

    conflict: CheckInConflict
    resolutions: list[ConflictResolution]

    @property
    def resolved(self) -> bool:
        return bool(self.resolutions)


async def _with_resolutions(session: AsyncSession, conflicts: list[CheckInConflict]) -> list[ConflictHistory]:
    rows = await session.scalars(
        select(ConflictResolution)
        .where(ConflictResolution.conflict_id.in_([c.id for c in conflicts]))
        .order_by(ConflictResolution.id)
    )
    history: dict[str, list[ConflictResolution]] = defaultdict(list)
    for row in rows:
        history[row.conflict_id].append(row)
    return [ConflictHistory(c, history[c.id]) for c in conflicts]


async def list_conflicts(session: AsyncSession, event: Event, state: str = "open") -> list[ConflictHistory]:
    """The event's conflicts, oldest first, each with every resolution (the last one stands)."""
    if state not in CONFLICT_STATES:
        raise InvalidRequest(f"status must be one of {', '.join(CONFLICT_STATES)}")
    query = select(CheckInConflict).where(CheckInConflict.event_id == event.id)
    if state == "open":
        query = _open_conflicts(event.id)
    found = list(await session.scalars(query.order_by(CheckInConflict.detected_ms, CheckInConflict.id)))
    histories = await _with_resolutions(session, found)
    return [h for h in histories if state != "resolved" or h.resolved]


async def resolve_conflict(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    conflict_id: str,
    outcome: str,
    reason: str,
    now_ms: int,
) -> ConflictHistory:
    """Append a resolution (who and why); the conflict and its records stay as they are."""
    if outcome not in OUTCOMES:
        raise InvalidRequest(f"outcome must be one of {', '.join(OUTCOMES)}")
    if not reason.strip():
        raise InvalidRequest("a reason is required")
    conflict = await session.get(CheckInConflict, conflict_id)
    if conflict is None or conflict.event_id != event.id:
        raise ConflictNotFound("no conflict with this id belongs to the event")
    session.add(
        ConflictResolution(
            conflict_id=conflict.id, outcome=outcome, reason=reason.strip(), actor=viewer.actor, at_ms=now_ms
        )
    )
    _log(session, viewer, event, "conflict", conflict.id, "resolved", now_ms, data={"outcome": outcome})
    await session.flush()
    (history,) = await _with_resolutions(session, [conflict])
    return history


# --- payments, tickets, desks, deliveries --------------------------------------------------------


async def payment_issues(session: AsyncSession, event: Event) -> list[Payment]:
    """Payments of the event that need a refund or a review, and the partly refunded ones."""
    rows = await session.scalars(
        _event_payments(event.id, PAYMENT_ISSUES).order_by(Payment.updated_ms.desc(), Payment.id)
    )
    return list(rows)


async def event_ticket(session: AsyncSession, event: Event, ticket_id: str) -> Ticket:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or ticket.event_id != event.id:
        raise TicketNotFound("no ticket with this id belongs to the event")
    return ticket


def _mentioning(event: Event, text: str) -> Any:
    """The lifecycle messages to the event's app whose body names ``text`` (an id, quoted)."""
    pattern = f'%"{text}"%'
    return select(OutboxMessage).where(
        OutboxMessage.app_id == event.owner_app_id, OutboxMessage.body.like(pattern)
    )


@dataclass(frozen=True, slots=True)
class TicketHistory:
    """A ticket's status changes (issue, void, refund, transfers), its scans and the lifecycle
    events sent about it."""

    ticket: Ticket
    changes: list[TicketEvent]
    scans: list[CheckInRecord]
    sent: list[OutboxMessage]


async def ticket_history(session: AsyncSession, event: Event, ticket_id: str) -> TicketHistory:
    ticket = await event_ticket(session, event, ticket_id)
    changes = await session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    )
    scans = await session.scalars(
        select(CheckInRecord)
        .where(CheckInRecord.ticket_id == ticket.id, CheckInRecord.kept.is_(True))
        .order_by(CheckInRecord.seq)
    )
    sent = await session.scalars(_mentioning(event, ticket.id).order_by(OutboxMessage.id))
    return TicketHistory(ticket, list(changes), list(scans), list(sent))


async def event_devices(session: AsyncSession, event: Event) -> list[Device]:
    return list(
        await session.scalars(
            select(Device).where(Device.event_id == event.id).order_by(Device.created_ms, Device.id)
        )
    )


async def revoke_device(
    session: AsyncSession, viewer: Viewer, event: Event, device_id: str, now_ms: int
) -> Device:
    """Revoke one of the event's desks: refused from now on, and told to wipe its data."""
    found = await session.get(Device, device_id)
    if found is None or found.event_id != event.id:
        raise DeviceNotFound("no desk with this id belongs to the event")
    device = await devices.revoke(session, device_id, now_ms)
    _log(session, viewer, event, "device", device.id, "revoked", now_ms)
    return device


async def deliveries(session: AsyncSession, event: Event, limit: int = 50) -> list[OutboxMessage]:
    """The newest lifecycle events sent to the event's app about the event."""
    rows = await session.scalars(_mentioning(event, event.id).order_by(OutboxMessage.id.desc()).limit(limit))
    return list(rows)


async def redrive_delivery(
    session: AsyncSession, viewer: Viewer, event: Event, delivery_id: str, now_ms: int
) -> OutboxMessage:
    """Send a delivery about the event again, due now, with a fresh attempt budget."""
    message: OutboxMessage | None = await session.scalar(
        _mentioning(event, event.id).where(OutboxMessage.delivery_id == delivery_id)
    )
    if message is None:
        raise WebhookDeliveryNotFound("no delivery with this id concerns the event")
    await outbox.redrive(session, delivery_ids=[delivery_id], state=None, now_ms=now_ms)
    _log(session, viewer, event, "delivery", delivery_id, "redriven", now_ms)
    await session.refresh(message)
    return message


# --- the live door -------------------------------------------------------------------------------


async def inside_now(session: AsyncSession, event: Event) -> int:
    """Guests inside now, over every check-in list of the event."""
    total = 0
    for checklist in await session.scalars(select(CheckInList).where(CheckInList.event_id == event.id)):
        total += (await counts(session, checklist)).inside
    return total


async def entries_over_time(session: AsyncSession, event: Event, bucket_ms: int) -> list[tuple[int, int]]:
    """Admitted entries per ``bucket_ms`` of server time, from the first to the last (empty
    buckets included)."""
    times = list(
        await session.scalars(
            select(CheckInRecord.server_ms)
            .where(
                CheckInRecord.event_id == event.id,
                CheckInRecord.decision == "admit",
                CheckInRecord.direction == "entry",
                CheckInRecord.kept.is_(True),
            )
            .order_by(CheckInRecord.server_ms)
        )
    )
    return entry_buckets(times, bucket_ms)


async def enroll_desk(
    session: AsyncSession, viewer: Viewer, event: Event, name: str, now_ms: int
) -> devices.Enrollment:
    """A one-time enrollment code for a new desk scanning every check-in list of the event."""
    list_ids = list(await session.scalars(select(CheckInList.id).where(CheckInList.event_id == event.id)))
    made = await devices.create_enrollment(
        session, event.environment, list_ids, name.strip() or "Desk", now_ms
    )
    _log(session, viewer, event, "device", made.device.id, "enrollment_created", now_ms)
    return made


async def search_tickets(session: AsyncSession, event: Event, text: str, limit: int) -> list[Ticket]:
    """Tickets of the event whose number starts with ``text`` (dashes and case ignored), or whose
    attendee name or e-mail contains it (case ignored)."""
    number = text.strip().upper().replace("-", "")
    needle = f"%{escape_like(text.strip().lower())}%"
    query = select(Ticket).where(
        Ticket.event_id == event.id,
        func.replace(Ticket.ticket_number, "-", "").like(f"{escape_like(number)}%", escape="\\")
        | func.lower(Ticket.attendee_name).like(needle, escape="\\")
        | func.lower(Ticket.attendee_email).like(needle, escape="\\"),
    )
    return list(
        await session.scalars(query.order_by(Ticket.attendee_name, Ticket.ticket_number).limit(limit))
    )


# --- one call each: the organizer methods and the console's pages -----------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Viewed(Generic[T]):
    """What a viewer sees of an event: the event, and the part asked for."""

    event: Event
    value: T


@asynccontextmanager
async def _viewing(
    db: Database, viewer: Viewer, event_id: str, *, write: bool = False
) -> AsyncIterator[tuple[AsyncSession, Event]]:
    """A transaction on an event ``viewer`` may see (:func:`.access.viewed_event`)."""
    async with db.write() if write else db.read() as session:
        yield session, await viewed_event(session, viewer, event_id)


async def event_of(db: Database, viewer: Viewer, event_id: str) -> Event:
    async with _viewing(db, viewer, event_id) as (_, event):
        return event


@dataclass(frozen=True, slots=True)
class Dashboard:
    summary: Summary
    entries_over_time: list[tuple[int, int]]


async def summary_of(db: Database, viewer: Viewer, event_id: str, now_ms: int) -> Viewed[Summary]:
    async with _viewing(db, viewer, event_id) as (session, event):
        return Viewed(event, await event_summary(session, event, now_ms))


async def dashboard_of(
    db: Database, viewer: Viewer, event_id: str, now_ms: int, bucket_ms: int
) -> Viewed[Dashboard]:
    """The summary, and the admitted entries per ``bucket_ms``."""
    async with _viewing(db, viewer, event_id) as (session, event):
        summary = await event_summary(session, event, now_ms)
        return Viewed(event, Dashboard(summary, await entries_over_time(session, event, bucket_ms)))


async def inside_of(db: Database, event: Event) -> int:
    async with db.read() as session:
        return await inside_now(session, event)


async def conflicts_of(
    db: Database, viewer: Viewer, event_id: str, state: str
) -> Viewed[list[ConflictHistory]]:
    async with _viewing(db, viewer, event_id) as (session, event):
        return Viewed(event, await list_conflicts(session, event, state))


async def ticket_numbers(db: Database, ticket_ids: list[str | None]) -> dict[str, str]:
    """The numbers of the tickets named (ids that are None are left out)."""
    wanted = [i for i in ticket_ids if i]
    async with db.read() as session:
        rows = await session.execute(select(Ticket.id, Ticket.ticket_number).where(Ticket.id.in_(wanted)))
        return {row.id: row.ticket_number for row in rows}


async def resolve_event_conflict(
    db: Database, viewer: Viewer, event_id: str, conflict_id: str, outcome: str, reason: str, now_ms: int
) -> ConflictHistory:
    async with _viewing(db, viewer, event_id, write=True) as (session, event):
        return await resolve_conflict(session, viewer, event, conflict_id, outcome, reason, now_ms)


async def payment_issues_of(db: Database, viewer: Viewer, event_id: str) -> Viewed[list[Payment]]:
    async with _viewing(db, viewer, event_id) as (session, event):
        return Viewed(event, await payment_issues(session, event))


async def found_tickets(
    db: Database, viewer: Viewer, event_id: str, text: str, limit: int
) -> Viewed[list[Ticket]]:
    """The console's ticket search; none for an empty one."""
    async with _viewing(db, viewer, event_id) as (session, event):
        return Viewed(event, await search_tickets(session, event, text, limit) if text.strip() else [])


async def history_of(db: Database, viewer: Viewer, event_id: str, ticket_id: str) -> Viewed[TicketHistory]:
    async with _viewing(db, viewer, event_id) as (session, event):
        return Viewed(event, await ticket_history(session, event, ticket_id))


async def change_event_ticket(
    db: Database,
    viewer: Viewer,
    event_id: str,
    ticket_id: str,
    action: str,
    *,
    reason: str | None,
    attendee_name: str | None,
    attendee_email: str | None,
    now_ms: int,
) -> str | None:
    """Void, refund, transfer a ticket of the event or resend its pass (``action``), as the
    viewer's actor. A resend answers what became of it (``resent``, ``not-active``, ``no-email``):
    refused before it writes anything."""
    async with _viewing(db, viewer, event_id, write=True) as (session, event):
        found = await event_ticket(session, event, ticket_id)
        locked = await issuance.find_ticket(session, event.environment, found.id, lock=True)
        if action == "resend":
            try:
                await issuance.resend_pass(session, locked, now_ms, actor=viewer.actor)
            except TicketNotActive:
                return "not-active"
            except CustomerEmailMissing:
                return "no-email"
            return "resent"
        if action == "transfer":
            await issuance.transfer_ticket(
                session,
                locked,
                buyer_did=None,
                attendee_name=attendee_name,
                attendee_email=attendee_email,
                actor=viewer.actor,
                reason=reason,
                now_ms=now_ms,
            )
        else:
            status = "voided" if action == "void" else "refunded"
            await issuance.end_ticket(session, locked, status, viewer.actor, reason, now_ms)
    return None


async def devices_of(db: Database, viewer: Viewer, event_id: str) -> Viewed[list[Device]]:
    async with _viewing(db, viewer, event_id) as (session, event):
        return Viewed(event, await event_devices(session, event))


async def enroll_event_desk(
    db: Database, viewer: Viewer, event_id: str, name: str, now_ms: int
) -> Viewed[devices.Enrollment]:
    async with _viewing(db, viewer, event_id, write=True) as (session, event):
        return Viewed(event, await enroll_desk(session, viewer, event, name, now_ms))


async def revoke_event_device(
    db: Database, viewer: Viewer, event_id: str, device_id: str, now_ms: int
) -> Device:
    async with _viewing(db, viewer, event_id, write=True) as (session, event):
        return await revoke_device(session, viewer, event, device_id, now_ms)


async def lists_of(db: Database, viewer: Viewer, event_id: str) -> Viewed[list[CheckInList]]:
    async with _viewing(db, viewer, event_id) as (session, event):
        lists = await session.scalars(
            select(CheckInList).where(CheckInList.event_id == event.id).order_by(CheckInList.id)
        )
        return Viewed(event, list(lists))


async def export_event_list(
    db: Database, viewer: Viewer, event_id: str, list_id: str, fmt: str, now_ms: int
) -> tuple[bytes, str, str]:
    """A door list or check-in log of one of the event's lists (:func:`.exports.service.export_list`)."""
    async with _viewing(db, viewer, event_id) as (session, event):
        checklist = await session.get(CheckInList, list_id)
        if checklist is None or checklist.event_id != event.id:
            raise CheckInListNotFound("No such check-in list in this event.")
        return await export_list(session, event.environment, checklist.id, fmt, now_ms=now_ms)


async def deliveries_of(
    db: Database, viewer: Viewer, event_id: str, limit: int
) -> Viewed[list[OutboxMessage]]:
    async with _viewing(db, viewer, event_id) as (session, event):
        return Viewed(event, await deliveries(session, event, limit))


async def redrive_event_delivery(
    db: Database, viewer: Viewer, event_id: str, delivery_id: str, now_ms: int
) -> OutboxMessage:
    async with _viewing(db, viewer, event_id, write=True) as (session, event):
        return await redrive_delivery(session, viewer, event, delivery_id, now_ms)

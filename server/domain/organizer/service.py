"""The organizer's view of one event (already authorized, see :mod:`.access`): answers in the
shapes of the organizer methods' lexicons, which the console renders too."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

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
from server.domain.catalog.service import held_places
from server.domain.checkin.lists import counts, escape_like
from server.domain.common import compact, format_datetime, format_optional_datetime
from server.domain.devices import service as devices
from server.domain.devices.conflicts import conflict_view
from server.domain.errors import ConflictNotFound, InvalidRequest, WebhookDeliveryNotFound
from server.domain.issuance.service import TicketNotFound
from server.domain.organizer.access import Viewer
from server.domain.outbox import service as outbox

ATTENTION = ("needs_refund", "needs_review")
PAYMENT_ISSUES = (*ATTENTION, "partially_refunded")
OUTCOMES = ("admitted", "refused", "dismissed")
CONFLICT_STATES = ("open", "resolved", "all")


# --- the summary ---------------------------------------------------------------------------------


def _shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (integers; the last share takes the rest)."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights[:-1]]
    return [*shares, total - sum(shares)]


async def _money_per_tier(session: AsyncSession, event_id: str) -> dict[str, dict[str, int]]:
    """Gross, discounts and fees of the completed orders per tier (an order's discount and app fee
    shared among its lines by their amounts), and refunds: the refunded tickets' prices."""
    money: dict[str, dict[str, int]] = defaultdict(
        lambda: {"gross": 0, "discounts": 0, "fees": 0, "refunds": 0}
    )
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
        amounts = [line.quantity * line.unit_amount for line in lines]
        discounts = _shares(lines[0].discount_amount, amounts)
        fees = _shares(lines[0].app_fee_amount, amounts)
        for line, amount, discount, fee in zip(lines, amounts, discounts, fees, strict=True):
            money[line.tier_id]["gross"] += amount
            money[line.tier_id]["discounts"] += discount
            money[line.tier_id]["fees"] += fee
    refunds = await session.execute(
        select(Ticket.tier_id, func.sum(Ticket.unit_amount))
        .where(Ticket.event_id == event_id, Ticket.status == "refunded")
        .group_by(Ticket.tier_id)
    )
    for tier_id, amount in refunds.all():
        money[tier_id]["refunds"] += int(amount)
    return money


async def _tiers(session: AsyncSession, event: Event, now_ms: int) -> list[dict[str, Any]]:
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
        in_group = group.total_capacity - group.sold - held.per_group.get(group.id, 0)
        in_tier = tier.quantity_total - tier.sold - held.per_tier.get(tier.id, 0)
        m = money[tier.id]
        out.append(
            {
                "tierId": tier.id,
                "title": tier.title,
                "currency": tier.currency,
                "quantityTotal": tier.quantity_total,
                "sold": tier.sold,
                "held": held.per_tier.get(tier.id, 0),
                "available": max(0, min(in_group, in_tier)),
                "gross": m["gross"],
                "discounts": m["discounts"],
                "fees": m["fees"],
                "refunds": m["refunds"],
                "net": m["gross"] - m["discounts"] - m["fees"] - m["refunds"],
            }
        )
    return out


async def _breakdown(session: AsyncSession, list_id: str, column: Any) -> list[dict[str, Any]]:
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
    return [{"name": name or "", "admitted": int(n)} for name, n in rows.all()]


async def _lists(session: AsyncSession, event: Event) -> list[dict[str, Any]]:
    out = []
    for checklist in await session.scalars(
        select(CheckInList).where(CheckInList.event_id == event.id).order_by(CheckInList.id)
    ):
        counted = await counts(session, checklist)
        out.append(
            {
                "checkInListId": checklist.id,
                "name": checklist.name,
                "checkedIn": counted.checked_in,
                "inside": counted.inside,
                "refused": counted.refused,
                "admissible": counted.admissible,
                "byGate": await _breakdown(session, checklist.id, CheckInRecord.gate),
                "byDevice": await _breakdown(session, checklist.id, CheckInRecord.device_id),
            }
        )
    return out


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


async def event_summary(session: AsyncSession, event: Event, now_ms: int) -> dict[str, Any]:
    """Sales per tier, door counts per check-in list, open conflicts and payments needing
    attention, as of ``now_ms``."""
    return {
        "eventId": event.id,
        "title": event.title,
        "tiers": await _tiers(session, event, now_ms),
        "checkInLists": await _lists(session, event),
        "openConflicts": await _count(session, _open_conflicts(event.id)),
        "paymentsNeedingAttention": await _count(session, _event_payments(event.id, ATTENTION)),
        "asOf": format_datetime(now_ms),
    }


# --- conflicts -----------------------------------------------------------------------------------


def _resolution_view(resolution: ConflictResolution) -> dict[str, Any]:
    return {
        "outcome": resolution.outcome,
        "reason": resolution.reason,
        "actor": resolution.actor,
        "resolvedAt": format_datetime(resolution.at_ms),
    }


async def _with_resolutions(session: AsyncSession, conflicts: list[CheckInConflict]) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(ConflictResolution)
        .where(ConflictResolution.conflict_id.in_([c.id for c in conflicts]))
        .order_by(ConflictResolution.id)
    )
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        history[row.conflict_id].append(_resolution_view(row))
    return [
        {**conflict_view(c), "status": "resolved" if history[c.id] else "open", "resolutions": history[c.id]}
        for c in conflicts
    ]


async def list_conflicts(session: AsyncSession, event: Event, state: str = "open") -> list[dict[str, Any]]:
    """The event's conflicts, oldest first, each with every resolution (the last one stands)."""
    if state not in CONFLICT_STATES:
        raise InvalidRequest(f"status must be one of {', '.join(CONFLICT_STATES)}")
    query = select(CheckInConflict).where(CheckInConflict.event_id == event.id)
    if state == "open":
        query = _open_conflicts(event.id)
    found = list(await session.scalars(query.order_by(CheckInConflict.detected_ms, CheckInConflict.id)))
    views = await _with_resolutions(session, found)
    return [v for v in views if state != "resolved" or v["status"] == "resolved"]


async def resolve_conflict(
    session: AsyncSession,
    viewer: Viewer,
    event: Event,
    conflict_id: str,
    outcome: str,
    reason: str,
    now_ms: int,
) -> dict[str, Any]:
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
    ledger.record(
        session,
        environment=event.environment,
        event_id=event.id,
        subject="conflict",
        subject_id=conflict.id,
        action="resolved",
        actor=viewer.actor,
        now_ms=now_ms,
        data={"outcome": outcome},
    )
    await session.flush()
    (view,) = await _with_resolutions(session, [conflict])
    return view


# --- payments, tickets, desks, deliveries --------------------------------------------------------


async def payment_issues(session: AsyncSession, event: Event) -> list[dict[str, Any]]:
    """Payments of the event that need a refund or a review, and the partly refunded ones."""
    rows = await session.scalars(
        _event_payments(event.id, PAYMENT_ISSUES).order_by(Payment.updated_ms.desc(), Payment.id)
    )
    return [
        compact(
            {
                "paymentId": p.payment_id,
                "holdId": p.hold_id,
                "status": p.status,
                "amount": p.amount,
                "refundedAmount": p.refunded_amount,
                "currency": p.currency,
                "reason": p.reason,
                "updatedAt": format_datetime(p.updated_ms),
            }
        )
        for p in rows
    ]


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


def _delivery_view(message: OutboxMessage) -> dict[str, Any]:
    return compact(
        {
            "deliveryId": message.delivery_id,
            "type": message.event_type,
            "state": message.state,
            "attempts": message.attempts,
            "lastStatus": message.last_status,
            "lastError": message.last_error,
            "createdAt": format_datetime(message.created_ms),
            "deliveredAt": format_optional_datetime(message.delivered_ms),
        }
    )


async def ticket_history(session: AsyncSession, event: Event, ticket_id: str) -> dict[str, Any]:
    """A ticket's status changes (issue, void, refund, transfers), its scans and the lifecycle
    events sent about it."""
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
    return {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "status": ticket.status,
        "changes": [
            compact(
                {
                    "action": c.action,
                    "status": c.status,
                    "generation": c.generation,
                    "actor": c.actor,
                    "reason": c.reason,
                    "at": format_datetime(c.at_ms),
                }
            )
            for c in changes
        ],
        "checkIns": [
            compact(
                {
                    "checkInListId": s.list_id,
                    "deviceId": s.device_id,
                    "direction": s.direction,
                    "decision": s.decision,
                    "reason": s.reason,
                    "gate": s.gate,
                    "at": format_datetime(s.server_ms),
                }
            )
            for s in scans
        ],
        "deliveries": [_delivery_view(m) for m in sent],
    }


def device_view(device: Device) -> dict[str, Any]:
    return compact(
        {
            "deviceId": device.id,
            "name": device.name,
            "status": device.status,
            "checkInListIds": list(device.list_ids),
            "createdAt": format_datetime(device.created_ms),
            "enrolledAt": format_optional_datetime(device.enrolled_ms),
            "lastSeenAt": format_optional_datetime(device.last_seen_ms),
            "revokedAt": format_optional_datetime(device.revoked_ms),
        }
    )


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
        raise devices.DeviceNotFound("no desk with this id belongs to the event")
    device = await devices.revoke(session, device_id, now_ms)
    ledger.record(
        session,
        environment=event.environment,
        event_id=event.id,
        subject="device",
        subject_id=device.id,
        action="revoked",
        actor=viewer.actor,
        now_ms=now_ms,
    )
    return device


async def deliveries(session: AsyncSession, event: Event, limit: int = 50) -> list[dict[str, Any]]:
    """The newest lifecycle events sent to the event's app about the event."""
    rows = await session.scalars(_mentioning(event, event.id).order_by(OutboxMessage.id.desc()).limit(limit))
    return [_delivery_view(m) for m in rows]


async def redrive_delivery(
    session: AsyncSession, viewer: Viewer, event: Event, delivery_id: str, now_ms: int
) -> dict[str, Any]:
    """Send a delivery about the event again, due now, with a fresh attempt budget."""
    message = await session.scalar(
        _mentioning(event, event.id).where(OutboxMessage.delivery_id == delivery_id)
    )
    if message is None:
        raise WebhookDeliveryNotFound("no delivery with this id concerns the event")
    await outbox.redrive(session, delivery_ids=[delivery_id], state=None, now_ms=now_ms)
    ledger.record(
        session,
        environment=event.environment,
        event_id=event.id,
        subject="delivery",
        subject_id=delivery_id,
        action="redriven",
        actor=viewer.actor,
        now_ms=now_ms,
    )
    await session.refresh(message)
    return _delivery_view(message)


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
    if not times:
        return []
    first = times[0] // bucket_ms
    buckets = [0] * (times[-1] // bucket_ms - first + 1)
    for at in times:
        buckets[at // bucket_ms - first] += 1
    return [((first + n) * bucket_ms, count) for n, count in enumerate(buckets)]


async def enroll_desk(
    session: AsyncSession, viewer: Viewer, event: Event, name: str, now_ms: int
) -> devices.Enrollment:
    """A one-time enrollment code for a new desk scanning every check-in list of the event."""
    list_ids = list(await session.scalars(select(CheckInList.id).where(CheckInList.event_id == event.id)))
    made = await devices.create_enrollment(
        session, event.environment, list_ids, name.strip() or "Desk", now_ms
    )
    ledger.record(
        session,
        environment=event.environment,
        event_id=event.id,
        subject="device",
        subject_id=made.device.id,
        action="enrollment_created",
        actor=viewer.actor,
        now_ms=now_ms,
    )
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

"""Catalog transactions: load facts, apply the rules, write rows and their ledger entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.eventgraph import CalendarEvent, EventGraph, Unresolved
from server.db.engine import Database, Read, Unit, driver_of
from server.db.models import CapacityGroup, Event, EventRecordPin, Tier
from server.db.rows import Shape
from server.domain import consents, ledger
from server.domain.caller import Caller
from server.domain.catalog.rules import (
    EVENT_STATUSES,
    GROUP_STATUSES,
    TIER_STATUSES,
    TIER_VISIBILITIES,
    Pool,
    SaleFacts,
    SaleState,
    check_not_below_committed,
    check_sale_window,
    check_status,
    is_listed,
    order_limit,
    sale_state,
    tier_available,
)
from server.domain.common import new_id
from server.domain.issuance.list_keys import Keyring, ensure_default_list
from server.domain.publishing.marks import mark_changed
from server.errors import (
    CapacityGroupMismatch,
    CapacityGroupNotFound,
    EventNotFound,
    EventRecordUnavailable,
    InvalidRequest,
    NotOwner,
    OrganizerReassignmentNotAllowed,
    TierNotFound,
)

UNSET: Any = object()

Row = TypeVar("Row")
State = TypeVar("State")


@dataclass(frozen=True, slots=True)
class EventInput:
    uri: str
    title: str | None = None
    cid: str | None = None
    starts_ms: int | None = None
    ends_ms: int | None = None
    timezone: str | None = None
    url: str | None = None
    image_url: str | None = None
    # The app's free-form ``metadata`` of createTicketEvent (other methods name the event only).
    metadata: Any = None


@dataclass(slots=True)
class TierInput:
    title: str
    currency: str
    unit_amount: int
    quantity_total: int
    description: str | None = None
    max_per_order: int | None = None
    sale_starts_ms: int | None = None
    sale_ends_ms: int | None = None
    tier_ref: dict[str, Any] | None = None
    product_ref: dict[str, Any] | None = None
    price_ref: dict[str, Any] | None = None
    metadata: Any = None
    visibility: str = "public"


@dataclass(frozen=True, slots=True)
class GroupState:
    group: CapacityGroup
    pool: Pool


@dataclass(frozen=True, slots=True)
class TierState:
    tier: Tier
    group: GroupState
    pool: Pool

    @property
    def available(self) -> int:
        return tier_available(self.pool, self.group.pool)


@dataclass(slots=True)
class Inventory:
    """An event's tiers and groups with live counters, as seen at ``now_ms``."""

    event: Event
    tiers: list[TierState] = field(default_factory=list)
    # Tiers an access code of this request opens (see server.domain.offers).
    unlocked: frozenset[str] = frozenset()

    def sale_state(self, state: TierState, now_ms: int) -> SaleState:
        facts = SaleFacts(
            event_status=self.event.status,
            tier_status=state.tier.status,
            group_status=state.group.group.status,
            sale_starts_ms=state.tier.sale_starts_ms,
            sale_ends_ms=state.tier.sale_ends_ms,
            visibility=state.tier.visibility,
            unlocked=state.tier.id in self.unlocked,
        )
        return sale_state(facts, state.available, now_ms)

    def listed(self) -> list[TierState]:
        """The tiers buyers may see: public ones, and those the request's code opens."""
        return [s for s in self.tiers if is_listed(s.tier.visibility, s.tier.id in self.unlocked)]


# --- counters ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Held:
    """Places held by unexpired ``held`` holds, per tier and per capacity group."""

    per_tier: dict[str, int]
    per_group: dict[str, int]


# The places held in some groups: what a hold line records is the group its tier sells from.
_HELD_SELECT = "i.capacity_group_id, i.tier_id, SUM(i.quantity)"
_HELD_REST = (
    "FROM hold_items i WHERE i.capacity_group_id IN ({groups}) AND i.active_until_ms > :now_ms "
    "GROUP BY i.capacity_group_id, i.tier_id"
)
_HELD = Read(_HELD_SELECT, _HELD_REST.format(groups=":group_ids")).text


def held_from(rows: Iterable[Sequence[Any]]) -> Held:
    """The places held, from rows of group, tier and places."""
    held = Held({}, {})
    for group_id, tier_id, total in rows:
        held.per_tier[tier_id] = held.per_tier.get(tier_id, 0) + int(total)
        held.per_group[group_id] = held.per_group.get(group_id, 0) + int(total)
    return held


async def held_places(session: Unit, group_ids: Iterable[str], now_ms: int) -> Held:
    """What unexpired holds reserve in the given groups, in one query."""
    ids = sorted(set(group_ids))
    if not ids:
        return Held({}, {})
    driver = await driver_of(session)
    return held_from(await driver.fetch(_HELD, {"group_ids": ids, "now_ms": now_ms}))


def _group_state(group: CapacityGroup, held: Held) -> GroupState:
    return GroupState(group, Pool(group.total_capacity, group.sold, held.per_group.get(group.id, 0)))


async def group_states(
    session: AsyncSession, groups: Iterable[CapacityGroup], now_ms: int
) -> dict[str, GroupState]:
    groups = list(groups)
    held = await held_places(session, (g.id for g in groups), now_ms)
    return {g.id: _group_state(g, held) for g in groups}


async def tier_states(
    session: Unit,
    tiers: Iterable[Tier],
    now_ms: int,
    groups: Mapping[str, CapacityGroup] | None = None,
    held: Held | None = None,
) -> list[TierState]:
    """The tiers with their counters and their groups'. ``groups`` and ``held``: the tiers' groups
    and the places held in them, when the caller has them already (read under the groups' locks),
    else they are read."""
    tiers = list(tiers)
    group_ids = sorted({t.capacity_group_id for t in tiers})
    if groups is None:
        found = await (await driver_of(session)).fetch(_GROUPS, {"group_ids": group_ids})
        groups = {g.id: g for g in map(GROUP.load, found)}
    if held is None:
        held = await held_places(session, group_ids, now_ms)
    states = {group_id: _group_state(groups[group_id], held) for group_id in group_ids}
    return [
        TierState(t, states[t.capacity_group_id], Pool(t.quantity_total, t.sold, held.per_tier.get(t.id, 0)))
        for t in tiers
    ]


async def tier_state(session: AsyncSession, tier: Tier, now_ms: int) -> TierState:
    return (await tier_states(session, [tier], now_ms))[0]


async def group_state(session: AsyncSession, group: CapacityGroup, now_ms: int) -> GroupState:
    return (await group_states(session, [group], now_ms))[group.id]


_LOCK_GROUPS = (
    select(CapacityGroup)
    .where(CapacityGroup.id.in_(bindparam("group_ids", expanding=True)))
    .order_by(CapacityGroup.id)
    .with_for_update(key_share=True)
    .execution_options(populate_existing=True)
)


async def lock_groups(session: AsyncSession, group_ids: Iterable[str]) -> dict[str, CapacityGroup]:
    """The groups, locked in the one lock order, in the session: what changes them locks them so."""
    rows = await session.scalars(_LOCK_GROUPS, {"group_ids": sorted(set(group_ids))})
    return {g.id: g for g in rows}


GROUP = Shape(CapacityGroup, "g")
_OF_TIERS = "SELECT t.capacity_group_id FROM tiers t WHERE t.id IN (:tier_ids)"
# The groups the tiers sell from, locked in the one lock order, and the places held in them, read
# after the lock (statements of a Together).
GROUPS_OF_TIERS = Read(
    GROUP.portable_columns, f"FROM capacity_groups g WHERE g.id IN ({_OF_TIERS}) ORDER BY g.id", lock=True
)
HELD_OF_TIERS = Read(_HELD_SELECT, _HELD_REST.format(groups=_OF_TIERS))


_GROUPS = f"SELECT {GROUP.columns} FROM capacity_groups g WHERE g.id IN (:group_ids) ORDER BY g.id"  # noqa: S608 (constant names)


async def _locked(session: Unit, sql: str, params: dict[str, Any]) -> dict[str, CapacityGroup]:
    """Capacity groups locked by ``sql`` (sent to the driver, in the one lock order), as read: not in
    the session, so what the ORM changes of a group locks it with :func:`lock_groups`."""
    driver = await driver_of(session)
    return {
        group.id: group for group in map(GROUP.load, await driver.fetch(sql + driver.for_update(), params))
    }


async def lock_groups_to_sell(session: Unit, group_ids: Iterable[str]) -> dict[str, CapacityGroup]:
    """The groups, locked in one statement, in the one lock order, before selling their places: to
    check them again (a payment of a hold that ended), or before a sale that spans several groups
    (see :func:`_locked`)."""
    return await _locked(session, _GROUPS, {"group_ids": sorted(set(group_ids))})


# --- loading and permissions ---------------------------------------------------------------------


async def find_event(
    session: AsyncSession, environment: str, *, event_id: str | None = None, event_uri: str | None = None
) -> Event:
    if event_id is None and event_uri is None:
        raise InvalidRequest("eventId or eventUri is required")
    query = select(Event).where(Event.environment == environment)
    if event_id is not None:
        query = query.where(Event.id == event_id)
    if event_uri is not None:
        query = query.where(Event.uri == event_uri)
    event = await session.scalar(query)
    if event is None:
        raise EventNotFound("this event is not ticketed here")
    return event


async def find_group(
    session: AsyncSession, environment: str, group_id: str, *, lock: bool = False
) -> CapacityGroup:
    query = (
        select(CapacityGroup)
        .join(Event, Event.id == CapacityGroup.event_id)
        .where(CapacityGroup.id == group_id, Event.environment == environment)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update(of=CapacityGroup, key_share=True)
    group = await session.scalar(query)
    if group is None:
        raise CapacityGroupNotFound(f"capacity group {group_id} not found")
    return group


async def find_tier(session: AsyncSession, environment: str, tier_id: str) -> Tier:
    tier = await session.scalar(
        select(Tier)
        .join(Event, Event.id == Tier.event_id)
        .where(Tier.id == tier_id, Event.environment == environment)
        .execution_options(populate_existing=True)
    )
    if tier is None:
        raise TierNotFound(f"tier {tier_id} not found")
    return tier


async def ensure_can_manage(session: AsyncSession, event: Event, caller: Caller) -> None:
    """Only the app the event belongs to changes it or reads its door data, and only while the
    organizer's consent stands (see ADR 0004)."""
    if event.owner_app_id != caller.app_id:
        raise NotOwner("this event belongs to another app; only its organizer's assertion hands it over")
    await consents.require(session, caller.app_id, event.organizer_did)


async def _reclaim(session: AsyncSession, caller: Caller, event: Event, now_ms: int) -> None:
    """A call carrying the organizer's assertion for the event's URI takes the event over for the
    calling app, and gives it back to the organizer the URI names (an event wrongly ticketed for
    another organizer, or held by an app the organizer no longer trusts): the old app loses write
    access; what it sold stays valid."""
    if event.owner_app_id == caller.app_id and event.organizer_did == caller.organizer_did:
        return
    previous = {"ownerAppId": event.owner_app_id, "organizerDid": event.organizer_did}
    event.owner_app_id = caller.app_id
    event.organizer_did = caller.organizer_did or event.organizer_did
    event.updated_ms = now_ms
    await note_change(
        session, caller, event.id, "event", event.id, "reclaimed", now_ms, {"previous": previous}
    )


async def note_change(
    session: AsyncSession,
    caller: Caller,
    event_id: str,
    subject: str,
    subject_id: str,
    action: str,
    now_ms: int,
    data: dict[str, Any],
) -> None:
    """A catalog change: its ledger entry, and the mark that the event's public records may change."""
    await mark_changed(session, event_id)
    session.add(
        ledger.entry(
            environment=caller.environment,
            event_id=event_id,
            subject=subject,
            subject_id=subject_id,
            action=action,
            actor=caller.app_did,
            now_ms=now_ms,
            data=data,
        )
    )


# --- events --------------------------------------------------------------------------------------


EventRecord = CalendarEvent | Unresolved


def with_record(given: EventInput, record: EventRecord | None) -> EventInput:
    """The details a call gave, completed from the event record when it was read: the record fills
    the title and times the call left out, and the version read becomes the pinned CID."""
    if not isinstance(record, CalendarEvent):
        return given
    return replace(
        given,
        title=given.title or record.title,
        starts_ms=record.starts_ms if given.starts_ms is None else given.starts_ms,
        ends_ms=record.ends_ms if given.ends_ms is None else given.ends_ms,
        cid=record.cid,
    )


async def pin_record(session: AsyncSession, event: Event, record: EventRecord, now_ms: int) -> None:
    """Keep how reading the event's record went; a version read and verified is the event's pin."""
    pin = await session.get(EventRecordPin, event.id)
    if pin is None:
        pin = EventRecordPin(event_id=event.id)
        session.add(pin)
    pin.checked_ms = now_ms
    if isinstance(record, CalendarEvent):
        pin.cid, pin.resolved_ms, pin.error = record.cid, now_ms, None
        event.cid = record.cid
        if event.place != record.place:
            event.place = record.place
    else:
        pin.error = record.reason


async def ensure_event(
    session: AsyncSession,
    caller: Caller,
    organizer_did: str,
    given: EventInput,
    now_ms: int,
    *,
    keyring: Keyring,
    status: str | None = None,
    refresh: bool = False,
    record: EventRecord | None = None,
) -> Event:
    """The ticketed event for ``given.uri``, created (paused unless told otherwise, with its default
    check-in list and that list's key) when new. ``organizer_did`` must be the URI's authority, and
    the caller must hold the organizer's consent or carry its assertion, which grants the consent
    and reclaims the event when another app or organizer holds it. With ``refresh``, the given
    details replace the stored ones. ``record``: the event record as just read (or why it could
    not be), for a new or refreshed event."""
    check_status(status, EVENT_STATUSES, "status")
    consents.check_authority(given.uri, organizer_did)
    if caller.organizer_did is not None:
        await consents.grant(session, caller, now_ms)
    else:
        await consents.require(session, caller.app_id, organizer_did)
    given = with_record(given, record)
    event = await session.scalar(
        select(Event).where(Event.environment == caller.environment, Event.uri == given.uri)
    )
    if event is not None:
        if caller.organizer_did is not None:
            await _reclaim(session, caller, event, now_ms)
        elif event.organizer_did != organizer_did:
            raise OrganizerReassignmentNotAllowed(
                "this event is ticketed for another organizer; its organizer's assertion reclaims it"
            )
        if refresh or status is not None:
            await ensure_can_manage(session, event, caller)
        if refresh:
            changes = {
                "title": given.title,
                "cid": given.cid,
                "starts_ms": given.starts_ms,
                "ends_ms": given.ends_ms,
                "timezone": given.timezone,
                "url": given.url,
                "image_url": given.image_url,
                "metadata_": given.metadata,
            }
            _apply(event, {k: v for k, v in changes.items() if v is not None})
            if record is not None:
                await pin_record(session, event, record, now_ms)
        if status is not None:
            event.status = status
        if session.is_modified(event):
            event.updated_ms = now_ms
            changed = {"status": event.status}
            await note_change(session, caller, event.id, "event", event.id, "updated", now_ms, changed)
        return event
    if not given.title:
        if isinstance(record, Unresolved) and record.transient:
            raise EventRecordUnavailable(
                f"event.title was not given and the event record cannot be read now: {record.reason}"
            )
        why = f" ({record.reason})" if isinstance(record, Unresolved) else ""
        raise InvalidRequest(f"event.title is required to ticket a new event{why}")
    event = Event(
        id=new_id("event", now_ms),
        environment=caller.environment,
        organizer_did=organizer_did,
        owner_app_id=caller.app_id,
        uri=given.uri,
        cid=given.cid,
        title=given.title,
        starts_ms=given.starts_ms,
        ends_ms=given.ends_ms,
        timezone=given.timezone,
        url=given.url,
        image_url=given.image_url,
        metadata_=given.metadata,
        status=status or "paused",
        created_ms=now_ms,
        updated_ms=now_ms,
    )
    session.add(event)
    await note_change(
        session,
        caller,
        event.id,
        "event",
        event.id,
        "created",
        now_ms,
        {"uri": given.uri, "status": event.status, "organizerDid": organizer_did},
    )
    await session.flush()
    await ensure_default_list(session, keyring, event.id, now_ms)
    if record is not None:
        await pin_record(session, event, record, now_ms)
    return event


def _apply(obj: object, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        if value is not UNSET and getattr(obj, name) != value:
            setattr(obj, name, value)


async def update_event(
    session: AsyncSession,
    caller: Caller,
    event_id: str,
    changes: dict[str, Any],
    now_ms: int,
    *,
    record: EventRecord | None = None,
) -> Event:
    """``changes`` maps column names to new values (``None`` clears a nullable one). ``record``: the
    event record as just read again; it fills the title and times ``changes`` leave out, and
    re-pins the event to the version read."""
    check_status(changes.get("status"), EVENT_STATUSES, "status")
    event = await find_event(session, caller.environment, event_id=event_id)
    await ensure_can_manage(session, event, caller)
    if changes.get("title", UNSET) is None:
        raise InvalidRequest("title cannot be cleared")
    if isinstance(record, CalendarEvent):
        changes.setdefault("title", record.title)
        for column, value in (("starts_ms", record.starts_ms), ("ends_ms", record.ends_ms)):
            if value is not None:
                changes.setdefault(column, value)
        changes["cid"] = record.cid
    _apply(event, changes)
    if record is not None:
        await pin_record(session, event, record, now_ms)
    if session.is_modified(event):
        event.updated_ms = now_ms
        await note_change(
            session,
            caller,
            event.id,
            "event",
            event.id,
            "updated",
            now_ms,
            {k: v for k, v in changes.items() if v is not UNSET},
        )
    return event


# --- capacity groups -----------------------------------------------------------------------------


async def create_group(
    session: AsyncSession,
    caller: Caller,
    event: Event,
    name: str,
    total_capacity: int,
    now_ms: int,
    *,
    implicit: bool = False,
    metadata: Any = None,
) -> CapacityGroup:
    await ensure_can_manage(session, event, caller)
    group = CapacityGroup(
        id=new_id("cg", now_ms),
        event_id=event.id,
        name=name,
        total_capacity=total_capacity,
        sold=0,
        status="active",
        implicit=implicit,
        metadata_=metadata,
        owner_app_id=caller.app_id,
        created_ms=now_ms,
        updated_ms=now_ms,
    )
    session.add(group)
    await note_change(
        session,
        caller,
        event.id,
        "capacityGroup",
        group.id,
        "created",
        now_ms,
        {"name": name, "totalCapacity": total_capacity, "implicit": implicit},
    )
    await session.flush()
    return group


async def _resize_group(session: AsyncSession, group: CapacityGroup, new_total: int, now_ms: int) -> None:
    """Set a locked group's capacity, never below what is sold or held in it."""
    committed = (await group_state(session, group, now_ms)).pool.committed
    check_not_below_committed(new_total, committed, f"capacity group {group.id}", "capacity")
    group.total_capacity = new_total


async def update_group(
    session: AsyncSession, caller: Caller, group_id: str, changes: dict[str, Any], now_ms: int
) -> CapacityGroup:
    check_status(changes.get("status"), GROUP_STATUSES, "status")
    group = await find_group(session, caller.environment, group_id, lock=True)
    event = await find_event(session, caller.environment, event_id=group.event_id)
    await ensure_can_manage(session, event, caller)
    before = group.total_capacity
    new_total = changes.pop("total_capacity", None)
    if new_total is not None and new_total != before:
        await _resize_group(session, group, new_total, now_ms)
    _apply(group, changes)
    if session.is_modified(group):
        group.updated_ms = now_ms
        await note_change(
            session,
            caller,
            event.id,
            "capacityGroup",
            group.id,
            "updated",
            now_ms,
            {**changes, "totalCapacity": group.total_capacity, "previousCapacity": before},
        )
    return group


# --- tiers ---------------------------------------------------------------------------------------


async def create_tier(
    session: AsyncSession,
    caller: Caller,
    event: Event,
    given: TierInput,
    now_ms: int,
    *,
    group_id: str | None = None,
) -> Tier:
    """A tier in the given capacity group, or in a new implicit group of its own size."""
    await ensure_can_manage(session, event, caller)
    check_sale_window(given.sale_starts_ms, given.sale_ends_ms)
    check_status(given.visibility, TIER_VISIBILITIES, "visibility")
    if group_id is None:
        group = await create_group(
            session, caller, event, given.title, given.quantity_total, now_ms, implicit=True
        )
    else:
        group = await find_group(session, caller.environment, group_id)
        if group.event_id != event.id:
            raise CapacityGroupMismatch(f"capacity group {group_id} belongs to another event")
        if group.status != "active":
            raise CapacityGroupMismatch(f"capacity group {group_id} is archived")
    tier = Tier(
        id=new_id("tier", now_ms),
        event_id=event.id,
        capacity_group_id=group.id,
        title=given.title,
        description=given.description,
        currency=given.currency.lower(),
        unit_amount=given.unit_amount,
        quantity_total=given.quantity_total,
        sold=0,
        max_per_order=order_limit(given.max_per_order),
        sale_starts_ms=given.sale_starts_ms,
        sale_ends_ms=given.sale_ends_ms,
        status="active",
        visibility=given.visibility,
        tier_ref=given.tier_ref,
        product_ref=given.product_ref,
        price_ref=given.price_ref,
        metadata_=given.metadata,
        owner_app_id=caller.app_id,
        created_ms=now_ms,
        updated_ms=now_ms,
    )
    session.add(tier)
    await note_change(
        session,
        caller,
        event.id,
        "tier",
        tier.id,
        "created",
        now_ms,
        {
            "capacityGroupId": group.id,
            "quantityTotal": tier.quantity_total,
            "unitAmount": tier.unit_amount,
            "currency": tier.currency,
        },
    )
    await session.flush()
    return tier


async def update_tier(
    session: AsyncSession, caller: Caller, tier_id: str, changes: dict[str, Any], now_ms: int
) -> Tier:
    """Quantity changes lock the tier's group and never go below what is sold or held."""
    check_status(changes.get("status"), TIER_STATUSES, "status")
    check_status(changes.get("visibility"), TIER_VISIBILITIES, "visibility")
    tier = await find_tier(session, caller.environment, tier_id)
    event = await find_event(session, caller.environment, event_id=tier.event_id)
    await ensure_can_manage(session, event, caller)
    group = await find_group(session, caller.environment, tier.capacity_group_id, lock=True)
    tier = await find_tier(session, caller.environment, tier_id)  # fresh under the group lock
    if changes.get("title", UNSET) is None or changes.get("currency", UNSET) is None:
        raise InvalidRequest("title and currency cannot be cleared")
    if "currency" in changes:
        changes["currency"] = changes["currency"].lower()
    check_sale_window(
        changes.get("sale_starts_ms", tier.sale_starts_ms), changes.get("sale_ends_ms", tier.sale_ends_ms)
    )
    new_total = changes.pop("quantity_total", None)
    before = tier.quantity_total
    if new_total is not None and new_total != before:
        state = await tier_state(session, tier, now_ms)
        check_not_below_committed(new_total, state.pool.committed, f"tier {tier.id}", "its quantity")
        tier.quantity_total = new_total
        if group.implicit and await _only_tier(session, group.id):
            await _resize_group(session, group, new_total, now_ms)
            group.updated_ms = now_ms
    _apply(tier, changes)
    if session.is_modified(tier):
        tier.updated_ms = now_ms
        logged = {k: v for k, v in changes.items() if k != "metadata_"}
        await note_change(
            session,
            caller,
            event.id,
            "tier",
            tier.id,
            "updated",
            now_ms,
            {**logged, "quantityTotal": tier.quantity_total, "previousQuantity": before},
        )
    return tier


async def _only_tier(session: AsyncSession, group_id: str) -> bool:
    count = await session.scalar(select(func.count()).where(Tier.capacity_group_id == group_id))
    return count == 1


# --- availability --------------------------------------------------------------------------------


async def inventory(session: AsyncSession, event: Event, now_ms: int) -> Inventory:
    """The event's tiers that are not archived, with counters excluding expired holds."""
    tiers = (
        await session.scalars(
            select(Tier).where(Tier.event_id == event.id, Tier.status != "archived").order_by(Tier.id)
        )
    ).all()
    return Inventory(event, await tier_states(session, tiers, now_ms))


# --- one call each: the catalog methods ----------------------------------------------------------


async def consent_before_reading(db: Database, caller: Caller, organizer_did: str, given: EventInput) -> None:
    """The organizer's authority over the event, and the app's consent unless the call carries the
    organizer's assertion, checked before the event record is read: an app without consent never
    makes this service reach a PDS. (:func:`ensure_event` checks both again as it writes.)"""
    consents.check_authority(given.uri, organizer_did)
    if caller.organizer_did is None:
        async with db.read() as session:
            await consents.require(session, caller.app_id, organizer_did)


async def record_of_new_event(
    db: Database, graph: EventGraph, caller: Caller, organizer_did: str, given: EventInput
) -> EventRecord | None:
    """The event record, read only when ``given`` names an event not ticketed here yet."""
    await consent_before_reading(db, caller, organizer_did, given)
    try:
        async with db.read() as session:
            await find_event(session, caller.environment, event_uri=given.uri)
    except EventNotFound:
        return await graph.resolve(given.uri)
    return None


@dataclass(frozen=True, slots=True)
class Ticketing:
    """A call that names an event to ticket here (``createTicketEvent``, and the group and tier
    methods that ticket their event first if it is new): who asks, for which organizer, and with what."""

    db: Database
    graph: EventGraph
    keyring: Keyring
    caller: Caller
    organizer_did: str
    given: EventInput
    now_ms: int


async def create_ticketed_event(call: Ticketing, status: str | None) -> Event:
    """``createTicketEvent``: the event, its record read again from its PDS."""
    await consent_before_reading(call.db, call.caller, call.organizer_did, call.given)
    record = await call.graph.resolve(call.given.uri)
    async with call.db.write() as session:
        return await ensure_event(
            session,
            call.caller,
            call.organizer_did,
            call.given,
            call.now_ms,
            keyring=call.keyring,
            status=status,
            refresh=True,
            record=record,
        )


async def update_ticketed_event(
    db: Database,
    graph: EventGraph,
    caller: Caller,
    event_id: str,
    changes: dict[str, Any],
    now_ms: int,
    *,
    read_record: bool,
) -> Event:
    """``updateTicketEvent``; ``read_record``: read the event record again first."""
    record = None
    if read_record:
        async with db.read() as session:
            event = await find_event(session, caller.environment, event_id=event_id)
        record = await graph.resolve(event.uri)
    async with db.write() as session:
        return await update_event(session, caller, event_id, changes, now_ms, record=record)


async def _write_then_state(
    session: AsyncSession,
    row: Awaitable[Row],
    state: Callable[[AsyncSession, Row, int], Awaitable[State]],
    now_ms: int,
) -> State:
    """The state of the group or tier ``row`` writes, once the write is flushed."""
    written = await row
    await session.flush()
    return await state(session, written, now_ms)


async def _on_ticketed_event(
    call: Ticketing,
    write: Callable[[AsyncSession, Event], Awaitable[Row]],
    state: Callable[[AsyncSession, Row, int], Awaitable[State]],
) -> tuple[Event, State]:
    """``write`` on the event the call names, ticketed here first if it is new (its record read
    from its PDS before the transaction), in one transaction."""
    record = await record_of_new_event(call.db, call.graph, call.caller, call.organizer_did, call.given)
    async with call.db.write() as session:
        event = await ensure_event(
            session,
            call.caller,
            call.organizer_did,
            call.given,
            call.now_ms,
            keyring=call.keyring,
            record=record,
        )
        return event, await _write_then_state(session, write(session, event), state, call.now_ms)


async def create_event_group(
    call: Ticketing, name: str, total_capacity: int, metadata: Any
) -> tuple[Event, GroupState]:
    """``createCapacityGroup``: the group, and its event, ticketed here first if it is new."""

    def write(session: AsyncSession, event: Event) -> Awaitable[CapacityGroup]:
        return create_group(session, call.caller, event, name, total_capacity, call.now_ms, metadata=metadata)

    return await _on_ticketed_event(call, write, group_state)


async def update_event_group(
    db: Database, caller: Caller, group_id: str, changes: dict[str, Any], now_ms: int
) -> GroupState:
    """``updateCapacityGroup``."""
    async with db.write() as session:
        return await _write_then_state(
            session, update_group(session, caller, group_id, changes, now_ms), group_state, now_ms
        )


async def create_event_tier(
    call: Ticketing, given: TierInput, group_id: str | None
) -> tuple[Event, TierState]:
    """``createTicketTier``: the tier, and its event, ticketed here first if it is new."""

    def write(session: AsyncSession, event: Event) -> Awaitable[Tier]:
        return create_tier(session, call.caller, event, given, call.now_ms, group_id=group_id)

    return await _on_ticketed_event(call, write, tier_state)


async def change_tier(
    db: Database, caller: Caller, tier_id: str, changes: dict[str, Any], now_ms: int
) -> TierState:
    """``updateTicketTier``, ``archiveTicketTier``."""
    async with db.write() as session:
        return await _write_then_state(
            session, update_tier(session, caller, tier_id, changes, now_ms), tier_state, now_ms
        )

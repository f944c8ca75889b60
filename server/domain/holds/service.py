"""Hold transactions. A hold locks the capacity-group rows of everything it asks for, in id order,
then checks every tier and group against counters that exclude expired holds, and either reserves
all of it or nothing."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from server.atproto.datetimes import format_datetime
from server.db.engine import Database, Read, Together, Transaction, Unit, driver_of
from server.db.models import (
    CapacityGroup,
    Event,
    Hold,
    HoldItem,
    Offer,
    Tier,
)
from server.db.rows import Shape, insert_all
from server.domain import consents, idempotency, ledger
from server.domain.caller import Caller
from server.domain.catalog.service import (
    GROUP,
    GROUPS_OF_TIERS,
    HELD_OF_TIERS,
    Held,
    Inventory,
    TierState,
    held_from,
    tier_states,
)
from server.domain.common import new_id
from server.domain.holds.rules import (
    Shortage,
    check_on_sale,
    check_order_limits,
    find_shortages,
    hold_status,
    released_status,
    shortage_error,
)
from server.domain.offers import limits
from server.domain.offers import rules as offer_rules
from server.domain.offers import service as offers
from server.domain.offers.pricing import NO_FEES, Fees, Line, Quote, price
from server.domain.outbox.lifecycle import event_data
from server.domain.outbox.service import MESSAGE as OUTBOX_MESSAGE
from server.domain.outbox.service import event_uri, outbox_message, webhook_url
from server.errors import EventNotFound, InvalidRequest, TicketHoldNotFound, TierNotFound

SWEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class HoldRequest:
    items: dict[str, int]
    event_id: str | None = None
    event_uri: str | None = None
    buyer_did: str | None = None
    customer_email: str | None = None
    return_url: str | None = None
    cancel_url: str | None = None
    metadata: Any = None
    attendees: list[dict[str, Any]] | None = None
    offer_code: str | None = None
    # Who an offer's per-buyer cap and the wrong-code limits count: worked out once per request.
    buyer: str | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "buyer", offer_rules.buyer_key(self.buyer_did, self.customer_email))


@dataclass(frozen=True, slots=True)
class HeldLine:
    tier: Tier
    quantity: int


@dataclass(frozen=True, slots=True)
class HoldResult:
    hold: Hold
    lines: list[HeldLine]
    offer: Offer | None = None


def effective_status(hold: Hold, now_ms: int) -> str:
    """The hold's status at ``now_ms`` (see :func:`~server.domain.holds.rules.hold_status`)."""
    return hold_status(hold.status, hold.expires_ms, now_ms)


@dataclass(frozen=True, slots=True)
class _Loaded:
    """The tiers asked for, their events, and whether the caller holds each event's organizer's
    consent: one statement."""

    tiers: dict[str, Tier]
    events: dict[str, Event]
    consented: dict[str, bool]


TIER, EVENT = Shape(Tier, "t"), Shape(Event, "e")
# The tiers with their events and whether the calling app holds the organizer's consent.
_TIERS_READ = Read(
    f"{TIER.portable_columns}, {EVENT.portable_columns}, {consents.held_by_sql('app_id', 'e.organizer_did')}",
    "FROM tiers t JOIN events e ON e.id = t.event_id "
    "WHERE t.id IN (:tier_ids) AND e.environment = :environment",
)
_TIERS = _TIERS_READ.text
# What a hold reads under its groups' locks: the groups locked, then its tiers and the places held,
# each read after the lock (a hold that waited for it sees what the lock's holder wrote).
_UNDER_LOCKS = Together(
    "tickets_hold_reads",
    [("tier_ids", "text[]"), ("app_id", "text"), ("environment", "text"), ("now_ms", "bigint")],
    [GROUPS_OF_TIERS, _TIERS_READ, HELD_OF_TIERS],
)
HOLD, HOLD_ITEM = Shape(Hold, "h"), Shape(HoldItem, "i")
U = TypeVar("U", bound=Unit)
_NAMED_EVENT = (
    "SELECT e.id FROM events e WHERE e.environment = :environment "
    "AND e.id = COALESCE(:event_id, e.id) AND e.uri = COALESCE(:event_uri, e.uri)"
)
_END = "UPDATE holds SET status = :status, updated_ms = :now_ms WHERE id IN (:hold_ids)"
_RELEASE = "UPDATE hold_items SET active_until_ms = NULL WHERE hold_id IN (:hold_ids)"
_FEES = "SELECT a.fee_bps, a.fee_flat, a.fee_to_buyer FROM apps a WHERE a.id = :app_id"


def _loaded(rows: Sequence[tuple[Any, ...] | list[Any]], tier_ids: Sequence[str]) -> _Loaded:
    tiers: dict[str, Tier] = {}
    events: dict[str, Event] = {}
    consented: dict[str, bool] = {}
    for row in rows:
        tier, event = TIER.load(row[: TIER.width]), EVENT.load(row[TIER.width : -1])
        tiers[tier.id] = tier
        event = events.setdefault(event.id, event)
        consented[event.id] = bool(row[-1])
    missing = [t for t in tier_ids if t not in tiers]
    if missing:
        raise TierNotFound(f"tier not found: {', '.join(missing)}")
    return _Loaded(tiers, events, consented)


def _of_tiers(caller: Caller, tier_ids: Sequence[str]) -> dict[str, Any]:
    """The parameters of the tiers' read (:data:`_TIERS_READ`)."""
    return {"tier_ids": list(tier_ids), "app_id": caller.app_id, "environment": caller.environment}


async def _load_tiers(session: Unit, caller: Caller, tier_ids: Sequence[str]) -> _Loaded:
    rows = await (await driver_of(session)).fetch(_TIERS, _of_tiers(caller, tier_ids))
    return _loaded(rows, tier_ids)


@dataclass(frozen=True, slots=True)
class _Locked:
    """What a hold reads once its groups are locked: the groups, its tiers, the places held."""

    groups: dict[str, CapacityGroup]
    loaded: _Loaded
    held: Held


async def _read_under_locks(session: Unit, caller: Caller, tier_ids: Sequence[str], now_ms: int) -> _Locked:
    """Lock the tiers' groups, in the one lock order, then read the tiers and the places held (on
    PostgreSQL in one round trip: :class:`~server.db.engine.Together`)."""
    params = {**_of_tiers(caller, tier_ids), "now_ms": now_ms}
    groups, tiers, held = await (await driver_of(session)).together(_UNDER_LOCKS, params)
    return _Locked({g.id: g for g in map(GROUP.load, groups)}, _loaded(tiers, tier_ids), held_from(held))


async def _hold_event(session: Unit, caller: Caller, request: HoldRequest, events: dict[str, Event]) -> Event:
    """The one event of the tiers asked for, which must be the event the request names, if any."""
    if len(events) != 1:
        raise InvalidRequest("all items of a hold must be tiers of one event")
    (event,) = events.values()
    if request.event_id in (None, event.id) and request.event_uri in (None, event.uri):
        return event
    # Another event is named: refused as not found when there is no such event here.
    named = {"environment": caller.environment, "event_id": request.event_id, "event_uri": request.event_uri}
    if not await (await driver_of(session)).fetch(_NAMED_EVENT, named):
        raise EventNotFound("this event is not ticketed here")
    raise InvalidRequest("the tiers asked for do not belong to the event named")


@dataclass(frozen=True, slots=True)
class Priced:
    """An order checked against every sale rule and priced: what a preview shows and a hold charges."""

    event: Event
    tiers: dict[str, Tier]
    states: list[TierState]
    offer: Offer | None
    quote: Quote


async def app_fees(session: Unit, caller: Caller) -> Fees:
    if caller.settings is not None:
        return caller.settings.fees
    rows = await (await driver_of(session)).fetch(_FEES, {"app_id": caller.app_id})
    if not rows:
        return NO_FEES
    bps, flat, to_buyer = rows[0]
    return Fees(bps=bps, flat=flat, to_buyer=bool(to_buyer))


async def app_destination(session: Unit, caller: Caller) -> str | None:
    """Where the app's lifecycle events go (``outbox.service.webhook_url``)."""
    if caller.settings is not None:
        return caller.settings.destination
    return await webhook_url(session, caller.app_id)


async def price_order(
    session: Unit,
    caller: Caller,
    request: HoldRequest,
    now_ms: int,
    *,
    lock_offer: bool = False,
    sale: bool = True,
    locked: _Locked | None = None,
) -> Priced:
    """Every rule an order must pass but the places left, and its quote. A code is checked before
    anything else about the tiers, so a code of another tier answers like an unknown one.
    ``sale``: an order placed (a hold or a claim), not a preview: the offer's per-buyer cap
    applies (a preview names no buyer). A sale, and whatever an offer code takes off, need the
    calling app to hold the consent of the event's organizer; a preview of public prices does not.
    ``locked``: what the caller read under the tiers' groups' locks."""
    loaded = locked.loaded if locked is not None else await _load_tiers(session, caller, list(request.items))
    tiers, event = loaded.tiers, await _hold_event(session, caller, request, loaded.events)
    if sale or request.offer_code is not None:
        consents.check(loaded.consented[event.id])
    currencies = {t.currency for t in tiers.values()}
    if len(currencies) != 1:
        raise InvalidRequest("all items of a hold must be priced in one currency")
    (currency,) = currencies
    offer, terms = None, None
    if request.offer_code is not None:
        offer = await offers.offer_for_code(session, event, request.offer_code, now_ms, lock=lock_offer)
        terms = offers.terms(offer)
        places = sum(q for t, q in request.items.items() if terms.covers(t))
        offer_rules.check_applies(places, offer.discount_amount, offer.currency, currency)
    states = await tier_states(
        session,
        [tiers[t] for t in request.items],
        now_ms,
        None if locked is None else locked.groups,
        None if locked is None else locked.held,
    )
    view = Inventory(event, states, offers.unlocked_tiers(offer, tiers))
    check_on_sale({s.tier.id: view.sale_state(s, now_ms) for s in states})
    check_order_limits(request.items, {t.id: t.max_per_order for t in tiers.values()})
    lines = [Line(t, q, tiers[t].unit_amount) for t, q in request.items.items()]
    quote = price(lines, terms, await app_fees(session, caller))
    if offer is not None:
        await offers.check_room(session, offer, quote.offer_places, request.buyer, now_ms, for_buyer=sale)
    return Priced(event, tiers, states, offer, quote)


def shortages_in(requested: Mapping[str, int], states: Sequence[TierState]) -> list[Shortage]:
    """Every tier and group of ``states`` (their counters as read) that cannot cover what is
    ``requested`` of it (:func:`~server.domain.holds.rules.find_shortages`)."""
    return find_shortages(
        requested,
        {s.tier.id: s.pool for s in states},
        {s.tier.id: s.tier.capacity_group_id for s in states},
        {s.group.group.id: s.group.pool for s in states},
    )


async def check_hold(
    session: Unit,
    caller: Caller,
    request: HoldRequest,
    now_ms: int,
    *,
    locked: _Locked | None = None,
) -> Priced:
    """Every rule a hold must pass, on the current counters. Raises the first kind of refusal found,
    naming every item it applies to. ``locked``: what the caller read under its groups' locks; the
    offer's row is then locked too."""
    priced = await price_order(session, caller, request, now_ms, lock_offer=locked is not None, locked=locked)
    shortages = shortages_in(request.items, priced.states)
    if shortages:
        raise shortage_error(shortages)
    return priced


async def checked_under_locks(session: Unit, caller: Caller, request: HoldRequest, now_ms: int) -> Priced:
    """Every rule a hold must pass, checked in the hold's own transaction after locking its capacity
    groups (and, in the check, its offer): concurrent holds of the same places decide one after
    the other."""
    locked = await _read_under_locks(session, caller, list(request.items), now_ms)
    return await check_hold(session, caller, request, now_ms, locked=locked)


async def create_hold(
    session: Unit, caller: Caller, request: HoldRequest, now_ms: int, ttl_ms: int
) -> HoldResult:
    """Reserve every item, and the offer's redemptions, or nothing. The hold is written by the
    driver, not the session: a caller that changes it through the ORM attaches it first."""
    checked = await checked_under_locks(session, caller, request, now_ms)
    event, tiers, quote = checked.event, checked.tiers, checked.quote
    lines = [HeldLine(tiers[tier_id], quantity) for tier_id, quantity in request.items.items()]
    expires_ms = now_ms + ttl_ms
    hold = HOLD.new(
        id=new_id("hold", now_ms),
        app_id=caller.app_id,
        environment=caller.environment,
        event_id=event.id,
        token="chk_" + secrets.token_urlsafe(24),
        status="held",
        buyer_did=request.buyer_did,
        customer_email=request.customer_email,
        return_url=request.return_url,
        cancel_url=request.cancel_url,
        metadata_=request.metadata,
        attendees=request.attendees,
        amount=quote.total,
        subtotal_amount=quote.subtotal,
        discount_amount=quote.discount,
        buyer_fee_amount=quote.buyer_fee,
        app_fee_amount=quote.app_fee,
        offer_id=None if checked.offer is None else checked.offer.id,
        currency=lines[0].tier.currency,
        expires_ms=expires_ms,
        created_ms=now_ms,
        updated_ms=now_ms,
    )
    items = [
        HOLD_ITEM.new(
            hold_id=hold.id,
            tier_id=line.tier.id,
            capacity_group_id=line.tier.capacity_group_id,
            quantity=line.quantity,
            unit_amount=line.tier.unit_amount,
            active_until_ms=expires_ms,
        )
        for line in lines
    ]
    entry = ledger.about(
        "hold",
        hold,
        "held",
        caller.app_did,
        now_ms,
        {
            "items": request.items,
            "expiresMs": expires_ms,
            "amount": hold.amount,
            "discount": quote.discount,
            "appFee": quote.app_fee,
            "offerId": hold.offer_id,
        },
    )
    destination = await app_destination(session, caller)
    webhook = hold_webhook(hold, lines, event.uri)
    message = outbox_message(
        hold.app_id, destination, hold.environment, "ticket.hold.created", webhook, now_ms
    )
    await insert_all(
        await driver_of(session),
        (HOLD, [hold]),
        (HOLD_ITEM, items),
        (ledger.ENTRY, [entry]),
        (OUTBOX_MESSAGE, [message]),
        later=True,
    )
    if checked.offer is not None:
        await offers.reserve(session, checked.offer, hold, quote.offer_places, request.buyer)
    return HoldResult(hold, lines, checked.offer)


async def place_hold(
    db: Database,
    caller: Caller,
    request: HoldRequest,
    now_ms: int,
    ttl_ms: int,
    *,
    codes: limits.CodeLimits,
    once: idempotency.Once | None,
    encode: Callable[[HoldResult], dict[str, Any]],
) -> dict[str, Any]:
    """An app's hold, as ``createTicketHold`` takes it: guarded against guessed offer codes, once
    per idempotency key, in one write transaction. ``encode`` turns the hold into the answer, which
    a replay of the key answers again."""

    async def hold(unit: Transaction) -> dict[str, Any]:
        return encode(await create_hold(unit, caller, request, now_ms, ttl_ms))

    return await take_order(db, caller, request, now_ms, codes, once, hold, db.transaction)


async def take_order(
    db: Database,
    caller: Caller,
    request: HoldRequest,
    now_ms: int,
    codes: limits.CodeLimits,
    once: idempotency.Once | None,
    work: idempotency.Work[U],
    begin: idempotency.Begin[U],
) -> dict[str, Any]:
    """How an app's order (a hold, a free claim) is taken: ``work`` in one write transaction
    ``begin`` opens, once per idempotency key, guarded against guessed offer codes (per app, and per
    buyer when named)."""

    async def once_per_key() -> dict[str, Any]:
        return await idempotency.write_once(db, once, now_ms, work, begin)

    return await limits.guarding_codes(
        db, caller, request.offer_code, request.buyer, codes, now_ms, once_per_key
    )


async def preview_order(db: Database, caller: Caller, request: HoldRequest, now_ms: int) -> Priced:
    """An order priced by the very rules a hold charges, reserving nothing (a preview: the offer's
    per-buyer cap does not apply)."""
    async with db.read() as session:
        return await price_order(session, caller, request, now_ms, sale=False)


def price_parts(hold: Hold) -> dict[str, Any]:
    """How a hold's amount was made, for the app's webhooks (``offerId`` credits an affiliate)."""
    parts: dict[str, Any] = {
        "subtotalAmount": hold.subtotal_amount,
        "discountAmount": hold.discount_amount,
        "buyerFeeAmount": hold.buyer_fee_amount,
        "appFeeAmount": hold.app_fee_amount,
    }
    if hold.offer_id is not None:
        parts["offerId"] = hold.offer_id
    return parts


def hold_webhook(hold: Hold, lines: Sequence[HeldLine], uri: str) -> dict[str, Any]:
    return event_data(
        event_id=hold.event_id,
        event_uri=uri,
        hold_id=hold.id,
        hold={
            "id": hold.id,
            "eventId": hold.event_id,
            "status": hold.status,
            "amount": hold.amount,
            **price_parts(hold),
            "currency": hold.currency,
            "expiresAt": format_datetime(hold.expires_ms),
            "items": [{"tierId": line.tier.id, "quantity": line.quantity} for line in lines],
        },
    )


async def end_hold(
    session: Unit, hold: Hold, status: str, actor: str | None, now_ms: int, reason: str | None
) -> None:
    """``hold`` ended (:func:`end_holds`)."""
    await end_holds(session, [hold], status, actor, now_ms, reason)


async def end_holds(
    session: Unit, holds: Sequence[Hold], status: str, actor: str | None, now_ms: int, reason: str | None
) -> None:
    """``holds`` ended (``status``): their places and redemptions are no longer held, and the ledger
    says why; one statement a table for them all. Written by the driver, and set on the holds as
    written: a session that tracks them has nothing left to flush."""
    if not holds:
        return
    driver = await driver_of(session)
    hold_ids = [hold.id for hold in holds]
    await driver.execute(_END, {"hold_ids": hold_ids, "status": status, "now_ms": now_ms})
    await driver.execute(_RELEASE, {"hold_ids": hold_ids})
    await offers.give_back(session, hold_ids)
    data = {"reason": reason} if reason else None
    for hold in holds:
        set_committed_value(hold, "status", status)
        set_committed_value(hold, "updated_ms", now_ms)
    await ledger.ENTRY.insert_many(
        driver, [ledger.about("hold", h, status, actor, now_ms, data) for h in holds]
    )


async def release_hold(
    session: AsyncSession, caller: Caller, hold_id: str, reason: str | None, now_ms: int
) -> Hold:
    """Give the places back. Releasing a hold that already ended answers its final status."""
    hold = await session.scalar(
        select(Hold)
        .where(Hold.id == hold_id, Hold.app_id == caller.app_id, Hold.environment == caller.environment)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if hold is None:
        raise TicketHoldNotFound(f"hold {hold_id} not found")
    if hold.status == "held":
        final = released_status(hold.status, hold.expires_ms, now_ms)
        await end_hold(session, hold, final, caller.app_did, now_ms, reason)
    return hold


async def release_app_hold(
    db: Database, caller: Caller, hold_id: str, reason: str | None, now_ms: int
) -> Hold:
    """The app's hold released in its own write transaction (``releaseTicketHold``)."""
    async with db.write() as session:
        return await release_hold(session, caller, hold_id, reason, now_ms)


async def sweep_expired(session: AsyncSession, now_ms: int, limit: int = SWEEP_BATCH) -> list[Hold]:
    """Mark up to ``limit`` lapsed holds ``expired``. Safe in every process at once: rows another
    sweeper has claimed are skipped, not waited for (``FOR UPDATE SKIP LOCKED``)."""
    holds = (
        await session.scalars(
            select(Hold)
            .where(Hold.status == "held", Hold.expires_ms <= now_ms)
            .order_by(Hold.expires_ms)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).all()
    await end_holds(session, holds, "expired", None, now_ms, "checkout time ran out")
    messages = []
    for hold in holds:
        data = event_data(
            event_id=hold.event_id,
            event_uri=await event_uri(session, hold.event_id),
            hold_id=hold.id,
            hold={"id": hold.id, "eventId": hold.event_id, "status": "expired"},
        )
        url = await webhook_url(session, hold.app_id)  # read once an app, for the transaction
        messages.append(
            outbox_message(hold.app_id, url, hold.environment, "ticket.hold.expired", data, now_ms)
        )
    await insert_all(await driver_of(session), (OUTBOX_MESSAGE, messages))
    return list(holds)

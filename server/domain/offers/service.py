"""Offer transactions: managing offers, finding the one a code names, and reserving, returning and
consuming its redemptions alongside the hold that uses it.

Redemptions are counted like places: ``offers.redeemed`` counts the tickets of completed holds and
``offer_redemptions`` rows of unexpired ``held`` holds reserve more. A hold that uses a capped offer
locks the offer row (after its capacity groups: one lock order everywhere), so two holds never both
take the last redemption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database, Unit, driver_of
from server.db.models import Event, Hold, Offer, OfferRedemption, Tier
from server.db.rows import Shape
from server.domain.caller import Caller
from server.domain.catalog.rules import check_status
from server.domain.catalog.service import Inventory, ensure_can_manage, find_event, inventory, note_change
from server.domain.common import decode_cursor, encode_cursor, new_id
from server.domain.offers import rules
from server.domain.offers.pricing import Terms
from server.errors import InvalidOfferCode, InvalidRequest, OfferCodeExhausted, OfferNotFound, TierNotFound


@dataclass(slots=True)
class OfferInput:
    name: str
    kind: str
    code: str
    public: bool = False
    description: str | None = None
    discount_percent: int | None = None
    discount_amount: int | None = None
    currency: str | None = None
    tier_ids: list[str] | None = None
    starts_ms: int | None = None
    ends_ms: int | None = None
    max_redemptions: int | None = None
    max_per_buyer: int | None = None


@dataclass(frozen=True, slots=True)
class OfferUsage:
    """``redeemed``: tickets of completed holds; ``reserved``: tickets of unexpired holds."""

    offer: Offer
    redeemed: int
    reserved: int

    @property
    def remaining(self) -> int | None:
        return rules.remaining(self.offer.max_redemptions, self.redeemed, self.reserved)


def terms(offer: Offer) -> Terms:
    scope = None if offer.tier_ids is None else frozenset(offer.tier_ids)
    return Terms(percent=offer.discount_percent, amount=offer.discount_amount, tier_ids=scope)


def unlocked_tiers(offer: Offer | None, tier_ids: Iterable[str]) -> frozenset[str]:
    """The tiers among ``tier_ids`` that the offer opens (hidden, or not on sale yet)."""
    if offer is None:
        return frozenset()
    return rules.unlocked_tiers(offer.kind, terms(offer), tier_ids)


def _check(given: OfferInput | Offer) -> None:
    """Rules every offer keeps, checked on creation and after every change."""
    rules.check_offer(
        given.kind,
        given.discount_percent,
        given.discount_amount,
        given.currency,
        given.starts_ms,
        given.ends_ms,
    )


async def _check_tiers(session: AsyncSession, event: Event, tier_ids: list[str] | None) -> None:
    if tier_ids is None:
        return
    if not tier_ids:
        raise InvalidRequest("tierIds lists at least one tier; leave it out for every tier")
    found = set(
        await session.scalars(select(Tier.id).where(Tier.event_id == event.id, Tier.id.in_(tier_ids)))
    )
    missing = [t for t in tier_ids if t not in found]
    if missing:
        raise TierNotFound(f"not a tier of this event: {', '.join(missing)}")


async def create_offer(
    session: AsyncSession, caller: Caller, event_id: str, given: OfferInput, now_ms: int
) -> Offer:
    event = await find_event(session, caller.environment, event_id=event_id)
    await ensure_can_manage(session, event, caller)
    rules.check_new_offer(given.kind, given.code)
    _check(given)
    await _check_tiers(session, event, given.tier_ids)
    key = rules.code_key(given.code)
    if await session.scalar(select(Offer.id).where(Offer.event_id == event.id, Offer.code_key == key)):
        raise InvalidRequest("this event already has an offer with this code")
    offer = Offer(
        id=new_id("offer", now_ms),
        environment=caller.environment,
        event_id=event.id,
        owner_app_id=caller.app_id,
        name=given.name,
        description=given.description,
        kind=given.kind,
        code=given.code.strip(),
        code_key=key,
        public=given.public,
        discount_percent=given.discount_percent,
        discount_amount=given.discount_amount,
        currency=given.currency.lower() if given.currency else None,
        tier_ids=list(dict.fromkeys(given.tier_ids)) if given.tier_ids is not None else None,
        starts_ms=given.starts_ms,
        ends_ms=given.ends_ms,
        max_redemptions=given.max_redemptions,
        max_per_buyer=given.max_per_buyer,
        redeemed=0,
        status="active",
        created_ms=now_ms,
        updated_ms=now_ms,
    )
    session.add(offer)
    created = {"kind": offer.kind, "public": offer.public}
    await note_change(session, caller, offer.event_id, "offer", offer.id, "created", now_ms, created)
    await session.flush()
    return offer


async def _find(session: AsyncSession, caller: Caller, offer_id: str, *, lock: bool = False) -> Offer:
    query = (
        select(Offer)
        .where(Offer.id == offer_id, Offer.environment == caller.environment)
        .execution_options(populate_existing=True)
    )
    offer = await session.scalar(query.with_for_update() if lock else query)
    if offer is None:
        raise OfferNotFound(f"offer {offer_id} not found")
    return offer


async def update_offer(
    session: AsyncSession, caller: Caller, offer_id: str, changes: dict[str, Any], now_ms: int
) -> Offer:
    """``changes`` maps column names to new values. The code and kind stay as they are; a new cap
    never goes below what is redeemed or reserved."""
    check_status(changes.get("status"), rules.OFFER_STATUSES, "status")
    offer = await _find(session, caller, offer_id, lock=True)
    event = await find_event(session, caller.environment, event_id=offer.event_id)
    await ensure_can_manage(session, event, caller)
    if "name" in changes and not changes["name"]:
        raise InvalidRequest("name cannot be cleared")
    if "tier_ids" in changes:
        await _check_tiers(session, event, changes["tier_ids"])
    if changes.get("currency"):
        changes["currency"] = changes["currency"].lower()
    cap = changes.get("max_redemptions")
    if cap is not None:
        usage = (await usages(session, [offer], now_ms))[0]
        rules.check_cap(offer.id, cap, usage.redeemed, usage.reserved)
    for name, value in changes.items():
        setattr(offer, name, value)
    _check(offer)
    if session.is_modified(offer):
        offer.updated_ms = now_ms
        logged = {k: v for k, v in changes.items() if k != "description"}
        await note_change(session, caller, offer.event_id, "offer", offer.id, "updated", now_ms, logged)
    return offer


async def list_offers(
    session: AsyncSession, caller: Caller, event_id: str, now_ms: int, *, after: str | None, limit: int
) -> list[OfferUsage]:
    event = await find_event(session, caller.environment, event_id=event_id)
    await ensure_can_manage(session, event, caller)
    query = select(Offer).where(Offer.event_id == event.id).order_by(Offer.id).limit(limit)
    if after is not None:
        query = query.where(Offer.id > after)
    return await usages(session, list(await session.scalars(query)), now_ms)


OFFER = Shape(Offer, "o")
_RESERVED = (
    "SELECT r.offer_id, SUM(r.places) FROM offer_redemptions r "
    "WHERE r.offer_id IN (:offer_ids) AND r.active_until_ms > :now_ms GROUP BY r.offer_id"
)
_FOR_CODE = (
    f"SELECT {OFFER.columns} FROM offers o "  # noqa: S608 (constant names)
    "WHERE o.event_id = :event_id AND o.code_key = :code_key AND o.status = 'active'"
)
_USED_BY_BUYER = (
    "SELECT COALESCE(SUM(r.places), 0) FROM offer_redemptions r WHERE r.offer_id = :offer_id "
    "AND r.buyer_key = :buyer_key AND (r.consumed OR r.active_until_ms > :now_ms)"
)
REDEMPTION = Shape(OfferRedemption, "r")
_REDEMPTION = f"SELECT {REDEMPTION.columns} FROM offer_redemptions r WHERE r.hold_id = :hold_id"  # noqa: S608 (constant names)
_OFFER = f"SELECT {OFFER.columns} FROM offers o WHERE o.id = :offer_id"  # noqa: S608 (constant names)
_GIVE_BACK = (
    "UPDATE offer_redemptions SET active_until_ms = NULL WHERE hold_id IN (:hold_ids) AND NOT consumed"
)
_CONSUME = (
    "UPDATE offer_redemptions SET consumed = TRUE, active_until_ms = NULL "
    "WHERE hold_id = :hold_id AND NOT consumed RETURNING offer_id, places"
)
_REDEEMED = "UPDATE offers SET redeemed = redeemed + :places WHERE id = :offer_id"


async def usages(session: Unit, offers: list[Offer], now_ms: int) -> list[OfferUsage]:
    rows = await (await driver_of(session)).fetch_in(
        _RESERVED, {"now_ms": now_ms}, "offer_ids", [o.id for o in offers]
    )
    reserved = {offer_id: int(total) for offer_id, total in rows}
    return [OfferUsage(o, o.redeemed, reserved.get(o.id, 0)) for o in offers]


# --- codes on orders -----------------------------------------------------------------------------


async def offer_for_code(session: Unit, event: Event, code: str, now_ms: int, *, lock: bool = False) -> Offer:
    """The active offer of ``event`` that ``code`` names, within its window; otherwise
    :class:`InvalidOfferCode`, whatever the reason. Read as it is (``lock``: locked until the
    transaction ends), not into the session: nothing changes it through the ORM."""
    driver = await driver_of(session)
    rows = await driver.fetch(
        _FOR_CODE + driver.for_update() if lock else _FOR_CODE,
        {"event_id": event.id, "code_key": rules.code_key(code)},
    )
    offer = OFFER.load(rows[0]) if rows else None
    if offer is None or not rules.in_window(offer.starts_ms, offer.ends_ms, now_ms):
        raise InvalidOfferCode("this code cannot be used for this order")
    return offer


async def check_room(
    session: Unit,
    offer: Offer,
    places: int,
    buyer_key: str | None,
    now_ms: int,
    *,
    for_buyer: bool = True,
) -> None:
    """Redemptions left for ``places`` more tickets, in total and, ``for_buyer``, for the buyer
    (when the offer caps buyers, a hold must name one)."""
    if offer.max_redemptions is not None:
        usage = (await usages(session, [offer], now_ms))[0]
        rules.check_room(places, usage.remaining)
    if offer.max_per_buyer is not None and for_buyer:
        if buyer_key is None:
            raise InvalidRequest("this code is limited per buyer: send buyerDid or customerEmail")
        ((used,),) = await (await driver_of(session)).fetch(
            _USED_BY_BUYER, {"offer_id": offer.id, "buyer_key": buyer_key, "now_ms": now_ms}
        )
        rules.check_buyer_room(places, int(used or 0), offer.max_per_buyer)


async def reserve(session: Unit, offer: Offer, hold: Hold, places: int, buyer: str | None) -> None:
    """The hold's redemptions, reserved until it expires."""
    reserved = REDEMPTION.new(
        offer_id=offer.id,
        hold_id=hold.id,
        buyer_key=buyer,
        places=places,
        active_until_ms=hold.expires_ms,
        consumed=False,
    )
    await REDEMPTION.insert(await driver_of(session), reserved)


async def give_back(session: Unit, hold_ids: Sequence[str]) -> None:
    """Holds that ended without completing return their redemptions."""
    await (await driver_of(session)).execute(_GIVE_BACK, {"hold_ids": list(hold_ids)})


async def recheck(session: Unit, hold: Hold, now_ms: int) -> bool:
    """Before a late payment re-reserves an ended hold: whether its redemptions are still there
    (the offer locked, like the groups). A hold without an offer always passes."""
    driver = await driver_of(session)
    rows = await driver.fetch(_REDEMPTION, {"hold_id": hold.id})
    if not rows:
        return True
    redemption = REDEMPTION.load(rows[0])
    (offer_row,) = await driver.fetch(_OFFER + driver.for_update(), {"offer_id": redemption.offer_id})
    try:
        await check_room(session, OFFER.load(offer_row), redemption.places, redemption.buyer_key, now_ms)
    except (OfferCodeExhausted, InvalidRequest):
        return False
    return True


async def consume(session: Unit, hold_id: str) -> None:
    """A completed hold spends its redemptions for good."""
    driver = await driver_of(session)
    for offer_id, places in await driver.fetch(_CONSUME, {"hold_id": hold_id}):
        await driver.execute(_REDEEMED, {"offer_id": offer_id, "places": places})


async def available_tiers(
    db: Database, caller: Caller, event_id: str | None, event_uri: str | None, code: str | None, now_ms: int
) -> Inventory:
    """The event's tiers as buyers may see them (``getTicketAvailability``); an access ``code``
    also shows the hidden and unlisted tiers it opens, on sale as the code allows."""
    async with db.read() as session:
        event = await find_event(session, caller.environment, event_id=event_id, event_uri=event_uri)
        found = await inventory(session, event, now_ms)
        if code is not None:
            offer = await offer_for_code(session, event, code, now_ms)
            found.unlocked = unlocked_tiers(offer, (s.tier.id for s in found.tiers))
    return found


async def make_offer(
    db: Database, caller: Caller, event_id: str, given: OfferInput, now_ms: int
) -> OfferUsage:
    """``createOffer``: the offer, with its usage."""
    async with db.write() as session:
        offer = await create_offer(session, caller, event_id, given, now_ms)
        (usage,) = await usages(session, [offer], now_ms)
    return usage


async def change_offer(
    db: Database, caller: Caller, offer_id: str, changes: dict[str, Any], now_ms: int
) -> OfferUsage:
    """``updateOffer``: the offer changed, with its usage."""
    async with db.write() as session:
        offer = await update_offer(session, caller, offer_id, changes, now_ms)
        await session.flush()
        (usage,) = await usages(session, [offer], now_ms)
    return usage


async def offers_page(
    db: Database, caller: Caller, event_id: str, now_ms: int, *, cursor: str | None, limit: int
) -> tuple[list[OfferUsage], str | None]:
    """``listOffers``: one page of an event's offers, in creation order; no cursor on the last."""
    async with db.read() as session:
        found = await list_offers(
            session,
            caller,
            event_id,
            now_ms,
            after=None if cursor is None else decode_cursor(cursor, "offer_"),
            limit=limit + 1,
        )
    return found[:limit], encode_cursor(found[limit - 1].offer.id) if len(found) > limit else None

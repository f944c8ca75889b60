"""What the hosted event page reads: the public event of an organizer's calendar record, the app it
speaks for, and its tiers as a buyer sees them (the pure facts are in :mod:`.rules`).

The page acts as the event's owner app: its holds and quotes go through the same rules and the same
pricing function as ``createTicketHold`` and ``previewTicketOrder``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.eventgraph import CALENDAR_EVENT
from server.db.engine import Database
from server.db.models import App, Event, Hold, Offer, Ticket
from server.db.rows import attach
from server.domain.caller import Caller
from server.domain.catalog.rules import SaleState
from server.domain.catalog.service import Inventory, TierState, inventory
from server.domain.holds.service import HoldRequest, create_hold, effective_status
from server.domain.issuance.list_keys import Keyring
from server.domain.issuance.queries import TicketInContext, in_context
from server.domain.offers import service as offers
from server.domain.storefront.rules import code_price, environment_rank, quantity_bound
from server.errors import EventNotFound


def event_uri(organizer_did: str, rkey: str) -> str:
    return f"at://{organizer_did}/{CALENDAR_EVENT}/{rkey}"


async def public_event(session: AsyncSession, organizer_did: str, rkey: str) -> Event:
    """The ticketed event of this calendar record (live before test), unless archived."""
    events = list(
        await session.scalars(
            select(Event).where(
                Event.uri == event_uri(organizer_did, rkey),
                Event.organizer_did == organizer_did,
                Event.status != "archived",
            )
        )
    )
    if not events:
        raise EventNotFound("this event is not ticketed here")
    return min(events, key=lambda e: (environment_rank(e.environment), e.id))


async def page_caller(session: AsyncSession, event: Event) -> Caller:
    """The page speaks for the app that owns the event (its fees, its holds, its webhooks)."""
    app = await session.get(App, event.owner_app_id)
    if app is None or app.status != "active":
        raise EventNotFound("this event is not ticketed here")
    return Caller(app_id=app.id, app_did=app.did, environment=event.environment)


@dataclass(frozen=True, slots=True)
class TierOffer:
    """One tier as the page shows it: its state now and how many one order may take."""

    state: TierState
    sale: SaleState
    # One ticket's price with the order's offer code, when the code takes something off this tier.
    code_price: int | None = None

    @property
    def tier_id(self) -> str:
        return self.state.tier.id

    @property
    def title(self) -> str:
        return self.state.tier.title

    @property
    def free(self) -> bool:
        return self.state.tier.unit_amount == 0

    @property
    def most(self) -> int:
        """The quantity picker's bound: the per-order limit and what is left."""
        tier = self.state.tier
        return quantity_bound(self.sale, tier.unit_amount, tier.max_per_order, self.state.available)


async def listing(
    session: AsyncSession, event: Event, code: str | None, now_ms: int
) -> tuple[list[TierOffer], str | None]:
    """The tiers a buyer may see (public ones, and those ``code`` opens), and the code when it is a
    valid one (:class:`~server.errors.InvalidOfferCode` otherwise)."""
    everything = await inventory(session, event, now_ms)
    unlocked: frozenset[str] = frozenset()
    offer = None
    if code:
        offer = await offers.offer_for_code(session, event, code, now_ms)
        unlocked = offers.unlocked_tiers(offer, (s.tier.id for s in everything.tiers))
    view = Inventory(event, everything.tiers, unlocked)
    shown = [TierOffer(s, view.sale_state(s, now_ms), _code_price(offer, s)) for s in view.listed()]
    return [t for t in shown if t.sale != SaleState.HIDDEN], code or None


def _code_price(offer: Offer | None, state: TierState) -> int | None:
    """One ticket of the tier priced with the offer (None: no offer, or no change)."""
    if offer is None:
        return None
    tier = state.tier
    return code_price(tier.id, tier.unit_amount, tier.currency, offers.terms(offer), offer.currency)


# --- one call each: the page's routes ------------------------------------------------------------


async def page_event(db: Database, organizer_did: str, rkey: str) -> tuple[Event, Caller]:
    """The page's event (:func:`public_event`) and the app it speaks for (:func:`page_caller`)."""
    async with db.read() as session:
        event = await public_event(session, organizer_did, rkey)
        return event, await page_caller(session, event)


async def listed(
    db: Database, event: Event, code: str | None, now_ms: int
) -> tuple[list[TierOffer], str | None]:
    """:func:`listing` in its own read transaction."""
    async with db.read() as session:
        return await listing(session, event, code, now_ms)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a checkout of the page: the hold's status, and its tickets once completed."""

    hold: Hold
    status: str
    tickets: list[TicketInContext]


async def checkout_outcome(
    db: Database, keyring: Keyring, event: Event, token: str, now_ms: int
) -> Outcome | None:
    """The checkout ``token`` of ``event``, if there is one."""
    async with db.read() as session:
        hold = await session.scalar(select(Hold).where(Hold.token == token, Hold.event_id == event.id))
        if hold is None:
            return None
        status = effective_status(hold, now_ms)
        tickets: list[TicketInContext] = []
        if status == "completed":
            issued = await session.scalars(
                select(Ticket).where(Ticket.hold_id == hold.id).order_by(Ticket.id)
            )
            tickets = await in_context(session, keyring, list(issued))
    return Outcome(hold, status, tickets)


async def buy(
    db: Database, caller: Caller, request: HoldRequest, now_ms: int, ttl_ms: int, back: str
) -> Hold:
    """The page's hold, taken as the event's app; its checkout sends the buyer back to ``back``
    followed by the hold's token, paid or cancelled."""
    async with db.write() as session:
        result = await create_hold(session, caller, request, now_ms, ttl_ms)
        attach(session, result.hold)
        result.hold.return_url = result.hold.cancel_url = back + result.hold.token
    return result.hold

"""The hosted event page's facts: the public event of an organizer's calendar record, its tiers as a
buyer sees them, the order a page form asks for, and calendar entries (ICS) of an event.

The page acts as the event's owner app: its holds and quotes go through the same rules and the same
pricing function as ``createTicketHold`` and ``previewTicketOrder``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.eventgraph import CALENDAR_EVENT
from server.db.models import App, Event, Offer
from server.domain.caller import Caller
from server.domain.catalog.rules import SaleState
from server.domain.catalog.service import Inventory, TierState, inventory
from server.domain.offers import service as offers
from server.domain.offers.pricing import NO_FEES, Line, price
from server.errors import EventNotFound, InvalidRequest

# Environments in the order a public page prefers them when one record is ticketed in both.
_PREFERRED = {"live": 0, "test": 1}
# The most tickets of one tier a page form may ask for, whatever a tier allows.
PAGE_MAX_QUANTITY = 50


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
    return min(events, key=lambda e: (_PREFERRED.get(e.environment, 2), e.id))


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
    def free(self) -> bool:
        return self.state.tier.unit_amount == 0

    @property
    def most(self) -> int:
        """The quantity picker's bound: the per-order limit and what is left."""
        if self.sale != SaleState.AVAILABLE or self.free:
            return 0
        return min(self.state.tier.max_per_order, self.state.available, PAGE_MAX_QUANTITY)


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
    """One ticket of the tier priced with the offer, by the one pricing function (None: no change)."""
    tier = state.tier
    if offer is None or (offer.currency is not None and offer.currency != tier.currency):
        return None
    one = price([Line(tier.id, 1, tier.unit_amount)], offers.terms(offer), NO_FEES).total
    return one if one < tier.unit_amount else None


def ordered_items(form: Mapping[str, str], tiers: list[TierOffer]) -> dict[str, int]:
    """The quantities a page form asks for (``qty-<tierId>`` fields), each a whole number from 0 to
    the tier's bound."""
    items: dict[str, int] = {}
    for tier in tiers:
        raw = form.get(f"qty-{tier.state.tier.id}", "0").strip() or "0"
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 3:
            raise InvalidRequest("a quantity is a whole number")
        quantity = int(raw)
        if quantity > tier.most:
            raise InvalidRequest(f"at most {tier.most} of {tier.state.tier.title}")
        if quantity:
            items[tier.state.tier.id] = quantity
    if not items:
        raise InvalidRequest("choose at least one ticket")
    return items


# --- time and calendar entries -------------------------------------------------------------------


def local_time(ms: int, timezone: str | None) -> str:
    """``Thu 31 Dec 2026, 21:00 (Europe/Paris)``: the event's wall-clock time in its own zone."""
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone, timezone = UTC, None
    moment = datetime.fromtimestamp(ms / 1000, tz=zone)
    return moment.strftime("%a %d %b %Y, %H:%M") + f" ({timezone or 'UTC'})"


def _ics_text(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ics_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def _fold(line: str) -> str:
    """RFC 5545 folding: lines of at most 75 octets, continued with a leading space."""
    out, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > 75:
            out.append(current.decode())
            current = b" "
        current += encoded
    out.append(current.decode())
    return "\r\n".join(out)


def calendar_entry(event: Event, uid: str, url: str, now_ms: int, description: str = "") -> str:
    """An ICS calendar holding the event (without a start, nothing to add: the caller checks)."""
    assert event.starts_ms is not None
    ends_ms = event.ends_ms if event.ends_ms and event.ends_ms > event.starts_ms else event.starts_ms
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Atmosphere Tickets//EN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_ics_time(now_ms)}",
        f"DTSTART:{_ics_time(event.starts_ms)}",
        f"DTEND:{_ics_time(ends_ms)}",
        f"SUMMARY:{_ics_text(event.title)}",
        *([f"LOCATION:{_ics_text(event.place)}"] if event.place else []),
        f"URL:{url}",
        *([f"DESCRIPTION:{_ics_text(description)}"] if description else []),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"

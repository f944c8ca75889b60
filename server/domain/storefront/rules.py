"""The hosted event page's pure facts: which environment a public page shows, how many tickets of a
tier one page order may take, the order a page form asks for, one ticket's price with a code, and
an event's time and calendar entry (ICS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.domain.catalog.rules import SaleState
from server.domain.offers.pricing import NO_FEES, Line, Terms, price
from server.errors import InvalidRequest

# Environments in the order a public page prefers them when one record is ticketed in both.
_PREFERRED = {"live": 0, "test": 1}
# The most tickets of one tier a page form may ask for, whatever a tier allows.
PAGE_MAX_QUANTITY = 50


def environment_rank(environment: str) -> int:
    """A page shows the event of the first environment: live, then test, then any other."""
    return _PREFERRED.get(environment, 2)


def quantity_bound(sale: SaleState, unit_amount: int, max_per_order: int, available: int) -> int:
    """The quantity picker's bound: the per-order limit and what is left, for a paid tier on sale
    (free tiers are not sold on the page)."""
    if sale != SaleState.AVAILABLE or unit_amount == 0:
        return 0
    return min(max_per_order, available, PAGE_MAX_QUANTITY)


class Choice(Protocol):
    """One tier of a page form: its id, its title and the bound of its quantity."""

    @property
    def tier_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def most(self) -> int: ...


def ordered_items(form: Mapping[str, str], tiers: Sequence[Choice]) -> dict[str, int]:
    """The quantities a page form asks for (``qty-<tierId>`` fields), each a whole number from 0 to
    the tier's bound."""
    items: dict[str, int] = {}
    for tier in tiers:
        raw = form.get(f"qty-{tier.tier_id}", "0").strip() or "0"
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 3:
            raise InvalidRequest("a quantity is a whole number")
        quantity = int(raw)
        if quantity > tier.most:
            raise InvalidRequest(f"at most {tier.most} of {tier.title}")
        if quantity:
            items[tier.tier_id] = quantity
    if not items:
        raise InvalidRequest("choose at least one ticket")
    return items


def code_price(
    tier_id: str, unit_amount: int, currency: str, terms: Terms, offer_currency: str | None
) -> int | None:
    """One ticket of the tier priced with an offer's ``terms``, by the one pricing function (None:
    no change, or an offer in another currency)."""
    if offer_currency is not None and offer_currency != currency:
        return None
    one = price([Line(tier_id, 1, unit_amount)], terms, NO_FEES).total
    return one if one < unit_amount else None


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


class CalendarFacts(Protocol):
    """What a calendar entry tells of an event."""

    @property
    def title(self) -> str: ...

    @property
    def starts_ms(self) -> int | None: ...

    @property
    def ends_ms(self) -> int | None: ...

    @property
    def place(self) -> str | None: ...


def calendar_entry(event: CalendarFacts, uid: str, url: str, now_ms: int, description: str = "") -> str:
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

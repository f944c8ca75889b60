"""The event page's pure parts: times in the event's zone, calendar entries, the quantities a form
asks for and their bounds, a ticket's price with a code, the environment a page shows."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from server.domain.catalog.rules import SaleState
from server.domain.offers.pricing import Terms
from server.domain.storefront.rules import (
    PAGE_MAX_QUANTITY,
    calendar_entry,
    code_price,
    environment_rank,
    local_time,
    ordered_items,
    quantity_bound,
)
from server.domain.storefront.service import TierOffer
from server.errors import InvalidRequest

NEW_YEAR_UTC_MS = 1_798_747_200_000  # 2026-12-31T20:00:00Z


def test_times_are_shown_in_the_event_s_zone() -> None:
    assert local_time(NEW_YEAR_UTC_MS, "Europe/Paris") == "Thu 31 Dec 2026, 21:00 (Europe/Paris)"
    assert local_time(NEW_YEAR_UTC_MS, "America/New_York") == "Thu 31 Dec 2026, 15:00 (America/New_York)"
    assert local_time(NEW_YEAR_UTC_MS, None) == "Thu 31 Dec 2026, 20:00 (UTC)"
    assert local_time(NEW_YEAR_UTC_MS, "Not/AZone") == "Thu 31 Dec 2026, 20:00 (UTC)"
    assert local_time(NEW_YEAR_UTC_MS, "../../etc/passwd") == "Thu 31 Dec 2026, 20:00 (UTC)"


def test_a_calendar_entry_escapes_and_folds() -> None:
    event: Any = SimpleNamespace(
        title="Jazz, blues; and more\nall night " + "é" * 60,
        starts_ms=NEW_YEAR_UTC_MS,
        ends_ms=None,
        place="Quai 5, Lyon",
    )
    entry = calendar_entry(event, "ticket_1@tickets", "https://t.example/passes/ticket_1?k=x", 0)
    lines = entry.split("\r\n")
    assert entry.endswith("\r\n") and lines[0] == "BEGIN:VCALENDAR"
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = entry.replace("\r\n ", "")
    assert "SUMMARY:Jazz\\, blues\\; and more\\nall night " + "é" * 60 in unfolded
    assert "DTSTART:20261231T200000Z" in unfolded and "DTEND:20261231T200000Z" in unfolded
    assert "LOCATION:Quai 5\\, Lyon" in unfolded


def _tier(tier_id: str, most: int) -> TierOffer:
    tier = SimpleNamespace(id=tier_id, title=tier_id.title(), unit_amount=100, max_per_order=most)
    state: Any = SimpleNamespace(tier=tier, available=most)
    return TierOffer(state, SaleState.AVAILABLE)


def test_a_form_asks_for_whole_numbers_within_each_tier_s_bound() -> None:
    tiers = [_tier("a", 4), _tier("b", 2)]
    assert ordered_items({"qty-a": "2", "qty-b": "0"}, tiers) == {"a": 2}
    assert ordered_items({"qty-a": " 1 ", "qty-b": "2", "qty-zzz": "9"}, tiers) == {"a": 1, "b": 2}
    for form in [{"qty-a": "5"}, {"qty-a": "-1"}, {"qty-a": "1e3"}, {"qty-a": "٣"}, {}, {"qty-a": "0"}]:
        with pytest.raises(InvalidRequest):
            ordered_items(form, tiers)


def test_a_page_order_is_bounded_by_the_limit_what_is_left_and_the_page() -> None:
    assert quantity_bound(SaleState.AVAILABLE, 100, 10, 4) == 4
    assert quantity_bound(SaleState.AVAILABLE, 100, 3, 40) == 3
    assert quantity_bound(SaleState.AVAILABLE, 100, 500, 500) == PAGE_MAX_QUANTITY
    assert quantity_bound(SaleState.AVAILABLE, 0, 10, 10) == 0  # free tiers are not sold on the page
    for state in (SaleState.SOLD_OUT, SaleState.NOT_ON_SALE, SaleState.HIDDEN, SaleState.UNAVAILABLE):
        assert quantity_bound(state, 100, 10, 10) == 0


def test_a_code_price_shows_only_a_lower_price_in_the_tier_s_currency() -> None:
    assert code_price("a", 1_000, "eur", Terms(percent=25), None) == 750
    assert code_price("a", 1_000, "eur", Terms(amount=300), "eur") == 700
    assert code_price("a", 1_000, "eur", Terms(amount=300), "usd") is None
    assert code_price("a", 1_000, "eur", Terms(percent=25, tier_ids=frozenset({"b"})), None) is None
    assert code_price("a", 1_000, "eur", Terms(), None) is None  # an offer that only unlocks


def test_a_public_page_prefers_live_then_test() -> None:
    assert sorted(["other", "test", "live"], key=environment_rank) == ["live", "test", "other"]

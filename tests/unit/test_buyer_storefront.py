"""The event page's pure parts: times in the event's zone, calendar entries, the quantities a form
asks for."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from server.domain.catalog.rules import SaleState
from server.domain.storefront import TierOffer, calendar_entry, local_time, ordered_items
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

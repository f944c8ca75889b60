"""The event's place, from the locations of its pinned calendar record: the text of each kind of
location, kept on the event when the record is read, shown on the event and pass pages and written
into the calendar entry."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Harness
from sqlalchemy import update
from support.payments import rows
from support.pds import CALENDAR, ORGANIZER, LocalPds, calendar_event, uri_of
from support.storefront import pass_links, served_at_its_own_url, storefront

from server.atproto.place import place_text
from server.db.engine import Database
from server.db.models import Event
from server.domain.storefront.rules import calendar_entry

ADDRESS = {
    "$type": "community.lexicon.location.address",
    "name": "Harbour Hall",
    "street": "Kaistraße 5",
    "locality": "Hamburg",
    "region": "HH",
    "postalCode": "20457",
    "country": "DE",
}
GEO = {"$type": "community.lexicon.location.geo", "latitude": "53.54", "longitude": "9.98"}
KINDS: list[tuple[str, Any, str | None]] = [
    ("address", [ADDRESS], "Harbour Hall, Kaistraße 5, Hamburg, HH, 20457, DE"),
    ("address, country only", [{"$type": ADDRESS["$type"], "country": "FR"}], "FR"),
    ("geo with a name", [{**GEO, "name": "The pier"}], "The pier"),
    ("geo coordinates", [GEO], "53.54, 9.98"),
    ("geo out of range", [{**GEO, "latitude": "123"}], None),
    (
        "foursquare",
        [{"$type": "community.lexicon.location.fsq", "fsq_place_id": "4b0", "name": "Café"}],
        "Café",
    ),
    (
        "foursquare coordinates",
        [{**GEO, "$type": "community.lexicon.location.fsq", "fsq_place_id": "x"}],
        "53.54, 9.98",
    ),
    (
        "hthree with a name",
        [{"$type": "community.lexicon.location.hthree", "value": "8a1f", "name": "Dock"}],
        "Dock",
    ),
    ("hthree without a name", [{"$type": "community.lexicon.location.hthree", "value": "8a1f"}], None),
    (
        "uri with a name",
        [{"$type": "community.lexicon.calendar.event#uri", "uri": "https://x.example", "name": "Stream"}],
        "Stream",
    ),
    (
        "uri alone",
        [{"$type": "community.lexicon.calendar.event#uri", "uri": "https://meet.example/r"}],
        "https://meet.example/r",
    ),
    (
        "uri not a web link",
        [{"$type": "community.lexicon.calendar.event#uri", "uri": "javascript:alert(1)"}],
        None,
    ),
    ("no $type, by shape", [{"country": "NL", "locality": "Utrecht"}], "Utrecht, NL"),
    ("unknown kind with a name", [{"$type": "org.example.place", "name": "Somewhere"}], "Somewhere"),
    (
        "several",
        [ADDRESS, {**GEO, "name": "The pier"}],
        "Harbour Hall, Kaistraße 5, Hamburg, HH, 20457, DE · The pier",
    ),
    ("junk", [42, None, "text", {"$type": 7}, {"name": ["no"]}], None),
    ("not a list", {"name": "x"}, None),
    ("control characters", [{"$type": "org.example.place", "name": "A\nB\u202e\tC "}], "A B C"),
]


@pytest.mark.parametrize(("case", "locations", "text"), KINDS, ids=[k[0] for k in KINDS])
def test_the_place_text_of_each_kind_of_location(case: str, locations: Any, text: str | None) -> None:
    assert place_text(locations) == text, case


def test_a_long_place_is_cut() -> None:
    many = [{"$type": "org.example.place", "name": f"{n} " + "x" * 200} for n in range(10)]
    text = place_text(many)
    assert text is not None and len(text) <= 300 and text.count(" · ") <= 2


def test_the_calendar_entry_names_the_place_escaped() -> None:
    event = Event(
        uri="at://did:plc:x/community.lexicon.calendar.event/1",
        title="Night",
        starts_ms=1_800_000_000_000,
        ends_ms=None,
        place="Hall; Street 5, Town\r\nBEGIN:VALARM",
    )
    entry = calendar_entry(event, "uid@test", "https://tickets.test/p", 0)
    assert "LOCATION:Hall\\; Street 5\\, Town\\nBEGIN:VALARM\r\n" in entry
    assert "\r\nBEGIN:VALARM" not in entry
    without = calendar_entry(Event(uri=event.uri, title="Night", starts_ms=1, ends_ms=None), "u", "x", 0)
    assert "LOCATION" not in without


async def _ticketed(harness: Harness, rkey: str) -> dict[str, Any]:
    out = await harness.app.ok(
        "createTicketEvent", {"organizerDid": ORGANIZER, "event": {"uri": uri_of(rkey)}, "status": "active"}
    )
    event: dict[str, Any] = out["event"]
    return event


def _page(rkey: str) -> str:
    return f"/p/{ORGANIZER}/e/{rkey}"


async def test_the_place_is_kept_when_the_record_is_read_and_shown(harness: Harness, pds: LocalPds) -> None:
    pds.put(ORGANIZER, CALENDAR, "3kplace000001", calendar_event(locations=[ADDRESS]))
    event = await _ticketed(harness, "3kplace000001")
    (row,) = await rows(harness.settings, Event, Event.id == event["id"])
    assert row.place == "Harbour Hall, Kaistraße 5, Hamburg, HH, 20457, DE"
    page = await harness.app.http.get(harness.server.url + _page("3kplace000001"))
    assert page.status_code == 200
    assert '<p class="place">Harbour Hall, Kaistraße 5, Hamburg, HH, 20457, DE</p>' in page.text

    # The record moves: reading it again (any update but a status change) follows it.
    pds.put(ORGANIZER, CALENDAR, "3kplace000001", calendar_event(locations=[{**GEO, "name": "The pier"}]))
    await harness.app.ok("updateTicketEvent", {"eventId": event["id"], "title": "Night market"})
    page = await harness.app.http.get(harness.server.url + _page("3kplace000001"))
    assert '<p class="place">The pier</p>' in page.text and "Harbour Hall" not in page.text

    # A record without locations clears it, and the page says nothing of a place.
    pds.put(ORGANIZER, CALENDAR, "3kplace000001", calendar_event())
    await harness.app.ok("updateTicketEvent", {"eventId": event["id"], "title": "Night market"})
    (row,) = await rows(harness.settings, Event, Event.id == event["id"])
    assert row.place is None
    page = await harness.app.http.get(harness.server.url + _page("3kplace000001"))
    assert 'class="place"' not in page.text


async def test_unreadable_locations_do_not_refuse_the_record(harness: Harness, pds: LocalPds) -> None:
    record = calendar_event(locations=[{"$type": "community.lexicon.location.geo", "latitude": 5}, "x"])
    pds.put(ORGANIZER, CALENDAR, "3kplace000002", record)
    event = await _ticketed(harness, "3kplace000002")
    assert event["title"] == "Night market"
    (row,) = await rows(harness.settings, Event, Event.id == event["id"])
    assert row.place is None and row.cid == event["cid"]


async def test_the_pass_page_and_its_calendar_entry_name_the_place(harness: Harness) -> None:
    served_at_its_own_url(harness.server)
    shop = await storefront(harness.app)
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Event).where(Event.id == shop.event["id"]).values(place="Hall <A>; Quay 5, Town")
            )
    finally:
        await db.dispose()
    url = harness.server.url + shop.path
    page = await harness.app.http.get(url)
    assert '<p class="place">Hall &lt;A&gt;; Quay 5, Town</p>' in page.text
    form = {f"qty-{shop.tiers['General']}": "1", "email": "guest@example.org", "action": "buy"}
    checkout = (await harness.app.http.post(url, data=form)).headers["location"]
    back = await harness.app.http.get((await harness.app.http.post(checkout + "/pay")).headers["location"])
    (link,) = pass_links(back.text)
    pass_page = await harness.app.http.get(link)
    assert '<p class="place">Hall &lt;A&gt;; Quay 5, Town</p>' in pass_page.text
    ics = await harness.app.http.get(link.replace("?", "/event.ics?", 1))
    assert "LOCATION:Hall <A>\\; Quay 5\\, Town\r\n" in ics.text

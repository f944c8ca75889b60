"""The event graph end to end: calendar event records read by AT-URI from a PDS stand-in on loopback
(DID document → PDS → getRecord), verified against their CID, read defensively, pinned, re-pinned."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from conftest import Harness
from support.pds import CALENDAR, ORGANIZER, LocalPds, calendar_event, uri_of
from support.server import Identity

from server.auth.signing import SigningKey
from server.xrpc.lexicon.formats import grapheme_length, utf8_length


async def ticket(harness: Harness, uri: str, **event: Any) -> Any:
    """Ticket the event for the organizer its URI names."""
    organizer = uri.removeprefix("at://").split("/")[0]
    return await harness.app.call(
        "createTicketEvent", {"organizerDid": organizer, "event": {"uri": uri, **event}}
    )


async def test_an_event_is_filled_from_its_record_and_pinned(harness: Harness, pds: LocalPds) -> None:
    record = calendar_event(
        status="scheduled",  # a bare value, as older apps write it
        mode="community.lexicon.calendar.event#inperson",
        locations=[{"$type": "community.lexicon.location.geo", "latitude": "52.5", "longitude": "13.4"}],
        somethingNew={"apps": ["add", "fields"]},
    )
    cid = pds.put(ORGANIZER, CALENDAR, "3kmarket00001", record)
    response = await ticket(harness, uri_of("3kmarket00001"))
    assert response.status_code == 200, response.text
    event = response.json()["event"]
    assert event["title"] == "Night market"
    assert event["startsAt"] == "2026-12-05T18:00:00.000Z"
    assert event["endsAt"] == "2026-12-05T23:30:00.000Z"
    assert event["cid"] == cid
    assert pds.count("com.atproto.repo.getRecord") == 1

    # What the app gives wins over the record; the pin is still the version read and verified.
    pds.put(ORGANIZER, CALENDAR, "3kmarket00002", calendar_event())
    response = await ticket(
        harness,
        uri_of("3kmarket00002"),
        title="Our own title",
        cid="bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
    )
    event = response.json()["event"]
    assert (event["title"], event["startsAt"]) == ("Our own title", "2026-12-05T18:00:00.000Z")
    assert event["cid"] == pds.get(ORGANIZER, CALENDAR, "3kmarket00002").cid  # type: ignore[union-attr]


async def test_update_reads_the_record_again_and_re_pins(harness: Harness, pds: LocalPds) -> None:
    pds.put(ORGANIZER, CALENDAR, "3kmoved000001", calendar_event("Jazz evening"))
    event = (await ticket(harness, uri_of("3kmoved000001"))).json()["event"]
    moved = calendar_event("Jazz evening (moved)", startsAt="2026-12-12T19:00:00.000Z", status="rescheduled")
    new_cid = pds.put(ORGANIZER, CALENDAR, "3kmoved000001", moved)
    assert new_cid != event["cid"]

    updated = (await harness.app.ok("updateTicketEvent", {"eventId": event["id"]}))["event"]
    assert updated["cid"] == new_cid
    assert updated["title"] == "Jazz evening (moved)"
    assert updated["startsAt"] == "2026-12-12T19:00:00.000Z"

    # A title given in the call wins; changing only the status does not read the record.
    titled = await harness.app.ok("updateTicketEvent", {"eventId": event["id"], "title": "Jazz!"})
    assert titled["event"]["title"] == "Jazz!"
    reads = pds.count("com.atproto.repo.getRecord")
    await harness.app.ok("updateTicketEvent", {"eventId": event["id"], "status": "active"})
    assert pds.count("com.atproto.repo.getRecord") == reads


async def test_an_oversized_name_is_cut_on_a_grapheme_boundary(harness: Harness, pds: LocalPds) -> None:
    name = "Fête 👩‍👩‍👧‍👦 " * 120  # 840 graphemes; each family emoji is 7 code points, 25 bytes
    pds.put(ORGANIZER, CALENDAR, "3klong0000001", calendar_event(name, description="x" * 50_000))
    title = (await ticket(harness, uri_of("3klong0000001"))).json()["event"]["title"]
    assert (grapheme_length(title), utf8_length(title)) == (300, 42 * 32 + 31)
    assert name.startswith(title) and title.endswith("👩‍👩‍👧‍👦")

    families = "👩‍👩‍👧‍👦" * 200  # 25 bytes a grapheme: the byte limit binds first
    pds.put(ORGANIZER, CALENDAR, "3klong0000002", calendar_event(families))
    title = (await ticket(harness, uri_of("3klong0000002"))).json()["event"]["title"]
    assert title == "👩‍👩‍👧‍👦" * 120


MALFORMED: list[tuple[str, Any]] = [
    ("no name", {"$type": CALENDAR, "createdAt": "2026-09-01T10:00:00.000Z"}),
    ("a name that is a number", calendar_event(name=42)),  # type: ignore[arg-type]
    ("an unreadable start", calendar_event(startsAt="next friday")),
    ("another collection's record", {**calendar_event(), "$type": "app.bsky.feed.post"}),
    ("an empty name", calendar_event(name="   ")),
    ("a float", calendar_event(capacity=12.5)),
]


@pytest.mark.parametrize(("case", "record"), MALFORMED, ids=[case for case, _ in MALFORMED])
async def test_a_malformed_record_is_a_clear_error(
    harness: Harness, pds: LocalPds, case: str, record: Any
) -> None:
    pds.put(ORGANIZER, CALENDAR, "3kbroken00001", record)
    for given in ({}, {"title": "Given anyway"}):
        response = await ticket(harness, uri_of("3kbroken00001"), **given)
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"] == "InvalidEventRecord"
        assert uri_of("3kbroken00001") in response.json()["message"]


async def test_answers_that_are_not_the_record_they_claim(harness: Harness, pds: LocalPds) -> None:
    key = (ORGANIZER, CALENDAR, "3kliar0000001")
    other_cid = pds.put(ORGANIZER, CALENDAR, "3kother000001", calendar_event("Other"))
    body = {"uri": uri_of("3kliar0000001"), "cid": other_cid, "value": calendar_event("Forged")}
    pds.raw_answers[key] = (200, json.dumps(body).encode())
    response = await ticket(harness, uri_of("3kliar0000001"))
    assert (response.status_code, response.json()["error"]) == (400, "InvalidEventRecord")
    assert "does not match" in response.json()["message"]

    pds.raw_answers[key] = (200, json.dumps({"uri": body["uri"], "value": "nope"}).encode())
    response = await ticket(harness, uri_of("3kliar0000001"))
    assert (response.status_code, response.json()["error"]) == (400, "InvalidEventRecord")


async def test_a_missing_record_is_event_record_not_found(harness: Harness, pds: LocalPds) -> None:
    response = await ticket(harness, uri_of("3knothere0001"), title="Ghost")
    assert (response.status_code, response.json()["error"]) == (404, "EventRecordNotFound")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_pds(harness: Harness, pds: LocalPds) -> None:
    """Given details, the event is ticketed unpinned; without them the caller is told to retry.
    Once the PDS is back, an update reads the record and pins it."""
    assert harness.settings.did_docs is not None
    away = "did:plc:awaypdsaaaaaaaaaaaaaaaaa"
    key = SigningKey.generate("ES256K")
    harness.app.acts_for[away] = Identity(away, key)
    document = {
        **key.did_document(away),
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": f"http://127.0.0.1:{closed_port()}",
            }
        ],
    }
    path = harness.settings.did_docs / "away.json"
    path.write_text(json.dumps(document))
    uri = uri_of("3kaway0000001", repo=away)

    response = await ticket(harness, uri)
    assert (response.status_code, response.json()["error"]) == (502, "EventRecordUnavailable")
    assert "cannot be read now" in response.json()["message"]

    event = (await ticket(harness, uri, title="Picnic", startsAt="2026-07-01T12:00:00.000Z")).json()["event"]
    assert event["title"] == "Picnic" and "cid" not in event

    document["service"][0]["serviceEndpoint"] = pds.url  # the PDS is back (a new file: the folder
    path.unlink()  # is read again when its listing changes)
    (harness.settings.did_docs / "away-back.json").write_text(json.dumps(document))
    cid = pds.put(away, CALENDAR, "3kaway0000001", calendar_event("Picnic in the park"))
    updated = (await harness.app.ok("updateTicketEvent", {"eventId": event["id"]}))["event"]
    assert (updated["cid"], updated["title"]) == (cid, "Picnic in the park")


async def test_uris_that_name_no_readable_event(harness: Harness, pds: LocalPds) -> None:
    uri = f"at://{ORGANIZER}/app.bsky.feed.post/3kpost"
    response = await ticket(harness, uri)
    assert (response.status_code, response.json()["error"]) == (400, "InvalidRequest"), uri
    assert "event.title is required" in response.json()["message"]
    assert (await ticket(harness, uri, title="Fine")).status_code == 200
    # A handle is no organizer: the URI's authority must be the organizer's DID.
    by_handle = {"uri": "at://organizer.test/" + CALENDAR + "/3kx", "title": "Fine"}
    refused = await harness.app.call("createTicketEvent", {"organizerDid": ORGANIZER, "event": by_handle})
    assert (refused.status_code, refused.json()["error"]) == (400, "OrganizerNotEventAuthority")
    assert pds.count("com.atproto.repo.getRecord") == 0

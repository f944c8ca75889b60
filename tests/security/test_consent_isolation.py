"""Tenant isolation of an event's door data: another app neither reads nor changes an event's
check-in lists, gates, key ids and live counts, even with the same organizer's consent; and reads
make nothing (no default list, no signing key). SQLite and PostgreSQL."""

from __future__ import annotations

from conftest import Harness
from support.catalog import ORGANIZER, active_event
from support.consent import calendar_uri, legacy_event, lists_and_keys, refused

OTHER = "did:web:other-tenant.example"


async def test_another_app_neither_reads_nor_changes_an_events_lists(harness: Harness) -> None:
    event = await active_event(harness.app)
    door = await harness.app.ok("createCheckInList", {"eventId": event["id"], "name": "VIP", "gates": ["G1"]})
    list_id = door["checkInList"]["id"]
    other = await harness.client(OTHER)
    other.acts_for[ORGANIZER] = harness.identity(ORGANIZER)  # the organizer trusts it too
    await other.ok(
        "createTicketEvent",
        {"organizerDid": ORGANIZER, "event": {"uri": calendar_uri(ORGANIZER), "title": "Its own"}},
    )
    for method, body in (
        ("listCheckInLists", {"eventId": event["id"]}),
        ("createCheckInList", {"eventId": event["id"], "name": "Mine"}),
        ("updateCheckInList", {"checkInListId": list_id, "gates": ["Back door"], "rotateKey": True}),
        ("exportCheckInList", {"checkInListId": list_id}),
        ("listOffers", {"eventId": event["id"]}),
    ):
        response = await other.call(method, body)
        assert (response.status_code, response.json()["error"]) == (403, "Forbidden"), method
    (after,) = [
        c
        for c in (await harness.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
        if c["id"] == list_id
    ]
    assert after["gates"] == ["G1"] and len(after["keyIds"]) == 1
    await other.aclose()


async def test_reads_make_no_lists_or_keys(harness: Harness) -> None:
    # A new event gets its default list and that list's key when it is created...
    event = await active_event(harness.app)
    assert await lists_and_keys(harness, event["id"]) == (1, 1)
    # ...and reading an event that has none (ticketed before this rule) makes none.
    uri = calendar_uri(ORGANIZER)
    legacy = await legacy_event(harness, owner_did=harness.app.identity.did, organizer_did=ORGANIZER, uri=uri)
    listed = await harness.app.ok("listCheckInLists", {"eventId": legacy})
    assert listed["checkInLists"] == []
    await harness.app.ok("getTicketAvailability", {"eventId": legacy})
    assert await lists_and_keys(harness, legacy) == (0, 0)
    # An explicit call makes the default list beside the new one.
    await harness.app.ok("createCheckInList", {"eventId": legacy, "name": "Side door"})
    assert await lists_and_keys(harness, legacy) == (2, 2)


async def test_a_stranger_cannot_read_counts_of_a_missing_consent(harness: Harness) -> None:
    """An app whose consent was never granted reads no lists of an event it owns (a row from
    before consent): the organizer's consent comes first."""
    other = await harness.client(OTHER)
    legacy = await legacy_event(
        harness, owner_did=OTHER, organizer_did=ORGANIZER, uri=calendar_uri(ORGANIZER)
    )
    refused(await other.call("listCheckInLists", {"eventId": legacy}), 403, "OrganizerConsentRequired")
    await other.aclose()

"""Attack: selling an organizer's event without the organizer's consent. A registered app that never
got the organizer's consent — or got another organizer's, or had it revoked — holds, claims and
prices with an offer code nothing of the organizer's events (403 ``OrganizerConsentRequired``, no
row written); a preview of public prices stays open. An app the organizer consents to sells, and a
hold made before a revocation is still paid for. Nor does an app without consent make the server
read the organizer's PDS. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from conftest import Harness
from support.broker import FakeBroker
from support.catalog import ORGANIZER, active_event
from support.consent import consented_app, refused, tier_body
from support.payments import rows
from support.pds import CALENDAR, LocalPds, calendar_event, uri_of
from support.pds import ORGANIZER as PDS_ORGANIZER
from support.server import AppClient

from server.db.models import Hold, OfferRedemption, Ticket

NS = "tickets.atmosphere."
BUYER = "did:plc:consentsalebuyer000000000"
BROKER = FakeBroker()


async def catalog(h: Harness) -> dict[str, str]:
    """The harness app's active event with a paid tier, a free tier and an offer code."""
    event = await active_event(h.app)
    paid = await h.app.ok("createTicketTier", tier_body(ORGANIZER, event["uri"], unit_amount=1500))
    free = await h.app.ok("createTicketTier", tier_body(ORGANIZER, event["uri"], unit_amount=0))
    offer = {
        "eventId": event["id"],
        "name": "Crew",
        "kind": "discount",
        "code": "CREW50",
        "discountPercent": 50,
    }
    await h.app.ok("createOffer", offer)
    return {"event": event["id"], "paid": paid["tier"]["id"], "free": free["tier"]["id"]}


def hold(ids: dict[str, str]) -> dict[str, Any]:
    return {"eventId": ids["event"], "items": [{"tierId": ids["paid"], "quantity": 1}]}


def preview(ids: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"eventId": ids["event"], "tierId": ids["paid"], "quantity": 1, **extra}


async def assert_sells_nothing(h: Harness, app: AppClient, ids: dict[str, str]) -> None:
    before = [len(await rows(h.settings, model)) for model in (Hold, Ticket, OfferRedemption)]
    buyer = h.identity(BUYER)
    claim = {
        "items": [{"tierId": ids["free"], "quantity": 1}],
        "buyerDid": BUYER,
        "buyerAssertionJwt": buyer.token(NS + "claimFreeTicket"),
    }
    previews = []
    for method, body in (
        ("createTicketHold", hold(ids)),
        ("createTicketHold", {**hold(ids), "offerCode": "CREW50"}),
        ("claimFreeTicket", claim),
        # A priced code tells whether it is real and what it takes off: a real and a guessed one
        # are refused alike, before the code is looked at.
        ("previewTicketOrder", preview(ids, offerCode="CREW50")),
        ("previewTicketOrder", preview(ids, offerCode="CREW51")),
    ):
        response = await app.call(method, body)
        refused(response, 403, "OrganizerConsentRequired")
        previews += [response.json()] if method == "previewTicketOrder" else []
    assert previews[0] == previews[1]
    after = [len(await rows(h.settings, model)) for model in (Hold, Ticket, OfferRedemption)]
    assert after == before
    # What any buyer may see stays open: the tiers on sale at their public price.
    public = await app.ok("previewTicketOrder", preview(ids))
    assert public["totalAmount"] == 1500 and "offerCode" not in public


async def test_trustfix_an_app_without_the_organizers_consent_sells_nothing(harness: Harness) -> None:
    ids = await catalog(harness)
    stranger = await harness.client("did:web:stranger-shop.example")
    # The consent of another organizer is not this organizer's.
    elsewhere = await consented_app(
        harness, "did:web:elsewhere-shop.example", "did:plc:otherorganizer0000000000"
    )
    try:
        for app in (stranger, elsewhere):
            await assert_sells_nothing(harness, app, ids)
    finally:
        await stranger.aclose()
        await elsewhere.aclose()


async def test_trustfix_a_consented_app_sells_until_the_organizer_revokes_it(harness: Harness) -> None:
    ids = await catalog(harness)
    partner = await consented_app(harness, "did:web:partner-shop.example", ORGANIZER)
    organizer = AppClient(harness.server.url, harness.identity(ORGANIZER))  # with its own token
    try:
        made = await partner.ok("createTicketHold", hold(ids))
        priced = await partner.ok("previewTicketOrder", preview(ids, offerCode="CREW50"))
        assert priced["totalAmount"] == 750
        await organizer.ok("revokeOrganizerConsent", {"appDid": partner.identity.did})
        await assert_sells_nothing(harness, partner, ids)
        # The hold made with consent is still the buyer's to pay for.
        paid = await BROKER.send(partner.http, harness.server.url, BROKER.paid(made))
        assert paid.status_code == 200, paid.text
        (ticket,) = await rows(harness.settings, Ticket, Ticket.hold_id == made["holdId"])
        assert ticket.status == "active"
    finally:
        await partner.aclose()
        await organizer.aclose()


async def test_trustfix_an_app_without_consent_never_makes_the_server_read_the_pds(
    harness: Harness, pds: LocalPds
) -> None:
    """Ticketing an organizer's event reads its record from the organizer's PDS: not for an app the
    organizer never consented to, whose call is refused first."""
    pds.put(PDS_ORGANIZER, CALENDAR, "3kstranger0001", calendar_event("Not yours"))
    uri = uri_of("3kstranger0001")
    stranger = await harness.client("did:web:stranger-shop.example")
    try:
        for method, body in (
            ("createTicketEvent", {"organizerDid": PDS_ORGANIZER, "event": {"uri": uri}}),
            ("createCapacityGroup", {"organizerDid": PDS_ORGANIZER, "event": {"uri": uri}, "name": "Hall",
                                     "totalCapacity": 10}),
            ("createTicketTier", tier_body(PDS_ORGANIZER, uri)),
        ):  # fmt: skip
            refused(await stranger.call(method, body), 403, "OrganizerConsentRequired")
    finally:
        await stranger.aclose()
    assert pds.count("com.atproto.repo.getRecord") == 0

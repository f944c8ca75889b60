"""Attacks on organizers' events by registered apps: ticketing without the organizer's consent,
naming an organizer the event URI does not, locking the organizer out, replaying or misdirecting
its assertion, and going on after the organizer revoked its consent. SQLite and PostgreSQL."""

from __future__ import annotations

from conftest import APP_DID, Harness
from support.consent import calendar_uri, event_body, legacy_event, refused, tier_body
from support.server import AppClient, Identity

from server.auth.signing import SigningKey

NS = "tickets.atmosphere."
ORGANIZER = "did:plc:consentorganizer000000000"
HOSTILE = "did:web:hostile-app.example"
PARTNER = "did:web:partner-app.example"


async def test_an_app_without_consent_cannot_ticket_an_organizers_event(harness: Harness) -> None:
    harness.identity(ORGANIZER)  # a real organizer, whose DID resolves
    hostile = await harness.client(HOSTILE)
    body = event_body(ORGANIZER)
    uri = body["event"]["uri"]
    refused(await hostile.call("createTicketEvent", body), 403, "OrganizerConsentRequired")
    refused(
        await hostile.call("createTicketTier", tier_body(ORGANIZER, uri)), 403, "OrganizerConsentRequired"
    )
    group = {"organizerDid": ORGANIZER, "event": body["event"], "name": "Hall", "totalCapacity": 5}
    refused(await hostile.call("createCapacityGroup", group), 403, "OrganizerConsentRequired")
    refused(await hostile.call("getTicketAvailability", {"eventUri": uri}), 404, "EventNotFound")
    await hostile.aclose()


async def test_the_organizer_is_the_authority_of_the_event_uri(harness: Harness) -> None:
    hostile = await harness.client(HOSTILE)
    # The hostile app is an organizer of its own, consenting to itself...
    hostile.acts_for[HOSTILE] = hostile.identity
    body = event_body(HOSTILE, calendar_uri(ORGANIZER))
    # ...but the event is in another organizer's repository.
    refused(await hostile.call("createTicketEvent", body), 400, "OrganizerNotEventAuthority")
    by_handle = event_body(HOSTILE, f"at://organizer.example/{body['event']['uri'].split('/', 3)[3]}")
    refused(await hostile.call("createTicketEvent", by_handle), 400, "OrganizerNotEventAuthority")
    # The real organizer's app tickets the event as its own.
    harness.app.acts_for[ORGANIZER] = harness.identity(ORGANIZER)
    made = await harness.app.ok("createTicketEvent", event_body(ORGANIZER, body["event"]["uri"]))
    assert made["event"]["organizerDid"] == ORGANIZER
    await hostile.aclose()


async def test_a_locked_out_organizer_reclaims_its_event(harness: Harness) -> None:
    """An event ticketed before consent by a hostile app, for the hostile app's own DID, in the
    organizer's repository: the old rules refused the organizer for good
    (``OrganizerReassignmentNotAllowed``). The organizer's assertion reclaims it."""
    hostile = await harness.client(HOSTILE)
    uri = calendar_uri(ORGANIZER)
    event_id = await legacy_event(harness, owner_did=HOSTILE, organizer_did=HOSTILE, uri=uri)
    harness.app.acts_for[ORGANIZER] = harness.identity(ORGANIZER)
    reclaimed = await harness.app.ok("createTicketEvent", event_body(ORGANIZER, uri))
    assert (reclaimed["event"]["id"], reclaimed["event"]["organizerDid"]) == (event_id, ORGANIZER)
    refused(await hostile.call("updateTicketEvent", {"eventId": event_id, "title": "Mine"}), 403, "Forbidden")
    hostile.acts_for[HOSTILE] = hostile.identity
    refused(
        await hostile.call("createTicketEvent", event_body(HOSTILE, uri)), 400, "OrganizerNotEventAuthority"
    )
    tier = await harness.app.ok("createTicketTier", tier_body(ORGANIZER, uri))
    assert tier["tier"]["eventId"] == event_id
    await hostile.aclose()


async def test_an_organizer_assertion_serves_once(harness: Harness) -> None:
    organizer = harness.identity(ORGANIZER)
    partner = await harness.client(PARTNER)
    token = organizer.token(NS + "createTicketEvent")
    await harness.app.ok("createTicketEvent", event_body(ORGANIZER, organizerAssertionJwt=token))
    again = await harness.app.call("createTicketEvent", event_body(ORGANIZER, organizerAssertionJwt=token))
    refused(again, 401, "OrganizerAssertionInvalid")
    assert "already used" in again.json()["message"]
    elsewhere = await partner.call("createTicketEvent", event_body(ORGANIZER, organizerAssertionJwt=token))
    refused(elsewhere, 401, "OrganizerAssertionInvalid")
    # The replayed assertion granted the partner nothing.
    refused(await partner.call("createTicketEvent", event_body(ORGANIZER)), 403, "OrganizerConsentRequired")
    await partner.aclose()


async def test_an_assertion_for_another_method_or_audience_grants_nothing(harness: Harness) -> None:
    organizer = harness.identity(ORGANIZER)
    partner = await harness.client(PARTNER)
    misdirected = {
        "another method": organizer.token(NS + "createTicketTier"),
        "another audience": organizer.token(NS + "createTicketEvent", aud="did:web:elsewhere.example"),
        "another issuer": partner.identity.token(NS + "createTicketEvent"),
    }
    for why, token in misdirected.items():
        response = await partner.call("createTicketEvent", event_body(ORGANIZER, organizerAssertionJwt=token))
        assert (response.status_code, response.json()["error"]) == (401, "OrganizerAssertionInvalid"), why
    refused(await partner.call("createTicketEvent", event_body(ORGANIZER)), 403, "OrganizerConsentRequired")
    await partner.aclose()


async def test_a_revoked_app_changes_nothing_and_its_sales_stay_valid(harness: Harness) -> None:
    organizer = harness.identity(ORGANIZER)
    harness.app.acts_for[ORGANIZER] = organizer
    made = await harness.app.ok("createTicketEvent", event_body(ORGANIZER))
    event, uri = made["event"], made["event"]["uri"]
    tier = (await harness.app.ok("createTicketTier", tier_body(ORGANIZER, uri, unit_amount=0)))["tier"]
    buyer = harness.identity("did:plc:consentbuyer0000000000000")
    claim = {
        "items": [{"tierId": tier["id"], "quantity": 1}],
        "buyerDid": buyer.did,
        "buyerAssertionJwt": buyer.token(NS + "claimFreeTicket"),
    }
    (ticket,) = (await harness.app.ok("claimFreeTicket", claim))["tickets"]

    own = AppClient(harness.server.url, organizer)  # the organizer calls with its own token
    listed = (await own.ok("listOrganizerConsents"))["consents"]
    assert [(c["appDid"], c["status"]) for c in listed] == [(APP_DID, "active")]
    revoke_token = organizer.token(NS + "revokeOrganizerConsent")
    revoked = await own.ok("revokeOrganizerConsent", {"appDid": APP_DID}, token=revoke_token)
    assert revoked["consent"]["status"] == "revoked" and "revokedAt" in revoked["consent"]
    replay = await own.call("revokeOrganizerConsent", {"appDid": APP_DID}, token=revoke_token)
    refused(replay, 401, "JwtReplayed")

    for method, body in (
        ("updateTicketEvent", {"eventId": event["id"], "title": "Changed"}),
        ("updateTicketTier", {"tierId": tier["id"], "quantityTotal": 30}),
        ("createTicketTier", tier_body(ORGANIZER, uri)),
        ("createTicketEvent", event_body(ORGANIZER)),
        ("createCheckInList", {"eventId": event["id"], "name": "Side door"}),
        ("listCheckInLists", {"eventId": event["id"]}),
        ("createOffer", {"eventId": event["id"], "name": "x", "kind": "affiliate", "code": "FRIENDS"}),
    ):
        response = await harness.app.call(method, body)
        assert (response.status_code, response.json()["error"]) == (403, "OrganizerConsentRequired"), method
    # What the app sold stays valid.
    (still,) = (await harness.app.ok("listBuyerTickets", {"buyerDid": buyer.did}))["tickets"]
    assert still["status"] == "active"
    assert (await harness.app.ok("verifyTicket", {"ticketToken": ticket["passToken"]}))["valid"] is True

    # A partner app the organizer trusts now takes the event over with its assertion.
    partner = await harness.client(PARTNER)
    partner.acts_for[ORGANIZER] = organizer
    taken = await partner.ok("createTicketTier", tier_body(ORGANIZER, uri, title="Late"))
    assert taken["event"]["id"] == event["id"]
    listed = (await own.ok("listOrganizerConsents"))["consents"]
    assert [(c["appDid"], c["status"]) for c in listed] == [(APP_DID, "revoked"), (PARTNER, "active")]
    await partner.aclose()
    await own.aclose()


async def test_organizer_methods_resolve_only_known_organizers(harness: Harness) -> None:
    """A DID no app holds a consent of is refused before it is resolved: this one has no document
    anywhere, so resolving it would answer BadJwt instead."""
    unknown = Identity("did:plc:neverconsented00000000000", SigningKey.generate("ES256K"))
    stranger = AppClient(harness.server.url, unknown)
    refused(await stranger.call("listOrganizerConsents"), 404, "OrganizerConsentNotFound")
    refused(
        await stranger.call("revokeOrganizerConsent", {"appDid": APP_DID}), 404, "OrganizerConsentNotFound"
    )
    await stranger.aclose()

"""The XRPC boundary over real HTTP: caller auth refusals, routing and malformed input always answer
``{error, message}`` JSON with the right status — never HTML, never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from conftest import Harness
from sqlalchemy import func, select
from support.catalog import ORGANIZER, active_event, event_input, for_event
from support.server import Identity, LiveServer, register

from server.auth.signing import SigningKey
from server.db.engine import Database
from server.db.models import CapacityGroup
from server.domain import apps

NSID = "tickets.atmosphere.getTicketAvailability"


def assert_xrpc_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"]


async def test_health_answers_the_version(harness: Harness) -> None:
    response = await harness.app.http.get(f"{harness.server.url}/xrpc/_health")
    assert response.status_code == 200 and response.json() == {"version": "0.1.0"}


async def test_caller_auth_refusals(harness: Harness) -> None:
    event = await active_event(harness.app)
    ident = harness.app.identity
    params = {"eventId": event["id"]}
    cases = [
        (None, 401, "AuthenticationRequired"),
        (ident.token(NSID, aud="did:web:elsewhere.example#AttestedNetwork"), 401, "BadJwtAudience"),
        (ident.token(NSID, aud="did:web:tickets.test"), 401, "BadJwtAudience"),  # bare DID not configured
        (ident.token("tickets.atmosphere.createTicketHold"), 401, "BadJwtLexiconMethod"),
        (ident.token(NSID, exp_in=-5), 401, "JwtExpired"),
        (ident.token(NSID, exp_in=3600), 401, "BadJwt"),
        (Identity(ident.did, SigningKey.generate()).token(NSID), 401, "BadJwtSignature"),  # not its key
    ]
    for token, status, error in cases:
        if token is None:
            response = await harness.app.http.get(f"{harness.server.url}/xrpc/{NSID}", params=params)
        else:
            response = await harness.app.call("getTicketAvailability", params, token=token)
        assert_xrpc_error(response, status, error)


async def test_replayed_token_is_refused(harness: Harness) -> None:
    event = await active_event(harness.app)
    token = harness.app.identity.token(NSID)
    first = await harness.app.call("getTicketAvailability", {"eventId": event["id"]}, token=token)
    assert first.status_code == 200
    again = await harness.app.call("getTicketAvailability", {"eventId": event["id"]}, token=token)
    assert_xrpc_error(again, 401, "JwtReplayed")


async def test_a_replayed_procedure_token_writes_nothing(harness: Harness) -> None:
    nsid = "tickets.atmosphere.createTicketEvent"
    token = harness.app.identity.token(nsid)
    body = {"organizerDid": ORGANIZER, "event": event_input(), "status": "active"}
    assert (await harness.app.call("createTicketEvent", body, token=token)).status_code == 200
    other: dict[str, Any] = {
        "organizerDid": ORGANIZER,
        "event": event_input("Another night"),
        "status": "active",
    }
    assert_xrpc_error(await harness.app.call("createTicketEvent", other, token=token), 401, "JwtReplayed")
    missing = await harness.app.call("getTicketAvailability", {"eventUri": other["event"]["uri"]})
    assert_xrpc_error(missing, 404, "EventNotFound")


async def test_a_failed_call_spends_its_token(harness: Harness) -> None:
    token = harness.app.identity.token(NSID)
    first = await harness.app.call("getTicketAvailability", {"eventId": "event_missing"}, token=token)
    assert_xrpc_error(first, 404, "EventNotFound")
    event = await active_event(harness.app)
    again = await harness.app.call("getTicketAvailability", {"eventId": event["id"]}, token=token)
    assert_xrpc_error(again, 401, "JwtReplayed")
    body = {
        "organizerDid": "did:plc:anotherorganizer000000000",
        "event": {"uri": event["uri"]},
        "name": "Hall",
        "totalCapacity": 1,
    }
    create = "tickets.atmosphere.createCapacityGroup"
    token = harness.app.identity.token(create)
    refused = await harness.app.call("createCapacityGroup", body, token=token)  # refused in its write
    assert_xrpc_error(refused, 400, "OrganizerNotEventAuthority")
    body["organizerDid"] = ORGANIZER
    assert_xrpc_error(await harness.app.call("createCapacityGroup", body, token=token), 401, "JwtReplayed")


async def test_only_a_verified_token_spends_its_jti(harness: Harness) -> None:
    event = await active_event(harness.app)
    forged = Identity(harness.app.identity.did, SigningKey.generate()).token(NSID, jti="one-jti")
    refused = await harness.app.call("getTicketAvailability", {"eventId": event["id"]}, token=forged)
    assert_xrpc_error(refused, 401, "BadJwtSignature")
    genuine = harness.app.identity.token(NSID, jti="one-jti")
    assert (
        await harness.app.call("getTicketAvailability", {"eventId": event["id"]}, token=genuine)
    ).is_success


async def test_a_token_is_spent_once_across_servers(harness: Harness) -> None:
    """A second server on the same database (its own pool, app cache and event loop, as a second
    process has) refuses what the first accepted, also when both get the token at once."""
    event = await active_event(harness.app)
    params = {"eventId": event["id"], "environment": "test"}
    other = LiveServer(harness.settings)
    await asyncio.to_thread(other.start)
    try:
        token = harness.app.identity.token(NSID)
        assert (await harness.app.call("getTicketAvailability", params, token=token)).is_success
        replay = await harness.app.http.get(
            f"{other.url}/xrpc/{NSID}", params=params, headers={"authorization": f"Bearer {token}"}
        )
        assert_xrpc_error(replay, 401, "JwtReplayed")

        create = "tickets.atmosphere.createCapacityGroup"
        for n in range(6):
            token = harness.app.identity.token(create)
            body = for_event(event, name=f"Hall {n}", totalCapacity=10, environment="test")
            answers = await asyncio.gather(
                *(
                    harness.app.http.post(
                        f"{base}/xrpc/{create}", json=body, headers={"authorization": f"Bearer {token}"}
                    )
                    for base in (harness.server.url, other.url, harness.server.url, other.url)
                )
            )
            assert sorted(a.status_code for a in answers) == [200, 401, 401, 401], [a.text for a in answers]
    finally:
        await asyncio.to_thread(other.stop)
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.read() as session:
            made = await session.scalar(
                select(func.count()).select_from(CapacityGroup).where(CapacityGroup.event_id == event["id"])
            )
    finally:
        await db.dispose()
    assert made == 6


async def test_unregistered_and_disabled_apps(harness: Harness) -> None:
    stranger = await harness.client("did:web:stranger.example", registered=False)
    assert_xrpc_error(
        await stranger.call("getTicketAvailability", {"eventId": "event_x"}), 403, "AppNotRegistered"
    )
    event = await active_event(harness.app)  # the server now knows the app
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await apps.disable_app(session, harness.app.identity.did, "test", 1)
    finally:
        await db.dispose()
    for method in ("getTicketAvailability", "createCapacityGroup"):
        body = (
            {"eventId": event["id"]}
            if method.startswith("get")
            else {
                "organizerDid": ORGANIZER,
                "event": {"uri": event["uri"]},
                "name": "Hall",
                "totalCapacity": 1,
            }
        )
        assert_xrpc_error(await harness.app.call(method, body), 403, "TicketsModuleDisabled")
    await register(harness.settings.resolved_database_url, harness.app.identity.did)
    assert (await harness.app.call("getTicketAvailability", {"eventId": event["id"]})).is_success
    await stranger.aclose()


async def test_routing_and_malformed_input(harness: Harness) -> None:
    base = f"{harness.server.url}/xrpc"
    auth = {"authorization": f"Bearer {harness.app.identity.token('tickets.atmosphere.createTicketHold')}"}
    http = harness.app.http
    assert_xrpc_error(await http.get(f"{base}/tickets.atmosphere.noSuchMethod"), 404, "MethodNotImplemented")
    assert_xrpc_error(await http.post(f"{base}/com.example.other", json={}), 404, "MethodNotImplemented")
    assert_xrpc_error(await http.get(f"{base}/a/b/c"), 404, "MethodNotImplemented")
    assert_xrpc_error(await http.get(f"{base}/tickets.atmosphere.createTicketHold"), 405, "InvalidRequest")
    hold = f"{base}/tickets.atmosphere.createTicketHold"
    assert_xrpc_error(await http.post(hold, content=b"{not json", headers=auth), 400, "InvalidRequest")
    assert_xrpc_error(await http.post(hold, content=b"", headers=auth), 400, "InvalidRequest")
    assert_xrpc_error(await http.post(hold, json=[1, 2], headers=auth), 400, "InvalidRequest")
    assert_xrpc_error(await http.post(hold, json={"items": []}, headers=auth), 400, "InvalidRequest")
    big = {"items": [{"tierId": "t", "quantity": 1}], "metadata": {"x": "y" * 1_100_000}}
    assert_xrpc_error(await http.post(hold, json=big, headers=auth), 413, "PayloadTooLarge")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"items": [{"tierId": "t", "quantity": 0}]}, "quantity"),
        ({"items": [{"tierId": "t", "quantity": 1}] * 21}, "items"),
        ({"items": [{"tierId": "t", "quantity": "1"}]}, "quantity"),
        ({"items": [{"tierId": "t", "quantity": 1}], "customerEmail": "a" * 321}, "customerEmail"),
        ({"items": [{"tierId": "t", "quantity": 1}], "buyerDid": "not-a-did"}, "buyerDid"),
        ({"items": [{"tierId": "t", "quantity": 1}], "environment": "staging"}, "environment"),
        ({"items": [{"tierId": "t", "quantity": 1}], "buyerDid": "did:plc:abc"}, "buyerAssertionJwt"),
    ],
)
async def test_invalid_hold_input_names_the_field(
    harness: Harness, body: dict[str, object], fragment: str
) -> None:
    response = await harness.app.call(
        "createTicketHold", body, environment=None if "environment" in body else "test"
    )
    assert_xrpc_error(response, 400, "InvalidRequest")
    assert fragment in response.json()["message"]


async def test_lexicon_bounds_on_catalog_input(harness: Harness) -> None:
    event = await active_event(harness.app)
    base = for_event(event, title="T", currency="eur", unitAmount=100, quantityTotal=10)
    for override in (
        {"unitAmount": 2_000_001},
        {"quantityTotal": 0},
        {"currency": "euro"},
        {"title": ""},
        {"maxPerOrder": 51},
        {"saleStartsAt": "yesterday"},
        {"event": {"uri": "https://x"}},
    ):
        assert_xrpc_error(
            await harness.app.call("createTicketTier", {**base, **override}), 400, "InvalidRequest"
        )
    window = {"saleStartsAt": "2026-12-02T00:00:00Z", "saleEndsAt": "2026-12-01T00:00:00Z"}
    assert_xrpc_error(await harness.app.call("createTicketTier", {**base, **window}), 400, "InvalidRequest")
    meta = {"metadata": {"blob": "x" * 9000}}
    assert_xrpc_error(await harness.app.call("createTicketTier", {**base, **meta}), 400, "InvalidRequest")
    bad_status = await harness.app.call("updateTicketEvent", {"eventId": event["id"], "status": "deleted"})
    assert_xrpc_error(bad_status, 400, "InvalidRequest")
    missing = await harness.app.call("updateTicketTier", {"tierId": "tier_nope", "title": "x"})
    assert_xrpc_error(missing, 404, "TierNotFound")
    missing_hold = await harness.app.call("releaseTicketHold", {"holdId": "hold_nope"})
    assert_xrpc_error(missing_hold, 404, "TicketHoldNotFound")

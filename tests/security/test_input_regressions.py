"""Attack: the six kinds of input that answered 500, each sent on purpose (SQLite and PostgreSQL):
JSON nested 10,000 deep, NUL characters (bodies, query strings, paths, JWT claims), integers past
their database column, an unknown check-in direction, forged and malformed cursors, and text
outside ASCII in headers and pass-page keys. Each is refused with a 4xx ``{error, message}`` and
writes nothing; and the body limit holds on every route, the broker webhook and web forms too."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from conftest import Harness
from support.hostile import RawRequest, RawResponse, RowCounts, Seeded, seed, send, xrpc_target
from support.server import NS

DEEP_BODY = b'{"items": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"


async def raw(h: Harness, request: RawRequest) -> RawResponse:
    response = await asyncio.to_thread(send, h.server.port, request)
    assert response is not None
    return response


def refused(response: httpx.Response, status: int, error: str, fragment: str = "") -> None:
    """A JSON ``{error, message}`` refusal; ``fragment`` is in the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error and fragment in body["message"], body


async def seeded(h: Harness) -> Seeded:
    return await seed(h.app, h.settings.resolved_database_url, h.server.url)


async def counts(h: Harness) -> dict[str, int]:
    def read() -> dict[str, int]:
        counter = RowCounts(h.settings.resolved_database_url)
        try:
            return counter()
        finally:
            counter.close()

    return await asyncio.to_thread(read)


def desk(s: Seeded) -> dict[str, str]:
    return {"authorization": f"Bearer {s.device_credential}"}


async def test_input_json_nested_ten_thousand_deep_is_refused_before_authentication(harness: Harness) -> None:
    for body in (DEEP_BODY, b"[" * 10_000):
        response = await raw(
            harness,
            RawRequest(
                "POST", xrpc_target(NS + "createTicketHold"), [(b"content-type", b"application/json")], body
            ),
        )
        assert response.status == 400, response.body  # not 401: no token was sent, and none was needed
        assert b'"InvalidRequest"' in response.body and b"nests deeper than 32 levels" in response.body
    nested: Any = "leaf"
    for _ in range(29):
        nested = {"a": nested}  # within the limit: the caller's token is the next question
    answer = await harness.app.http.post(
        f"{harness.server.url}/xrpc/{NS}createTicketHold",
        json={"items": [{"tierId": "t", "quantity": 1}], "metadata": nested},
    )
    refused(answer, 401, "AuthenticationRequired")


async def test_input_nul_is_refused_in_bodies_queries_paths_and_jwt_claims(harness: Harness) -> None:
    s = await seeded(harness)
    before = await counts(harness)
    event = s.pool["eventId"][0]
    new_event = {"uri": "at://did:plc:x/community.lexicon.calendar.event/r1", "title": "a\x00"}
    items = [{"tierId": s.pool["tierId"][0], "quantity": 1}]
    for method, body in (
        ("createTicketEvent", {"organizerDid": s.pool["organizerDid"][0], "event": new_event}),
        ("updateTicketEvent", {"eventId": event, "title": "Hostile\x00night"}),
        ("createTicketHold", {"items": items, "metadata": {"k\x00": 1}}),
    ):
        refused(await harness.app.call(method, body), 400, "InvalidRequest", "NUL")
    availability = await harness.app.call("getTicketAvailability", {"eventId": event + "\x00"})
    refused(availability, 400, "InvalidRequest", "NUL")
    page = await harness.app.http.get(f"{harness.server.url}/passes/ticket_x%00")
    refused(page, 400, "InvalidRequest", "NUL")
    identity = harness.app.identity
    nsid = NS + "getTicketAvailability"
    for claims in ({"iss": identity.did + "\x00"}, {"jti": "spent\x00"}, {"lxm": nsid + "\x00"}):
        token = identity.token(nsid, extra_claims=claims)
        refused(
            await harness.app.call("getTicketAvailability", {"eventId": event}, token=token), 401, "BadJwt"
        )
    assert await counts(harness) == before


async def test_input_integers_past_their_columns_are_refused(harness: Harness) -> None:
    s = await seeded(harness)
    event, list_id = s.pool["eventId"][0], s.pool["checkInListId"][0]
    offer = {"eventId": event, "name": "Cap", "kind": "discount", "discountPercent": 5}
    before = await counts(harness)
    for field, value in (
        ("maxRedemptions", 2**31),
        ("maxPerBuyer", 2**31),
        ("discountAmount", {"amount": 2**63, "currency": "eur"}),
    ):
        answer = await harness.app.call("createOffer", {**offer, "code": "CAPPED1", field: value})
        refused(answer, 400, "InvalidRequest", field)
    scan = {"ticketToken": s.pool["ticketToken"][0], "checkInListId": list_id}
    for field, value in (("deviceTimeMs", 2**60), ("clockOffsetMs", -(2**60))):
        answer = await harness.app.call("checkInTicket", {**scan, field: value})
        refused(answer, 400, "InvalidRequest", field)
    http, base = harness.app.http, f"{harness.server.url}/xrpc/{NS}"
    for since in (2**31, 2**63):
        bundle = await http.get(
            f"{base}getScannerBundle", params={"checkInListId": list_id, "since": since}, headers=desk(s)
        )
        refused(bundle, 400, "InvalidRequest", "since")
    pulled = await http.get(
        f"{base}pullCheckIns", params={"checkInListId": list_id, "cursor": 2**40}, headers=desk(s)
    )
    refused(pulled, 400, "InvalidRequest", "cursor")
    assert await counts(harness) == before
    widest = {
        "eventId": event,
        "name": "Cap",
        "kind": "discount",
        "code": "CAPPED2",
        "maxRedemptions": 2**31 - 1,
    }
    made = await harness.app.ok(
        "createOffer", {**widest, "discountAmount": {"amount": 2**63 - 1, "currency": "eur"}}
    )
    assert made["offer"]["maxRedemptions"] == 2**31 - 1  # the largest value fits its column


async def test_input_an_unknown_check_in_direction_is_a_clear_400(harness: Harness) -> None:
    s = await seeded(harness)
    before = await counts(harness)
    scan = {"ticketToken": s.pool["ticketToken"][0], "checkInListId": s.pool["checkInListId"][0]}
    for direction in ("sideways", "ENTRY", ""):
        answer = await harness.app.call(
            "checkInTicket", {**scan, "direction": direction, "idempotencyKey": "scan-1"}
        )
        refused(answer, 400, "InvalidRequest", "direction must be one of (entry|exit)")
    assert await counts(harness) == before
    admitted = await harness.app.ok(
        "checkInTicket", {**scan, "direction": "entry", "idempotencyKey": "scan-1"}
    )
    assert admitted["status"] == "checked_in"  # the key was not claimed by the refusals


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_input_malformed_and_forged_cursors_are_refused(harness: Harness) -> None:
    s = await seeded(harness)
    payment = s.pool["paymentId"][0]
    sold = [t["id"] for t in (await harness.app.ok("listBuyerTickets", {"paymentId": payment}))["tickets"]]
    paged, page = [], await harness.app.ok("listBuyerTickets", {"paymentId": payment, "limit": 1})
    for _ in sold[1:]:  # the seed sold five tickets: a page of one each, the last without a cursor
        paged += [t["id"] for t in page["tickets"]]
        page = await harness.app.ok(
            "listBuyerTickets", {"paymentId": payment, "limit": 1, "cursor": page["cursor"]}
        )
    assert paged + [t["id"] for t in page["tickets"]] == sold and len(sold) == 5 and "cursor" not in page
    assert sold[:2] == s.pool["ticketId"]
    ticket = s.pool["ticketId"][0]
    for cursor in ("!!", "%", _b64("ticket_\x00"), _b64(ticket), _b64(f"2.{ticket}"), _b64(f"1.{ticket}'--"),
                   _b64(f"1.{s.pool['offerId'][0]}"), "\u00e9"):  # fmt: skip
        answer = await harness.app.call("listBuyerTickets", {"paymentId": payment, "cursor": cursor})
        refused(answer, 400, "InvalidRequest", "cursor")
    pull = f"{harness.server.url}/xrpc/{NS}pullCheckIns"
    for cursor in ("\u00b2", "-1", "1e3", "99999999999", " 1"):
        answer = await harness.app.http.get(
            pull, params={"checkInListId": s.pool["checkInListId"][0], "cursor": cursor}, headers=desk(s)
        )
        refused(answer, 400, "InvalidRequest", "cursor")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"authorization", b"Bearer caf\xc3\xa9"),
        (b"authorization", b"Bearer dev_\xff.x"),
        (b"x-trace", b"\xe2\x80\x94"),
    ],
)
async def test_input_header_values_outside_ascii_are_a_400(
    harness: Harness, name: bytes, value: bytes
) -> None:
    target = xrpc_target(NS + "getTicketAvailability", b"eventId=event_x&environment=test")
    response = await raw(harness, RawRequest("GET", target, [(name, value)]))
    assert response.status == 400 and response.is_json, response.body
    assert b'"InvalidRequest"' in response.body and b"header must be printable ASCII" in response.body


async def test_input_a_pass_page_key_outside_ascii_is_not_found(harness: Harness) -> None:
    s = await seeded(harness)
    path, _, key = s.pass_path.partition("?k=")
    base = harness.server.url + path
    assert (await harness.app.http.get(base, params={"k": key})).status_code == 200
    for bent in ("caf\u00e9", key[:-1] + "\u00e9", "\U0001f600" * 40):
        page = await harness.app.http.get(base, params={"k": bent})
        assert page.status_code == 404 and "Pass not found" in page.text


async def test_input_the_body_limit_holds_on_every_route(harness: Harness) -> None:
    """XRPC and the broker webhook read their bodies under the limit; the web forms read none, and
    are refused all the same when a body over the limit is declared."""
    body = b"{" + b" " * (harness.settings.max_body_bytes + 1) + b"}"
    for path in (f"/xrpc/{NS}createTicketHold", "/webhooks/atm", "/checkout/x/pay", "/checkout/x/cancel"):
        answer = await harness.app.http.post(
            harness.server.url + path, content=body, headers={"content-type": "application/json"}
        )
        refused(answer, 413, "PayloadTooLarge")

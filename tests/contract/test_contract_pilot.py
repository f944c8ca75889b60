"""The pilot event app's purchase flow end to end over real HTTP, against the built-in dev payments:
discovery through ``listPublicConfig``, the organizer's payout readiness and recipient approval,
availability, a guest's and a buyer's checkout, the payment status polled until ``completed``, and
the buyer's tickets. The pilot reaches this self-hosted server with its own audience, beside the
SDK's default one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Harness, running_harness
from support.contract import TICKET_SUMMARY, TIER_NULLS, buyer_assertion, no_nulls, poll, shape
from support.pds import ORGANIZER, ORGANIZER_HANDLE, ORGANIZER_PASSWORD, LocalPds, calendar_event, uri_of
from support.serve_process import tickets_command
from support.server import SERVICE_DID, AppClient

NS = "tickets.atmosphere."
STATUS = "network.attested.payment.status"
PAYOUT = "money.atmosphere.actor.getPayoutStatus"
APPROVAL = "money.atmosphere.app.requestRecipientApproval"
CONFIG = "money.atmosphere.app.getConfig"
ASSERT_PAYER = "money.atmosphere.payment.assertPayer"
PILOT_AUDIENCE = f"{SERVICE_DID}#AtmTickets"
PAYMENT = {
    "id": str,
    "amount": int,
    "currency": str,
    "status": str,
    "paymentType": str,
    "recipientDid": str,
    "appDid": str,
    "createdAt": str,
}


@contextlib.asynccontextmanager
async def pilot_server(database_url: str, folder: Path, **overrides: Any) -> AsyncIterator[Harness]:
    audiences = f"{SERVICE_DID}#AttestedNetwork,{PILOT_AUDIENCE}"
    async with running_harness(database_url, folder, service_audience=audiences, **overrides) as h:
        yield h


async def pilot(h: Harness, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One call the way the pilot makes it: signed for this server's own audience."""
    nsid = method if "." in method else NS + method
    app: AppClient = h.app
    return await app.ok(method, body, token=app.identity.token(nsid, aud=PILOT_AUDIENCE))


async def published_event(h: Harness, pds: LocalPds) -> dict[str, Any]:
    """An organizer's calendar event, ticketed (with a tier) and published to their repository."""
    pds.put(ORGANIZER, "community.lexicon.calendar.event", "3kpilot000001", calendar_event("Pilot night"))
    event: dict[str, Any] = (
        await pilot(
            h,
            "createTicketEvent",
            {"organizerDid": ORGANIZER, "event": {"uri": uri_of("3kpilot000001")}, "status": "active"},
        )
    )["event"]
    await pilot(
        h,
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "title": "General",
            "currency": "usd",
            "unitAmount": 1500,
            "quantityTotal": 50,
            **TIER_NULLS,
        },
    )
    login = ("organizer", "login", "--did", ORGANIZER, "--identifier", ORGANIZER_HANDLE, "--password-stdin")
    assert (await tickets_command(h.settings, *login, stdin=ORGANIZER_PASSWORD + "\n"))[0] == 0
    code, _, err = await tickets_command(h.settings, "publish", "--event", event["id"])
    assert code == 0, err
    return event


async def checkout(h: Harness, body: dict[str, Any]) -> dict[str, Any]:
    """A hold, then the pilot polls its payment status while the buyer pays at the dev checkout."""
    hold = await pilot(h, "createTicketHold", body)
    pending = await pilot(h, STATUS, {"token": hold["token"]})
    assert pending == {"token": hold["token"], "status": "pending"}
    async with httpx.AsyncClient(base_url=h.server.url) as browser:
        paid = await browser.post(f"/checkout/{hold['token']}/pay")
        assert paid.status_code in (200, 303), paid.text

    async def completed() -> dict[str, Any] | None:
        answer = await pilot(h, STATUS, {"token": hold["token"]})
        return answer if answer["status"] == "completed" else None

    status: dict[str, Any] = await poll(completed)
    shape(status, {"token": str, "status": str, "payment": dict})
    shape(status["payment"], PAYMENT, "payment")
    assert (status["payment"]["amount"], status["payment"]["currency"]) == (hold["amountCents"], "usd")
    assert status["payment"]["recipientDid"] == ORGANIZER
    no_nulls(status)
    return {"hold": hold, "payment": status["payment"]}


async def test_the_pilots_purchase_flow(database_url: str, tmp_path: Path) -> None:
    async with pilot_server(database_url, tmp_path) as h:
        pds = h.start_pds()  # the organizer's account; the pilot acts for the organizer
        try:
            await _purchase_flow(h, await published_event(h, pds))
        finally:
            pds.stop()


async def _purchase_flow(h: Harness, event: dict[str, Any]) -> None:
    # Ticket discovery: no token at all.
    async with httpx.AsyncClient(base_url=h.server.url) as anyone:
        found = await anyone.get(
            f"/xrpc/{NS}listPublicConfig",
            params={
                "organizer": ORGANIZER,
                "collections": "tickets.atmosphere.ticketedEvent",
                "environment": "test",
            },
        )
    assert found.status_code == 200, found.text
    (record,) = found.json()["records"]
    shape(
        record,
        {
            "uri": str,
            "cid": str,
            "organizer": str,
            "collection": str,
            "rkey": str,
            "archived": bool,
            "event": dict,
        },
    )
    assert record["uri"] == f"at://{ORGANIZER}/tickets.atmosphere.ticketedEvent/3kpilot000001"
    assert (record["archived"], record["event"]["uri"]) == (False, event["uri"])
    shape(record["event"], {"uri": str, "cid": str}, "event")

    # The organizer's payment side, before selling.
    payout = await pilot(h, PAYOUT, {"actor": ORGANIZER})
    assert payout == {"actor": ORGANIZER, "payable": True, "status": "ready"}
    approval = await pilot(
        h, APPROVAL, {"recipientDid": ORGANIZER, "paymentTypes": ["ticket"], "feeShareBps": 250}
    )
    shape(
        approval,
        {
            "id": str,
            "status": str,
            "dashboardUrl": str,
            "onboardingUrl": str,
            "paymentTypes": list,
            "feeShareBps": int,
        },
    )
    assert (approval["status"], approval["paymentTypes"], approval["feeShareBps"]) == (
        "approved",
        ["ticket"],
        250,
    )
    assert approval["needsPaymentSetup"] is False
    async with httpx.AsyncClient(base_url=h.server.url) as organizer:
        dashboard = await organizer.get(httpx.URL(approval["dashboardUrl"]).path)
    assert dashboard.status_code == 200 and "Development payments" in dashboard.text
    config = await pilot(h, CONFIG)
    shape(config, {"appDid": str, "environment": str, "status": str, "webhook": dict, "appConfig": dict})
    assert (config["appDid"], config["environment"], config["status"]) == (
        h.app.identity.did,
        "test",
        "active",
    )
    assert config["webhook"] == {"configured": False, "paused": False, "delivery": "webhook"}
    fee = config["appConfig"]["ticketFee"]
    assert fee == {"bps": 0, "flatAmount": 0, "passToBuyer": False}
    assert config["appConfig"]["modules"] == {"tickets": True}

    available = await pilot(h, "getTicketAvailability", {"eventUri": event["uri"]})
    tier_id = available["tiers"][0]["tierId"]
    items = [{"tierId": tier_id, "quantity": 2}]

    # A guest checkout, with the organizer terms the pilot showed kept in metadata.
    guest = await checkout(
        h, {"eventUri": event["uri"], "items": items, "metadata": {"organizerTerms": "v1"}}
    )
    assert "payerDid" not in guest["payment"]
    paid = await pilot(h, "listBuyerTickets", {"paymentId": guest["payment"]["id"]})
    assert len(paid["tickets"]) == 2
    for ticket in paid["tickets"]:
        shape(ticket, TICKET_SUMMARY, "ticket")
        assert (ticket["paymentId"], ticket["eventUri"]) == (guest["payment"]["id"], event["uri"])

    # A signed-in buyer: the pilot mints the buyer's assertion of a paid hold for the payment side.
    buyer = h.identity("did:plc:pilotbuyer0000000000000a")
    bought = await checkout(
        h,
        {
            "eventId": event["id"],
            "items": [{"tierId": tier_id, "quantity": 1}],
            "buyerDid": buyer.did,
            "buyerAssertionJwt": buyer_assertion(buyer, ASSERT_PAYER),
        },
    )
    assert bought["payment"]["payerDid"] == buyer.did
    mine = await pilot(h, "listBuyerTickets", {"buyerDid": buyer.did})
    (ticket,) = mine["tickets"]
    assert shape(ticket, TICKET_SUMMARY, "ticket")["paymentId"] == bought["payment"]["id"]

    # A checkout the buyer abandons fails; a token nobody issued is not found.
    left = await pilot(h, "createTicketHold", {"eventId": event["id"], "items": items})
    await pilot(h, "releaseTicketHold", {"holdId": left["holdId"]})
    assert (await pilot(h, STATUS, {"token": left["token"]}))["status"] == "failed"
    unknown = await h.app.call(STATUS, {"token": "chk_nobody"})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "PaymentNotFound")

    # Archived events leave discovery.
    await pilot(h, "updateTicketEvent", {"eventId": event["id"], "status": "archived"})
    async with httpx.AsyncClient(base_url=h.server.url) as anyone:
        gone = await anyone.get(
            f"/xrpc/{NS}listPublicConfig", params={"organizer": ORGANIZER, "environment": "test"}
        )
    assert gone.json() == {"records": []}


async def test_a_checkout_that_runs_out_is_expired(database_url: str, tmp_path: Path) -> None:
    async with pilot_server(database_url, tmp_path, hold_ttl_seconds=1) as h:
        h.app.acts_for[ORGANIZER] = h.identity(ORGANIZER)  # the pilot's organizer, without a PDS
        event = (
            await pilot(
                h,
                "createTicketEvent",
                {
                    "organizerDid": ORGANIZER,
                    "event": {"uri": uri_of("3kpilot000002"), "title": "Late night"},
                    "status": "active",
                },
            )
        )["event"]
        tier = await pilot(
            h,
            "createTicketTier",
            {
                "organizerDid": ORGANIZER,
                "event": {"uri": event["uri"]},
                "title": "General",
                "currency": "usd",
                "unitAmount": 900,
                "quantityTotal": 5,
            },
        )
        hold = await pilot(h, "createTicketHold", {"items": [{"tierId": tier["tier"]["id"], "quantity": 1}]})

        async def expired() -> bool:
            status: str = (await pilot(h, STATUS, {"token": hold["token"]}))["status"]
            return status == "expired"

        await poll(expired)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        (STATUS, {"token": "chk_any"}),
        (PAYOUT, {"actor": ORGANIZER}),
        (APPROVAL, {"recipientDid": ORGANIZER, "paymentTypes": ["ticket"]}),
        (CONFIG, {}),
    ],
)
async def test_with_a_real_broker_the_payment_side_names_it(
    database_url: str, tmp_path: Path, method: str, body: dict[str, Any]
) -> None:
    async with running_harness(database_url, tmp_path, broker_url="https://broker.example") as h:
        answer = await h.app.call(method, body)
    assert answer.status_code == 421
    error = answer.json()
    assert error["error"] == "PaymentMethodAtBroker"
    assert "https://broker.example" in error["message"]

"""Buyer assertions: each serves once, for any app; each is bound to its method and audience; the
pilot app's paid holds carry one minted for ``money.atmosphere.payment.assertPayer``. SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from conftest import Harness
from support.catalog import ORGANIZER, active_event
from support.consent import refused, tier_body

NS = "tickets.atmosphere."
BUYER = "did:plc:consentbuyer0000000000000"
ASSERT_PAYER = "money.atmosphere.payment.assertPayer"


async def tier(h: Harness, unit_amount: int) -> str:
    event = await active_event(h.app)
    made = await h.app.ok("createTicketTier", tier_body(ORGANIZER, event["uri"], unit_amount=unit_amount))
    tier_id: str = made["tier"]["id"]
    return tier_id


def order(tier_id: str, token: str) -> dict[str, Any]:
    return {"items": [{"tierId": tier_id, "quantity": 1}], "buyerDid": BUYER, "buyerAssertionJwt": token}


async def test_a_buyer_assertion_serves_once_for_every_app(harness: Harness) -> None:
    buyer = harness.identity(BUYER)
    other = await harness.client("did:web:other-shop.example")
    free, paid = await tier(harness, 0), await tier(harness, 1500)
    token = buyer.token(NS + "claimFreeTicket")
    await harness.app.ok("claimFreeTicket", order(free, token))
    again = await harness.app.call("claimFreeTicket", order(free, token))
    refused(again, 401, "UserDidMismatch")
    assert "already used" in again.json()["message"]
    refused(await other.call("claimFreeTicket", order(free, token)), 401, "UserDidMismatch")
    hold_token = buyer.token(NS + "createTicketHold")
    await harness.app.ok("createTicketHold", order(paid, hold_token))
    refused(await harness.app.call("createTicketHold", order(paid, hold_token)), 401, "UserDidMismatch")
    refused(await other.call("createTicketHold", order(paid, hold_token)), 401, "UserDidMismatch")
    (claimed,) = (await harness.app.ok("listBuyerTickets", {"buyerDid": BUYER}))["tickets"]
    assert claimed["tierId"] == free
    await other.aclose()


async def test_the_pilot_apps_payer_assertion_opens_a_paid_hold(harness: Harness) -> None:
    buyer = harness.identity(BUYER)
    free, paid = await tier(harness, 0), await tier(harness, 1500)
    hold = await harness.app.ok("createTicketHold", order(paid, buyer.token(ASSERT_PAYER)))
    assert hold["amountCents"] == 1500
    # Bound to its method and audience: the payer assertion claims nothing free, and no other
    # method's or audience's assertion opens a hold.
    refused(
        await harness.app.call("claimFreeTicket", order(free, buyer.token(ASSERT_PAYER))),
        401,
        "UserDidMismatch",
    )
    for token in (
        buyer.token(NS + "claimFreeTicket"),
        buyer.token(ASSERT_PAYER, aud="did:web:elsewhere.example#AttestedNetwork"),
    ):
        refused(await harness.app.call("createTicketHold", order(paid, token)), 401, "UserDidMismatch")

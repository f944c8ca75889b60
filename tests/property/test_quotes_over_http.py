"""End to end over real HTTP: for random prices, quantities, app fees and discounts, the quote of
``previewTicketOrder`` is exactly what the hold for the same order charges, every amount is a
non-negative integer, and both follow the pricing rules (``server.domain.offers.pricing``)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from conftest import APP_DID, start_harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.catalog import ORGANIZER, active_event
from support.server import AppClient, set_fees

from server.domain.offers.pricing import Fees, Line, Terms, price

_codes = itertools.count(1)

orders = st.fixed_dictionaries(
    {
        "unit_amount": st.one_of(st.just(0), st.integers(1, 2_000_000)),
        "quantity": st.integers(1, 50),
        "fees": st.builds(
            Fees, bps=st.integers(0, 10_000), flat=st.integers(0, 5_000), to_buyer=st.booleans()
        ),
        "discount": st.one_of(
            st.none(),
            st.builds(dict, discountPercent=st.integers(0, 100)),
            st.builds(
                dict,
                discountAmount=st.builds(dict, amount=st.integers(0, 3_000_000), currency=st.just("eur")),
            ),
        ),
    }
)


async def one_order(
    client: AppClient, database_url: str, event: dict[str, Any], order: dict[str, Any]
) -> None:
    await set_fees(database_url, APP_DID, order["fees"])
    created = await client.ok(
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "title": "Any",
            "currency": "eur",
            "unitAmount": order["unit_amount"],
            "quantityTotal": 50,
            "maxPerOrder": 50,
        },
    )
    tier_id = created["tier"]["id"]
    body: dict[str, Any] = {"tierId": tier_id, "quantity": order["quantity"]}
    terms = None
    if order["discount"] is not None:
        code = f"CODE{next(_codes)}"
        await client.ok(
            "createOffer",
            {"eventId": event["id"], "name": "Any", "kind": "discount", "code": code, **order["discount"]},
        )
        body["offerCode"] = code
        amount = order["discount"].get("discountAmount")
        terms = Terms(percent=order["discount"].get("discountPercent"), amount=amount and amount["amount"])
    quote = await client.ok("previewTicketOrder", body)
    offer = {"offerCode": body["offerCode"]} if "offerCode" in body else {}
    hold = await client.ok(
        "createTicketHold", {"items": [{"tierId": tier_id, "quantity": order["quantity"]}], **offer}
    )
    amounts = [quote[k] for k in ("subtotalAmount", "discountAmount", "buyerFeeAmount", "totalAmount")]
    assert all(isinstance(a, int) and a >= 0 for a in amounts), quote
    assert hold["amountCents"] == quote["totalAmount"]
    for part in ("subtotalAmount", "discountAmount", "buyerFeeAmount"):
        assert hold[part] == quote[part], part
    expected = price([Line(tier_id, order["quantity"], order["unit_amount"])], terms, order["fees"])
    assert (
        quote["subtotalAmount"],
        quote["discountAmount"],
        quote["buyerFeeAmount"],
        quote["totalAmount"],
    ) == (
        expected.subtotal,
        expected.discount,
        expected.buyer_fee,
        expected.total,
    )


def test_the_preview_is_what_the_hold_charges(database_url: str, tmp_path: Path) -> None:
    harness = asyncio.run(start_harness(database_url, tmp_path))
    try:
        event = asyncio.run(_event(harness.server.url, harness.app))

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(orders)
        def check(order: dict[str, Any]) -> None:
            asyncio.run(_run(harness.server.url, harness.app, database_url, event, order))

        check()
    finally:
        harness.server.stop()


async def _event(url: str, app: AppClient) -> dict[str, Any]:
    client = AppClient(url, app.identity, acts_for=app.acts_for)
    try:
        return await active_event(client)
    finally:
        await client.aclose()


async def _run(
    url: str, app: AppClient, database_url: str, event: dict[str, Any], order: dict[str, Any]
) -> None:
    client = AppClient(url, app.identity, acts_for=app.acts_for)  # one per event loop
    try:
        await one_order(client, database_url, event, order)
    finally:
        await client.aclose()

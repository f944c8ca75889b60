"""End to end over real HTTP: for random tiers, quantities, offer codes and app fees, the total the
hosted event page shows is what ``previewTicketOrder`` quotes (for one tier) and what the hold its
"Buy" takes charges, by the one pricing function."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path
from typing import Any

from conftest import APP_DID, start_harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.catalog import ORGANIZER, active_event
from support.payments import rows
from support.server import AppClient, set_fees
from support.storefront import event_path, served_at_its_own_url

from server.db.models import Hold
from server.domain.offers.pricing import Fees, Line, Terms, price
from server.settings import Settings

_codes = itertools.count(1)

orders = st.fixed_dictionaries(
    {
        "lines": st.lists(st.tuples(st.integers(1, 500_000), st.integers(1, 10)), min_size=1, max_size=3),
        "fees": st.builds(Fees, bps=st.integers(0, 2_000), flat=st.integers(0, 500), to_buyer=st.booleans()),
        "discount": st.one_of(
            st.none(),
            st.builds(dict, discountPercent=st.integers(1, 100)),
            st.builds(
                dict, discountAmount=st.builds(dict, amount=st.integers(1, 600_000), currency=st.just("eur"))
            ),
        ),
        "scoped": st.booleans(),
    }
)


async def one_order(client: AppClient, url: str, app_settings: Settings, order: dict[str, Any]) -> None:
    await set_fees(app_settings.resolved_database_url, APP_DID, order["fees"])
    event = await active_event(client)
    tiers = []
    for unit_amount, _ in order["lines"]:
        body = {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "title": "Any",
            "currency": "eur",
            "unitAmount": unit_amount,
            "quantityTotal": 100,
            "maxPerOrder": 10,
        }
        tiers.append((await client.ok("createTicketTier", body))["tier"]["id"])
    form = {f"qty-{tier}": str(q) for tier, (_, q) in zip(tiers, order["lines"], strict=True)}
    terms = None
    if order["discount"] is not None:
        code = f"PAGE{next(_codes)}"
        scope = {"tierIds": tiers[:1]} if order["scoped"] else {}
        await client.ok(
            "createOffer",
            {
                "eventId": event["id"],
                "name": "Any",
                "kind": "discount",
                "code": code,
                **order["discount"],
                **scope,
            },
        )
        form["code"] = code
        amount = order["discount"].get("discountAmount")
        terms = Terms(
            percent=order["discount"].get("discountPercent"),
            amount=amount and amount["amount"],
            tier_ids=frozenset(tiers[:1]) if order["scoped"] else None,
        )
    page_url = url + event_path(event["uri"])
    shown = await client.http.post(page_url, data={**form, "action": "quote"})
    assert shown.status_code == 200, shown.text
    total = int(re.findall(r'data-total="(\d+)"', shown.text)[0])

    lines = [Line(t, q, a) for t, (a, q) in zip(tiers, order["lines"], strict=True)]
    assert total == price(lines, terms, order["fees"]).total
    if len(tiers) == 1:
        preview = {"tierId": tiers[0], "quantity": order["lines"][0][1]}
        if "code" in form:
            preview["offerCode"] = form["code"]
        assert (await client.ok("previewTicketOrder", preview))["totalAmount"] == total

    bought = await client.http.post(page_url, data={**form, "action": "buy", "email": "buyer@example.org"})
    assert bought.status_code == 303, bought.text
    token = bought.headers["location"].rsplit("/", 1)[-1]
    (hold,) = await rows(app_settings, Hold, Hold.token == token)
    assert hold.amount == total


def test_the_page_total_is_the_preview_and_the_hold(database_url: str, tmp_path: Path) -> None:
    harness = asyncio.run(start_harness(database_url, tmp_path))
    served_at_its_own_url(harness.server)
    try:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(orders)
        def check(order: dict[str, Any]) -> None:
            asyncio.run(_run(harness.server.url, harness.app, harness.settings, order))

        check()
    finally:
        harness.server.stop()


async def _run(url: str, app: AppClient, app_settings: Settings, order: dict[str, Any]) -> None:
    client = AppClient(url, app.identity, acts_for=app.acts_for)  # one per event loop
    try:
        await one_order(client, url, app_settings, order)
    finally:
        await client.aclose()

"""The hosted event page over real HTTP: what it lists, the total it shows, "Buy" through the dev
checkout and back, the pass page and its calendar entry, and the policy every page carries."""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import Harness
from sqlalchemy import update
from support.payments import rows
from support.storefront import OFFER_CODE, outcome, pass_links, served_at_its_own_url, storefront

from server.db.engine import Database
from server.db.models import Hold

pytestmark = pytest.mark.usefixtures("database_url")


def _csp(response: httpx.Response) -> str:
    policy: str = response.headers.get("content-security-policy", "")
    return policy


async def _one_general_checkout(harness: Harness) -> tuple[str, dict[str, str], str]:
    """The page's URL, the form that buys one General ticket, and the checkout that form opened."""
    served_at_its_own_url(harness.server)
    shop = await storefront(harness.app)
    url = harness.server.url + shop.path
    form = {f"qty-{shop.tiers['General']}": "1", "email": "guest@example.org", "action": "buy"}
    checkout = (await harness.app.http.post(url, data=form)).headers["location"]
    return url, form, checkout


async def _a_bought_pass(harness: Harness) -> tuple[str, str]:
    """One General ticket bought and paid: its pass link and its ticket id."""
    _url, _form, checkout = await _one_general_checkout(harness)
    back = await harness.app.http.get((await harness.app.http.post(checkout + "/pay")).headers["location"])
    (link,) = pass_links(back.text)
    return link, link.split("/passes/", 1)[1].split("?", 1)[0]


async def test_the_page_lists_public_tiers_with_their_state(harness: Harness) -> None:
    shop = await storefront(harness.app)
    page = await harness.app.http.get(harness.server.url + shop.path)
    assert page.status_code == 200
    text = page.text
    assert "Harbour Lights" in text and "(Europe/Paris)" in text and "21:00" in text
    assert "25.00 EUR" in text and "On sale · 50 left" in text
    assert "Sold out" in text
    assert "On sale from Thu 01 Jan 2099, 11:00 (Europe/Paris)" in text
    assert "Crew" not in text  # hidden until a code opens it
    assert "claim it in the event's app while signed in" in text
    assert re.search(r'<select id="qty-[^"]+" name="qty-[^"]+" data-tier-quantity="[^"]+">', text)
    assert "script-src 'self'" in _csp(page) and "default-src 'none'" in _csp(page)
    assert "<style" not in text and "style=" not in text and "<script>" not in text

    opened = await harness.app.http.get(harness.server.url + shop.path, params={"code": OFFER_CODE})
    assert "Crew" in opened.text and "Early bird" in opened.text
    assert "25.00 EUR → 20.00 EUR with your code" in opened.text  # the discounted price shows
    assert "12.00 EUR → 9.60 EUR with your code" in opened.text
    assert "15.00 EUR →" not in opened.text  # the code takes nothing off Early bird
    wrong = await harness.app.http.get(harness.server.url + shop.path, params={"code": "NOPE-NOPE"})
    assert wrong.status_code == 200 and "This code cannot be used" in wrong.text and "Crew" not in wrong.text


async def test_unknown_or_archived_events_answer_a_404_page(harness: Harness) -> None:
    shop = await storefront(harness.app)
    missing = await harness.app.http.get(harness.server.url + shop.path + "x")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "default-src 'none'" in _csp(missing)
    await harness.app.ok("updateTicketEvent", {"eventId": shop.event["id"], "status": "archived"})
    gone = await harness.app.http.get(harness.server.url + shop.path)
    assert gone.status_code == 404


async def test_the_total_is_the_preview_and_buying_comes_back_issued(harness: Harness) -> None:
    served_at_its_own_url(harness.server)
    shop = await storefront(harness.app)
    general, crew = shop.tiers["General"], shop.tiers["Crew"]
    form = {"code": OFFER_CODE, f"qty-{general}": "2", f"qty-{crew}": "1", "email": "guest@example.org"}
    url = harness.server.url + shop.path
    quoted = await harness.app.http.post(url, data={**form, "action": "quote"})
    assert quoted.status_code == 200, quoted.text
    preview = await harness.app.ok(
        "previewTicketOrder", {"tierId": general, "quantity": 2, "offerCode": OFFER_CODE}
    )
    assert preview["totalAmount"] == 4_000
    total = int(re.findall(r'data-total="(\d+)"', quoted.text)[0])
    assert total == 4_000 + 960  # 20% off 2 x 25.00 and 1 x 12.00

    bought = await harness.app.http.post(url, data={**form, "action": "buy"})
    assert bought.status_code == 303
    checkout = bought.headers["location"]
    assert checkout.startswith(harness.server.url + "/checkout/chk_")
    token = checkout.rsplit("/", 1)[-1]
    (hold,) = await rows(harness.settings, Hold, Hold.token == token)
    assert (hold.amount, hold.customer_email) == (total, "guest@example.org")
    pending = await harness.app.http.get(url, params={"checkout": token})
    assert outcome(pending.text) == "pending" and 'http-equiv="refresh"' in pending.text

    paid = await harness.app.http.post(checkout + "/pay")
    assert paid.status_code == 302 and paid.headers["location"] == f"{url}?checkout={token}"
    back = await harness.app.http.get(paid.headers["location"])
    assert outcome(back.text) == "issued"
    links = pass_links(back.text)
    assert len(links) == 3
    pass_page = await harness.app.http.get(links[0])
    assert pass_page.status_code == 200 and "<svg" in pass_page.text and "Ticket number" in pass_page.text
    assert "(Europe/Paris)" in pass_page.text
    ics = await harness.app.http.get(links[0].replace("?", "/event.ics?", 1))
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in ics.text and "SUMMARY:Harbour Lights" in ics.text
    assert "DTSTART:20261231T200000Z" in ics.text


async def test_buying_needs_an_email_and_at_most_what_is_allowed(harness: Harness) -> None:
    served_at_its_own_url(harness.server)
    shop = await storefront(harness.app)
    url = harness.server.url + shop.path
    general = shop.tiers["General"]
    no_email = await harness.app.http.post(url, data={f"qty-{general}": "1", "action": "buy"})
    assert no_email.status_code == 400 and "e-mail address is needed" in no_email.text
    too_many = await harness.app.http.post(
        url, data={f"qty-{general}": "5", "action": "buy", "email": "a@example.org"}
    )
    assert too_many.status_code == 400 and "at most 4 of General" in too_many.text
    nothing = await harness.app.http.post(url, data={"action": "quote"})
    assert nothing.status_code == 400 and "choose at least one ticket" in nothing.text
    junk = await harness.app.http.post(url, data={f"qty-{general}": "-1\x00", "action": "quote"})
    assert junk.status_code == 400


async def test_a_voided_ticket_s_pass_says_so_without_a_code(harness: Harness) -> None:
    link, ticket_id = await _a_bought_pass(harness)
    await harness.app.ok("voidTicket", {"ticketId": ticket_id, "reason": "duplicate"})
    voided = await harness.app.http.get(link)
    assert voided.status_code == 410 and "This ticket was voided." in voided.text
    assert "<svg" not in voided.text and "Ticket number" in voided.text


async def test_a_transferred_ticket_s_old_pass_says_so_and_hides_the_new_holder(harness: Harness) -> None:
    link, ticket_id = await _a_bought_pass(harness)
    await harness.app.ok("transferTicket", {"ticketId": ticket_id, "attendeeName": "Grace Hopper"})
    old = await harness.app.http.get(link)
    assert old.status_code == 410 and "transferred to someone else" in old.text
    assert "<svg" not in old.text and "Grace Hopper" not in old.text
    assert (await harness.app.http.get(link.replace("?", "/event.ics?", 1))).status_code == 404
    forged = await harness.app.http.get(link.rsplit("=", 1)[0] + "=aaaa")
    assert forged.status_code == 404


async def test_a_cancelled_or_expired_checkout_comes_back_saying_so(harness: Harness) -> None:
    url, form, checkout = await _one_general_checkout(harness)
    cancelled = await harness.app.http.post(checkout + "/cancel")
    assert cancelled.status_code == 302
    back = await harness.app.http.get(cancelled.headers["location"])
    assert outcome(back.text) == "cancelled" and 'http-equiv="refresh"' not in back.text

    checkout = (await harness.app.http.post(url, data=form)).headers["location"]
    token = checkout.rsplit("/", 1)[-1]
    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await session.execute(update(Hold).where(Hold.token == token).values(expires_ms=1))
    finally:
        await db.dispose()
    lapsed = await harness.app.http.get(url, params={"checkout": token})
    assert outcome(lapsed.text) == "expired" and "Nothing was charged" in lapsed.text

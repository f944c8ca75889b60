"""The buyer's pages in a real headless Chromium: a guest buys two tickets with an offer code on the
event page, pays on the dev checkout, comes back to "issued", and the e-mail's QR codes admit at the
door; the sold-out and not-yet-on-sale tiers; a voided ticket's pass. Every page passes our
accessibility check and loads under its Content-Security-Policy without a violation. Screenshots are
kept as artifacts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import running_harness
from playwright.sync_api import Browser, Page
from support.a11y import problems
from support.browser import Chromium, keep_screenshot, new_page
from support.mailbox import qr_tokens, smtp_server, smtp_settings
from support.storefront import OFFER_CODE, Storefront, outcome, served_at_its_own_url, storefront

pytestmark = pytest.mark.slow


def _watch_policy(page: Page) -> list[str]:
    """Console reports of anything the page's policy refused."""
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return refused


def _buy_as_guest(browser: Browser, base: str, shop: Storefront, name: str) -> tuple[list[str], list[str]]:
    """Drive the browser through the purchase; answers (pass links shown, policy refusals)."""
    with new_page(browser, viewport={"width": 390, "height": 844}) as page:  # a phone
        refused = _watch_policy(page)
        page.goto(base + shop.path)
        assert page.locator(".state.sold-out").all_inner_texts() == ["Sold out"]
        assert page.locator(".state.soon").inner_text().startswith("On sale from Thu 01 Jan 2099")
        assert problems(page) == []
        keep_screenshot(page, f"{name}-event")
        page.fill("#code", OFFER_CODE)
        page.click("text=Apply code")
        assert page.locator("h3", has_text="Crew").count() == 1
        page.select_option(f"#qty-{shop.tiers['General']}", "2")
        page.fill("#email", "guest@example.org")
        page.click("text=Show total")
        assert page.locator("[data-total]").inner_text() == "40.00 EUR"  # 20% off 2 x 25.00
        keep_screenshot(page, f"{name}-total")
        page.click("button.buy")
        page.wait_for_url("**/checkout/chk_*")
        keep_screenshot(page, f"{name}-checkout")
        page.click("button.pay")
        page.wait_for_selector("[data-outcome=issued]")
        keep_screenshot(page, f"{name}-issued")
        links = [a.get_attribute("href") or "" for a in page.locator("[data-outcome=issued] a").all()]
        page.goto(links[0])
        assert page.locator(".qr svg").count() == 1
        assert problems(page) == []
        keep_screenshot(page, f"{name}-pass")
    return links, refused


def _voided_pass(browser: Browser, link: str, name: str) -> str:
    with new_page(browser) as page:
        page.goto(link)
        keep_screenshot(page, f"{name}-voided-pass")
        assert problems(page) == []
        return page.locator("main").inner_text()


@pytest.mark.usefixtures("database_url")
async def test_a_guest_buys_with_a_code_and_the_mailed_passes_admit(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest, chromium: Chromium
) -> None:
    name = request.node.name
    with smtp_server() as box:
        async with running_harness(database_url, tmp_path, **smtp_settings(box)) as h:
            served_at_its_own_url(h.server)
            shop = await storefront(h.app)
            links, refused = await chromium.run(_buy_as_guest, h.server.url, shop, name)
            assert len(links) == 2 and refused == []

            (message,) = await asyncio.to_thread(box.wait_for, 1)
            tokens = qr_tokens(message)
            assert len(tokens) == 2
            for token in tokens:
                assert (await h.app.ok("checkInTicket", {"ticketToken": token}))["status"] == "checked_in"

            ticket_id = links[0].split("/passes/", 1)[1].split("?", 1)[0]
            await h.app.ok("voidTicket", {"ticketId": ticket_id})
            said = await chromium.run(_voided_pass, links[0], name)
            assert "This ticket was voided." in said


def _not_found_page(browser: Browser, url: str, name: str) -> tuple[int, str]:
    with new_page(browser) as page:
        response = page.goto(url)
        keep_screenshot(page, f"{name}-404")
        assert response is not None
        return response.status, page.locator("h1").inner_text()


async def test_an_unknown_event_is_a_404_page(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest, chromium: Chromium
) -> None:
    async with running_harness(database_url, tmp_path) as h:
        shop = await storefront(h.app)
        status, heading = await chromium.run(
            _not_found_page, h.server.url + shop.path + "-nope", request.node.name
        )
        assert (status, heading) == (404, "Event not found")
        assert outcome(heading) is None


BAD_PAGE = """<!doctype html><html><head><title>Bad</title></head><body>
<h2>No h1 first</h2><h4>skipped a level</h4>
<p style="color:#bbb;background:#fff">pale text</p>
<input name="unlabelled"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<div role="img"></div></body></html>"""


def _bad_page_findings(browser: Browser) -> list[str]:
    with new_page(browser) as page:
        page.set_content(BAD_PAGE)
        return problems(page)


async def test_the_accessibility_check_finds_what_it_looks_for(chromium: Chromium) -> None:
    found = "\n".join(await chromium.run(_bad_page_findings))
    for expected in [
        "html without lang",
        "control without label: unlabelled",
        "img without alt",
        "role=img without aria-label",
        "the first heading is not h1",
        "heading skips to h4",
        'contrast 1.92 < 4.5: P "pale text"',
    ]:
        assert expected in found

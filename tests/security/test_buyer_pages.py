"""Attacks on the buyer's pages: markup in an event's title, header injection through the e-mail
field, guessing offer codes on the page, reading files through the static route, pages without
their policy, and a hold forged onto another event's checkout return."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Harness, running_harness
from support.payments import rows
from support.storefront import served_at_its_own_url, storefront

from server.db.models import Hold, MailMessage

pytestmark = pytest.mark.usefixtures("database_url")


async def test_markup_in_the_event_title_is_text(harness: Harness) -> None:
    shop = await storefront(harness.app)
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    await harness.app.ok("updateTicketEvent", {"eventId": shop.event["id"], "title": evil})
    page = await harness.app.http.get(harness.server.url + shop.path)
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


@pytest.mark.parametrize(
    "address",
    [
        "guest@example.org\r\nBcc: victim@example.org",
        "guest@example.org\nSubject: free",
        "no-at-sign.example.org",
        "a@b",
        "x" * 320 + "@example.org",
    ],
)
async def test_hostile_e_mail_addresses_take_no_hold(harness: Harness, address: str) -> None:
    served_at_its_own_url(harness.server)
    shop = await storefront(harness.app)
    before = len(await rows(harness.settings, Hold))
    answer = await harness.app.http.post(
        harness.server.url + shop.path,
        data={f"qty-{shop.tiers['General']}": "1", "action": "buy", "email": address},
    )
    assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]
    assert len(await rows(harness.settings, Hold)) == before
    assert await rows(harness.settings, MailMessage) == []


async def test_guessing_codes_on_the_page_is_limited(database_url: str, tmp_path: Path) -> None:
    async with running_harness(database_url, tmp_path, offer_code_failures_per_buyer=3) as h:
        shop = await storefront(h.app)
        url = h.server.url + shop.path
        for n in range(3):
            wrong = await h.app.http.get(url, params={"code": f"GUESS-{n:04d}"})
            assert "This code cannot be used" in wrong.text
        limited = await h.app.http.get(url, params={"code": "FRIENDS-20"})  # right code, too late
        assert "Too many wrong codes" in limited.text and "Crew" not in limited.text


@pytest.mark.parametrize(
    "path", ["/static/..%2F..%2Fsettings.py", "/static/%2Fetc%2Fpasswd", "/static/pages.py", "/static/"]
)
async def test_the_static_route_serves_only_its_own_files(harness: Harness, path: str) -> None:
    answer = await harness.app.http.get(harness.server.url + path)
    assert answer.status_code == 404 and "Settings" not in answer.text and "root:" not in answer.text
    own = await harness.app.http.get(harness.server.url + "/static/tickets.css")
    assert own.status_code == 200 and own.headers["content-type"].startswith("text/css")


async def test_every_page_carries_the_policy(harness: Harness) -> None:
    served_at_its_own_url(harness.server)
    shop = await storefront(harness.app)
    form = {f"qty-{shop.tiers['General']}": "1", "action": "buy", "email": "guest@example.org"}
    checkout = (await harness.app.http.post(harness.server.url + shop.path, data=form)).headers["location"]
    paid = await harness.app.http.post(checkout + "/pay")
    back = await harness.app.http.get(paid.headers["location"])
    link = re.findall(r'href="([^"]*/passes/[^"]+)"', back.text)[0].replace("&amp;", "&")
    for url in [
        harness.server.url + shop.path,
        checkout,
        paid.headers["location"],
        link,
        harness.server.url + "/passes/ticket_nope?k=x",
        harness.server.url + "/dev-payments",
        harness.server.url + "/static/event.js",
    ]:
        answer = await harness.app.http.get(url)
        policy = answer.headers.get("content-security-policy", "")
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, url
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        for name, sources in directives.items():  # only forms may lead elsewhere (the app's return)
            allowed = {"'self'", "'none'", "data:"} | (
                {"http:", "https:"} if name == "form-action" else set()
            )
            assert {
                s if ":" not in s or s == "data:" else s.split(":")[0] + ":" for s in sources.split()
            } <= allowed
        assert answer.headers.get("x-content-type-options") == "nosniff", url


async def test_a_checkout_token_of_another_event_shows_nothing(harness: Harness) -> None:
    served_at_its_own_url(harness.server)
    first, second = await storefront(harness.app), await storefront(harness.app)
    form = {f"qty-{first.tiers['General']}": "1", "action": "buy", "email": "guest@example.org"}
    checkout = (await harness.app.http.post(harness.server.url + first.path, data=form)).headers["location"]
    await harness.app.http.post(checkout + "/pay")
    token = checkout.rsplit("/", 1)[-1]
    elsewhere = await harness.app.http.get(harness.server.url + second.path, params={"checkout": token})
    assert 'data-outcome="unknown"' in elsewhere.text and "/passes/" not in elsewhere.text

"""The organizer's console in a real headless Chromium, on a phone-sized screen: sign in with a
one-time link, watch the dashboard's "inside" count follow a desk's scan within 2 s (server-sent
events), resolve a conflict two offline desks made, download the XLSX door list and open it, revoke a
desk and see it refused. Every page is kept as a screenshot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from conftest import Harness
from playwright.sync_api import Browser, ViewportSize
from support.browser import Chromium, keep_screenshot, new_page
from support.catalog import ORGANIZER
from support.console import console_link
from support.doors import NS, Desk, enrolled_desk, record, sold

pytestmark = pytest.mark.slow
PHONE: ViewportSize = {"width": 390, "height": 844}


def desk_call(
    base_url: str, credential: str, method: str, body: dict[str, Any], *, query: bool = False
) -> httpx.Response:
    """A desk's call from the browser's thread, where Playwright's own event loop runs."""
    url, headers = f"{base_url}/xrpc/{NS}{method}", {"authorization": f"Bearer {credential}"}
    with httpx.Client(timeout=30) as http:
        if query:
            return http.get(url, params=body, headers=headers)
        return http.post(url, json=body, headers=headers)


def scan(base_url: str, credential: str, list_id: str, ticket: dict[str, Any]) -> None:
    answer = desk_call(
        base_url,
        credential,
        "checkInTicket",
        {
            "ticketToken": ticket["passToken"],
            "checkInListId": list_id,
            "idempotencyKey": "rec_live_0001",
            "gate": "Main",
            "deviceTimeMs": int(time.time() * 1000),
            "clockOffsetMs": 0,
        },
    )
    assert answer.status_code == 200 and answer.json()["status"] == "checked_in", answer.text


def walk(
    browser: Browser,
    h: Harness,
    link: str,
    event: dict[str, Any],
    tickets: list[dict[str, Any]],
    list_id: str,
    desks: list[Desk],
    folder: Path,
) -> None:
    base_url = h.server.url
    north, south = desks
    with new_page(browser, viewport=PHONE, is_mobile=True, has_touch=True) as page:
        page.goto(link)
        keep_screenshot(page, "organizer-signin")
        page.click("#signin")
        page.wait_for_url(f"{base_url}/console")
        keep_screenshot(page, "organizer-events")

        page.click(f"a[href='/console/events/{event['id']}']")
        assert page.inner_text("#inside") == "0"
        page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
        scanned = time.monotonic()
        scan(base_url, north.credential, list_id, tickets[0])
        page.wait_for_function("document.getElementById('inside').textContent === '1'", timeout=2000)
        assert time.monotonic() - scanned < 2.0
        keep_screenshot(page, "organizer-dashboard")

        for n, desk in enumerate((north, south), start=1):
            offline = record(desk.device_id, n, list_id, tickets[1]).to_wire()
            assert (
                desk_call(base_url, desk.credential, "uploadCheckIns", {"records": [offline]}).status_code
                == 200
            )
        page.goto(f"{base_url}/console/events/{event['id']}/conflicts")
        assert page.locator(".conflict[data-status='open']").count() == 1
        keep_screenshot(page, "organizer-conflicts-open")
        page.fill("input[name='reason']", "same guest at two doors")
        page.select_option("select[name='outcome']", "admitted")
        page.click(".conflict button")
        page.wait_for_selector(".conflict[data-status='resolved']")
        assert "same guest at two doors" in page.inner_text(".conflict")
        keep_screenshot(page, "organizer-conflicts-resolved")

        page.goto(f"{base_url}/console/events/{event['id']}/exports")
        keep_screenshot(page, "organizer-exports")
        with page.expect_download() as download:
            page.click("a:text-is('XLSX')")
        saved = folder / "door-list.xlsx"
        download.value.save_as(saved)
        sheet = openpyxl.load_workbook(saved).active
        assert sheet is not None
        cells = {str(cell.value) for row in sheet.iter_rows() for cell in row}
        assert {t["ticketNumber"] for t in tickets} <= cells

        page.goto(f"{base_url}/console/events/{event['id']}/devices")
        keep_screenshot(page, "organizer-devices")
        page.click(f"tr[data-device='{south.device_id}'] button")
        page.wait_for_selector(f"tr[data-device='{south.device_id}'] td.status:text-is('revoked')")
        refused = desk_call(
            base_url, south.credential, "pullCheckIns", {"checkInListId": list_id}, query=True
        )
        assert refused.status_code == 403 and refused.json()["error"] == "DeviceRevoked"
        keep_screenshot(page, "organizer-devices-revoked")

        for name, path in [
            ("payments", "payments"),
            ("tickets", "tickets?q=Guest"),
            ("ticket", f"tickets/{tickets[0]['id']}"),
            ("deliveries", "deliveries"),
        ]:
            page.goto(f"{base_url}/console/events/{event['id']}/{path}")
            keep_screenshot(page, f"organizer-{name}")


async def test_the_door_lead_runs_the_night_from_a_phone(
    harness: Harness, tmp_path: Path, chromium: Chromium
) -> None:
    event, tickets, list_id = await sold(harness, 3)
    desks = [await enrolled_desk(harness, list_id), await enrolled_desk(harness, list_id)]
    link = await console_link(harness, ORGANIZER)
    await chromium.run(walk, harness, link, event, tickets, list_id, desks, tmp_path)

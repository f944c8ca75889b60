"""Attack tests of the organizer's console: one organizer's session sees nothing of another's
events, a sign-in link works once and not after it expires, a form without its session's CSRF token
changes nothing, and a session ends when it expires or signs out."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from conftest import Harness, running_harness
from sqlalchemy import select, update
from support.catalog import ORGANIZER
from support.console import console_link, csrf_of, signed_in
from support.doors import enrolled_desk, sold

from server.db.engine import Database
from server.db.models import ConsoleSession, Device, LedgerEntry

STRANGER = "did:plc:anotherorganizer000000000"


async def device_status(h: Harness, device_id: str) -> str:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.read() as session:
            device = await session.get(Device, device_id)
            assert device is not None
            return device.status
    finally:
        await db.dispose()


async def test_an_organizers_session_sees_nothing_of_another_organizers_event(harness: Harness) -> None:
    event, tickets, list_id = await sold(harness, 1)
    desk = await enrolled_desk(harness, list_id)
    mine, theirs, operator = (
        await signed_in(harness, ORGANIZER),
        await signed_in(harness, STRANGER),
        await signed_in(harness, None),
    )
    try:
        assert event["id"] in (await mine.get("/console/")).text
        assert event["id"] in (await operator.get("/console/")).text
        assert event["id"] not in (await theirs.get("/console/")).text
        base = f"/console/events/{event['id']}"
        for path in [
            base,
            f"{base}/live",
            f"{base}/conflicts",
            f"{base}/payments",
            f"{base}/tickets?q=Guest",
            f"{base}/tickets/{tickets[0]['id']}",
            f"{base}/devices",
            f"{base}/exports",
            f"{base}/exports/{list_id}/csv",
            f"{base}/deliveries",
        ]:
            answer = await theirs.get(path)
            assert answer.status_code == 404, path
            assert "Guest" not in answer.text and tickets[0]["ticketNumber"] not in answer.text
        # Their own valid token does not let them change another organizer's event either.
        token = csrf_of((await theirs.get("/console/")).text)
        revoked = await theirs.post(f"{base}/devices/{desk.device_id}/revoke", data={"csrf": token})
        assert revoked.status_code == 404
        voided = await theirs.post(f"{base}/tickets/{tickets[0]['id']}/void", data={"csrf": token})
        assert voided.status_code == 404
        assert await device_status(harness, desk.device_id) == "active"
        assert (await mine.get(f"{base}/tickets/{tickets[0]['id']}")).text.count(">active<") == 1
    finally:
        for client in (mine, theirs, operator):
            await client.aclose()


async def test_a_link_works_once_and_not_after_it_expires(harness: Harness) -> None:
    async with httpx.AsyncClient() as browser:
        link = await console_link(harness, ORGANIZER)
        assert (await browser.get(link)).status_code == 200  # a preview of the link spends nothing
        assert (await browser.post(link)).status_code == 303
        again = await browser.post(link)
        assert again.status_code == 403 and "already used" in again.text
        expired = await console_link(harness, ORGANIZER, expires_in_ms=-1)
        late = await httpx.AsyncClient().post(expired)
        assert late.status_code == 403 and "tickets_console" not in late.headers.get("set-cookie", "")
        forged = await browser.post(f"{harness.server.url}/console/signin/not-a-link")
        assert forged.status_code == 403


async def test_a_form_without_its_csrf_token_changes_nothing(harness: Harness) -> None:
    event, _, list_id = await sold(harness, 1)
    desk = await enrolled_desk(harness, list_id)
    client, other = await signed_in(harness, ORGANIZER), await signed_in(harness, ORGANIZER)
    try:
        revoke = f"/console/events/{event['id']}/devices/{desk.device_id}/revoke"
        assert (await client.post(revoke)).status_code == 403
        assert (await client.post(revoke, data={"csrf": "guessed"})).status_code == 403
        another_sessions = csrf_of((await other.get(f"/console/events/{event['id']}/devices")).text)
        assert (await client.post(revoke, data={"csrf": another_sessions})).status_code == 403
        assert await device_status(harness, desk.device_id) == "active"

        token = csrf_of((await client.get(f"/console/events/{event['id']}/devices")).text)
        done = await client.post(revoke, data={"csrf": token})
        assert done.status_code == 303
        assert await device_status(harness, desk.device_id) == "revoked"
        refused = await desk.call("pullCheckIns", {"checkInListId": list_id}, query=True)
        assert refused.status_code == 403 and refused.json()["error"] == "DeviceRevoked"
        db = Database(harness.settings.resolved_database_url)
        try:
            async with db.read() as session:
                logged = await session.scalar(
                    select(LedgerEntry).where(
                        LedgerEntry.subject_id == desk.device_id, LedgerEntry.action == "revoked"
                    )
                )
        finally:
            await db.dispose()
        assert logged is not None and logged.actor == f"console:{ORGANIZER}"
    finally:
        await client.aclose()
        await other.aclose()


async def test_a_session_ends_when_it_expires_or_signs_out(harness: Harness) -> None:
    client = await signed_in(harness, ORGANIZER)
    try:
        assert (await client.get("/console/")).status_code == 200
        token = csrf_of((await client.get("/console/")).text)
        assert (await client.post("/console/signout", data={"csrf": token})).status_code == 303
        assert (await client.get("/console/")).status_code == 401
    finally:
        await client.aclose()
    client = await signed_in(harness, ORGANIZER)
    try:
        db = Database(harness.settings.resolved_database_url)
        try:
            async with db.write() as session:
                await session.execute(update(ConsoleSession).values(expires_ms=int(time.time() * 1000) - 1))
        finally:
            await db.dispose()
        assert (await client.get("/console/")).status_code == 401
    finally:
        await client.aclose()
    assert (await httpx.AsyncClient().get(f"{harness.server.url}/console/")).status_code == 401


async def test_the_session_cookie_is_http_only_strict_and_secure_behind_https(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        running_harness(database_url, tmp_path, public_url="https://tickets.example") as h,
        httpx.AsyncClient() as browser,
    ):
        answer = await browser.post(await console_link(h, ORGANIZER))
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("tickets_console=")
    for attribute in ("httponly", "samesite=strict", "secure", "path=/console"):
        assert attribute in cookie, attribute


async def test_names_an_app_chose_are_text_on_every_page(harness: Harness) -> None:
    """Tier titles, attendee names and gates come from apps and desks: the console (its SVG charts
    included) shows them as text, never as markup."""
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    event, tickets, _ = await sold(harness, 1)
    await harness.app.ok(
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "title": hostile,
            "currency": "eur",
            "unitAmount": 100,
            "quantityTotal": 5,
        },
    )
    await harness.app.ok("transferTicket", {"ticketId": tickets[0]["id"], "attendeeName": hostile})
    client = await signed_in(harness, ORGANIZER)
    try:
        base = f"/console/events/{event['id']}"
        for path in (base, f"{base}/tickets?q=script", f"{base}/tickets/{tickets[0]['id']}"):
            page = (await client.get(path)).text
            assert "&lt;script&gt;" in page, path
            assert "<script>alert" not in page and "<img src=x" not in page, path
    finally:
        await client.aclose()

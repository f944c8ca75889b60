""" "Resend pass" on the console's ticket page: it queues the same message as ``tickets tickets
resend`` and ``resendTicketEmail`` (one ``resent`` message in the mail outbox, to the holder's
address, else the order's), names the console's user in the ledger, says on the page what
happened, and, like every console form, needs its session's CSRF token and the organizer's own
event."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Harness
from support.catalog import ORGANIZER
from support.console import csrf_of, signed_in
from support.doors import sold
from support.payments import rows

from server.db.models import LedgerEntry, MailMessage

STRANGER = "did:plc:anotherorganizer000000000"
BUYER = "buyer@example.org"


async def resent(h: Harness) -> list[MailMessage]:
    return await rows(h.settings, MailMessage, MailMessage.kind == "resent")


async def resend_entries(h: Harness, ticket_id: str) -> list[LedgerEntry]:
    return await rows(
        h.settings, LedgerEntry, LedgerEntry.subject_id == ticket_id, LedgerEntry.action == "resent"
    )


async def press_resend(client: httpx.AsyncClient, event: dict[str, Any], ticket_id: str) -> httpx.Response:
    """Open the ticket's page and press "Resend pass" with the page's token: answers the page the
    console goes back to."""
    page = f"/console/events/{event['id']}/tickets/{ticket_id}"
    opened = (await client.get(page)).text
    assert "Resend pass" in opened and f"{page}/resend" in opened
    pressed = await client.post(f"{page}/resend", data={"csrf": csrf_of(opened)})
    assert pressed.status_code == 303, pressed.text
    assert pressed.headers["location"].startswith(f"{page}?done=")
    return await client.get(pressed.headers["location"])


async def test_resend_queues_one_message_to_the_buyer_and_names_the_console_user(
    harness: Harness,
) -> None:
    event, tickets, _ = await sold(harness, 2, customer_email=BUYER)
    issued = await rows(harness.settings, MailMessage)
    assert [(m.kind, m.recipient) for m in issued] == [("issued", BUYER)]
    client = await signed_in(harness, ORGANIZER)
    try:
        shown = await press_resend(client, event, tickets[0]["id"])
        assert shown.status_code == 200 and "Pass sent again" in shown.text
        (message,) = await resent(harness)
        assert message.recipient == BUYER and message.ticket_ids == [tickets[0]["id"]]
        assert message.hold_id == issued[0].hold_id and message.environment == "test"
        assert len(await rows(harness.settings, MailMessage)) == 2  # nothing else was queued
        (entry,) = await resend_entries(harness, tickets[0]["id"])
        assert entry.actor == f"console:{ORGANIZER}" and entry.event_id == event["id"]
        # The ticket itself is unchanged: still active, same generation, no new status in its history.
        assert (await client.get(f"/console/events/{event['id']}/tickets/{tickets[0]['id']}")).text.count(
            ">active<"
        ) == 1
        history = await harness.app.ok(
            "getTicketHistory", {"eventId": event["id"], "ticketId": tickets[0]["id"]}
        )
        assert [c["action"] for c in history["changes"]] == ["issued"]
    finally:
        await client.aclose()


async def test_a_transferred_ticket_goes_to_its_new_holder_and_the_operator_is_named(
    harness: Harness,
) -> None:
    event, tickets, _ = await sold(harness, 1, customer_email=BUYER)
    await harness.app.ok("transferTicket", {"ticketId": tickets[0]["id"], "attendeeEmail": "new@example.org"})
    operator = await signed_in(harness, None)
    try:
        shown = await press_resend(operator, event, tickets[0]["id"])
        assert "Pass sent again" in shown.text
        (message,) = await resent(harness)
        assert message.recipient == "new@example.org"
        (entry,) = await resend_entries(harness, tickets[0]["id"])
        assert entry.actor == "console:operator"
    finally:
        await operator.aclose()


async def test_the_page_says_why_nothing_was_sent(harness: Harness) -> None:
    event, tickets, _ = await sold(harness, 1)  # the order gave no e-mail address
    client = await signed_in(harness, ORGANIZER)
    try:
        shown = await press_resend(client, event, tickets[0]["id"])
        assert shown.status_code == 200 and "no e-mail address was given" in shown.text
        assert await resent(harness) == []

        page = f"/console/events/{event['id']}/tickets/{tickets[0]['id']}"
        opened = (await client.get(page)).text
        voided = await client.post(f"{page}/void", data={"csrf": csrf_of(opened)})
        assert voided.status_code == 303
        voided_page = (await client.get(page)).text
        assert "Resend pass" not in voided_page  # no pass to send: no button
        # A page opened before the void still carries the form: the answer says why.
        late = await client.post(f"{page}/resend", data={"csrf": csrf_of(opened)})
        assert late.headers["location"] == f"{page}?done=not-active"
        assert "no longer active" in (await client.get(late.headers["location"])).text
        assert await resent(harness) == []
        assert await resend_entries(harness, tickets[0]["id"]) == []
    finally:
        await client.aclose()


async def test_a_form_without_its_csrf_token_resends_nothing(harness: Harness) -> None:
    event, tickets, _ = await sold(harness, 1, customer_email=BUYER)
    client, other = await signed_in(harness, ORGANIZER), await signed_in(harness, ORGANIZER)
    try:
        resend = f"/console/events/{event['id']}/tickets/{tickets[0]['id']}/resend"
        assert (await client.post(resend)).status_code == 403
        assert (await client.post(resend, data={"csrf": "guessed"})).status_code == 403
        another_sessions = csrf_of((await other.get("/console/")).text)
        assert (await client.post(resend, data={"csrf": another_sessions})).status_code == 403
        assert await resent(harness) == []
        assert await resend_entries(harness, tickets[0]["id"]) == []
    finally:
        await client.aclose()
        await other.aclose()


async def test_another_organizers_session_cannot_resend(harness: Harness) -> None:
    event, tickets, _ = await sold(harness, 1, customer_email=BUYER)
    theirs = await signed_in(harness, STRANGER)
    try:
        token = csrf_of((await theirs.get("/console/")).text)  # their own, valid token
        base = f"/console/events/{event['id']}/tickets/{tickets[0]['id']}"
        refused = await theirs.post(f"{base}/resend", data={"csrf": token})
        assert refused.status_code == 404
        assert BUYER not in refused.text and tickets[0]["ticketNumber"] not in refused.text
        assert (await theirs.get(f"{base}?done=resent")).status_code == 404
        assert await resent(harness) == []
        assert await resend_entries(harness, tickets[0]["id"]) == []
    finally:
        await theirs.aclose()

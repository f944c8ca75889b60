"""E-mail to buyers over a real SMTP server: passes on issuance (text, HTML, inline QR codes that a
desk admits, the pass link, a calendar entry), notices of voids, resending, and the .eml folder
without SMTP settings."""

from __future__ import annotations

import asyncio
import os
import stat
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, running_harness
from support.mailbox import attachment, eml_files, qr_tokens, smtp_server, smtp_settings
from support.payments import rows
from support.storefront import pass_links, served_at_its_own_url, storefront

from server.cli.main import build_parser
from server.db.models import LedgerEntry, MailMessage
from server.domain.mail.worker import write_eml

pytestmark = pytest.mark.usefixtures("database_url")


async def _buy(h: Harness, quantity: int, email: str | None = "guest@example.org") -> list[str]:
    """Buy on the event page through the dev checkout; answers the pass links shown on return."""
    served_at_its_own_url(h.server)
    shop = await storefront(h.app)
    form = {f"qty-{shop.tiers['General']}": str(quantity), "action": "buy", "email": email or ""}
    checkout = (await h.app.http.post(h.server.url + shop.path, data=form)).headers["location"]
    back = await h.app.http.post(checkout + "/pay")
    return pass_links((await h.app.http.get(back.headers["location"])).text)


def _ticket_id(link: str) -> str:
    return link.split("/passes/", 1)[1].split("?", 1)[0]


async def _wait(predicate: Any) -> None:
    for _ in range(150):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_issued_tickets_are_mailed_and_their_qr_codes_admit(database_url: str, tmp_path: Path) -> None:
    with smtp_server() as box:
        async with running_harness(database_url, tmp_path, **smtp_settings(box)) as h:
            links = await _buy(h, 2)
            (message,) = await asyncio.to_thread(box.wait_for, 1)
            assert message["To"] == "guest@example.org" and "Harbour Lights" in message["Subject"]
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
            for link in links:
                assert link in text and link.replace("&", "&amp;") in html
            assert "(Europe/Paris)" in text and "Ticket number" in text
            ics = attachment(message, "text/calendar")
            assert ics is not None and "SUMMARY:Harbour Lights" in ics
            tokens = qr_tokens(message)
            assert len(tokens) == 2
            for token in tokens:
                admitted = await h.app.ok("checkInTicket", {"ticketToken": token})
                assert admitted["status"] == "checked_in"
                assert admitted["ticket"]["id"] in {_ticket_id(link) for link in links}

            await h.app.ok("voidTicket", {"ticketId": _ticket_id(links[0]), "reason": "duplicate"})
            notice = (await asyncio.to_thread(box.wait_for, 2))[1]
            assert "voided" in notice["Subject"] and qr_tokens(notice) == []

            queued = await h.app.ok("resendTicketEmail", {"ticketId": _ticket_id(links[1])})
            assert queued == {"ticketId": _ticket_id(links[1]), "queued": True}
            again = (await asyncio.to_thread(box.wait_for, 3))[2]
            assert "sent again" in again["Subject"] and len(qr_tokens(again)) == 1
            (noted,) = await rows(h.settings, LedgerEntry, LedgerEntry.action == "resent")
            assert (noted.subject_id, noted.actor) == (_ticket_id(links[1]), h.app.identity.did)
            voided = await h.app.call("resendTicketEmail", {"ticketId": _ticket_id(links[0])})
            assert (voided.status_code, voided.json()["error"]) == (409, "TicketNotActive")
            other = await h.client("did:web:other-app.test")
            foreign = await other.call("resendTicketEmail", {"ticketId": _ticket_id(links[1])})
            assert (foreign.status_code, foreign.json()["error"]) == (404, "TicketNotFound")
            await other.aclose()


async def test_a_failing_smtp_server_is_retried_and_issuance_does_not_wait(
    database_url: str, tmp_path: Path
) -> None:
    settings = {"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_starttls": False}
    async with running_harness(
        database_url, tmp_path, mail_poll_interval_seconds=0.1, mail_backoff_base_seconds=60, **settings
    ) as h:
        links = await _buy(h, 1)
        assert len(links) == 1  # issued while the mail server is down

        async def failed_once() -> bool:
            (message,) = await rows(h.settings, MailMessage)
            return bool(message.attempts >= 1)

        await _wait(failed_once)
        (message,) = await rows(h.settings, MailMessage)
        assert message.state == "pending" and message.last_error and "@" not in message.last_error
        assert message.next_attempt_ms > message.created_ms + 1_000


async def test_without_smtp_messages_are_kept_as_files(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_harness(database_url, tmp_path, mail_poll_interval_seconds=0.1) as h:
        said = f"written as .eml files to {h.settings.mail_folder}"
        assert any(said in record.getMessage() for record in caplog.records)  # at startup
        links = await _buy(h, 1)
        folder = h.settings.mail_folder

        async def written() -> bool:
            return len(eml_files(folder)) == 1

        await _wait(written)
        (message,) = eml_files(folder)
        assert len(qr_tokens(message)) == 1 and links[0] in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        (path,) = folder.glob("*.eml")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_eml_file_appears_only_whole(tmp_path: Path) -> None:
    """Whatever picks up ``*.eml`` never finds a message half written: while the message is being
    written there is no file under its name (a test once read one that was still empty)."""
    folder, seen = tmp_path / "mail", list[list[str]]()

    class Watched(EmailMessage):
        def as_bytes(self, *args: Any, **kwargs: Any) -> bytes:
            seen.append(sorted(path.name for path in folder.glob("*.eml")))
            return super().as_bytes(*args, **kwargs)

    message = Watched()
    message["Subject"] = "Your tickets"
    message.set_content("Your pass is attached.")
    path = write_eml(folder, 7, "issued", message)
    assert seen == [[]]
    assert list(folder.iterdir()) == [path] and path.read_bytes() == EmailMessage.as_bytes(message)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_no_address_no_message_and_resend_says_why(database_url: str, tmp_path: Path) -> None:
    async with running_harness(database_url, tmp_path) as h:
        served_at_its_own_url(h.server)
        shop = await storefront(h.app)
        hold = await h.app.ok(
            "createTicketHold", {"items": [{"tierId": shop.tiers["General"], "quantity": 1}]}
        )
        back = await h.app.http.post(f"{h.server.url}/checkout/{hold['token']}/pay")
        assert back.status_code == 200
        assert await rows(h.settings, MailMessage) == []
        (link,) = pass_links(back.text)
        missing = await h.app.call("resendTicketEmail", {"ticketId": _ticket_id(link)})
        assert (missing.status_code, missing.json()["error"]) == (409, "CustomerEmailMissing")


async def test_the_operator_resends_a_pass(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_harness(database_url, tmp_path, mail_poll_interval_seconds=30) as h:
        (link,) = await _buy(h, 1)
        parser = build_parser()

        def tickets(*argv: str) -> None:
            args = parser.parse_args(argv)
            args.func(args, h.settings)

        await asyncio.to_thread(tickets, "tickets", "resend", "--ticket", _ticket_id(link))
        assert f"files in {h.settings.mail_folder}" in capsys.readouterr().out
        kinds = sorted(m.kind for m in await rows(h.settings, MailMessage))
        assert kinds == ["issued", "resent"]
        (noted,) = await rows(h.settings, LedgerEntry, LedgerEntry.action == "resent")
        assert (noted.subject_id, noted.actor) == (_ticket_id(link), None)  # the operator's command
        with pytest.raises(SystemExit, match="TicketNotFound"):
            await asyncio.to_thread(tickets, "tickets", "resend", "--ticket", "ticket_nope")

"""Forged passes: a pass whose signature does not verify by a key of a list this server made, and a
pass of a ticket the caller may not see, learn nothing of the ticket from ``verifyTicket`` or
``checkInTicket`` (no number, tier, event, holder, list), whether the ticket exists or not, and
admit nobody. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from conftest import Harness
from sqlalchemy import select
from support.doors import sold

from server.db.engine import Database
from server.db.models import CheckInRecord
from sync.passes import ListSigningKey, PassPayload, PassSignature, decode_pass, encode_pass

BLANK_VERIFY = {"valid": False, "reason": "invalid", "detail": "invalid"}
BLANK_CHECK_IN = {"ok": False, "status": "not_valid", "reason": "invalid"}
UNKNOWN_TICKET = "ticket_0000000000000000000000000a"


def forgeries(token: str) -> dict[str, str]:
    """Passes of the ticket of ``token`` the server never signed: the real key id with a signature
    that does not verify, and a key of the forger's own."""
    decoded = decode_pass(token)
    real = decoded.signatures[0]
    broken = bytes([real.signature[0] ^ 1]) + real.signature[1:]
    own_key = ListSigningKey.generate()
    return {
        "bad signature": encode_pass(decoded.payload, [PassSignature(real.key_id, broken)]),
        "unknown key": encode_pass(decoded.payload, [own_key.sign(decoded.payload)]),
        "unknown ticket": encode_pass(
            PassPayload(UNKNOWN_TICKET, 0), [own_key.sign(PassPayload(UNKNOWN_TICKET, 0))]
        ),
    }


async def logged(h: Harness) -> list[CheckInRecord]:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(CheckInRecord)))
    finally:
        await db.dispose()


async def test_doors_a_forged_pass_of_a_real_ticket_learns_nothing(harness: Harness) -> None:
    _, tickets, list_id = await sold(harness, 1)
    (ticket,) = tickets
    for name, forged in forgeries(ticket["passToken"]).items():
        verified = await harness.app.ok("verifyTicket", {"ticketToken": forged})
        assert verified == BLANK_VERIFY, name
        checked = await harness.app.ok("checkInTicket", {"ticketToken": forged})
        assert checked == BLANK_CHECK_IN, name
        at_list = await harness.app.ok("verifyTicket", {"ticketToken": forged, "checkInListId": list_id})
        assert at_list == {**BLANK_VERIFY, "checkInListId": list_id}, name
        logged_at_list = await harness.app.ok(
            "checkInTicket", {"ticketToken": forged, "checkInListId": list_id}
        )
        assert set(logged_at_list) == {"ok", "status", "reason", "checkInListId", "direction", "checkInId"}, (
            name
        )
        assert (logged_at_list["status"], logged_at_list["reason"]) == ("not_valid", "invalid"), name
    # Only the scans at the named list are logged, and without the ticket.
    assert [(r.ticket_id, r.token_generation, r.decision) for r in await logged(harness)] == [
        (None, None, "refuse")
    ] * 3
    genuine = await harness.app.ok("checkInTicket", {"ticketToken": ticket["passToken"]})
    assert genuine["status"] == "checked_in" and genuine["ticket"]["ticketNumber"] == ticket["ticketNumber"]


async def test_doors_another_apps_ticket_learns_nothing(harness: Harness) -> None:
    _, tickets, _ = await sold(harness, 1)
    (ticket,) = tickets
    stranger = await harness.client("did:web:stranger.example")
    try:
        passes: dict[str, Any] = {"genuine": ticket["passToken"], **forgeries(ticket["passToken"])}
        for name, token in passes.items():
            assert await stranger.ok("verifyTicket", {"ticketToken": token}) == BLANK_VERIFY, name
            assert await stranger.ok("checkInTicket", {"ticketToken": token}) == BLANK_CHECK_IN, name
    finally:
        await stranger.aclose()
    assert await logged(harness) == []
    assert (await harness.app.ok("checkInTicket", {"ticketToken": ticket["passToken"]}))[
        "status"
    ] == "checked_in"

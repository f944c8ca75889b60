"""``tickets organizer consents|revoke``: the operator lists an organizer's consents and revokes
one; the app then changes none of the organizer's events."""

from __future__ import annotations

import asyncio

import pytest
from conftest import APP_DID, Harness
from support.catalog import ORGANIZER, active_event

from server.cli.main import build_parser


async def test_the_operator_lists_and_revokes_consents(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    event = await active_event(harness.app)
    parser = build_parser()

    async def tickets(*argv: str) -> list[str]:
        args = parser.parse_args(argv)
        await asyncio.to_thread(args.func, args, harness.settings)
        return capsys.readouterr().out.splitlines()

    listed = await tickets("organizer", "consents", "--did", ORGANIZER, "--environment", "test")
    assert listed[0] == "app\tstatus\tgranted\trevoked"
    assert [row.split("\t")[:2] for row in listed[1:]] == [[APP_DID, "active"]]
    assert await tickets("organizer", "consents", "--did", ORGANIZER) == ["app\tstatus\tgranted\trevoked"]

    done = await tickets("organizer", "revoke", "--did", ORGANIZER, "--app", APP_DID, "--environment", "test")
    assert "revoked" in done[0]
    listed = await tickets("organizer", "consents", "--did", ORGANIZER, "--environment", "test")
    assert [row.split("\t")[:2] for row in listed[1:]] == [[APP_DID, "revoked"]]
    refused = await harness.app.call("updateTicketEvent", {"eventId": event["id"], "status": "paused"})
    assert (refused.status_code, refused.json()["error"]) == (403, "OrganizerConsentRequired")

"""Every check-in is told to the app once: an admission a desk decided offline sends
``ticket.checked-in`` when it reaches the server, with the scan's time and ``offline: true``,
and never again however often the desk uploads it (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from conftest import APP_DID, Harness
from sqlalchemy import select, update
from support.doors import enrolled_desk, record, sold

from server.db.engine import Database
from server.db.models import App, OutboxMessage
from sync.checkin import Verdict

HOOK = "http://127.0.0.1:9/atm-events"  # nothing listens: the messages stay in the outbox


async def checked_in_messages(h: Harness) -> list[dict[str, Any]]:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.write() as session:
            if (await session.scalar(select(App.webhook_url).where(App.did == APP_DID))) != HOOK:
                await session.execute(update(App).where(App.did == APP_DID).values(webhook_url=HOOK))
            bodies = await session.scalars(
                select(OutboxMessage.body)
                .where(OutboxMessage.event_type == "ticket.checked-in")
                .order_by(OutboxMessage.id)
            )
            return [json.loads(body)["data"] for body in bodies]
    finally:
        await db.dispose()


async def test_an_offline_admission_is_told_to_the_app_once(harness: Harness) -> None:
    _, tickets, list_id = await sold(harness)
    assert await checked_in_messages(harness) == []  # and the app now has a webhook
    desk = await enrolled_desk(harness, list_id)
    await harness.app.ok("checkInTicket", {"ticketToken": tickets[0]["passToken"]})
    admitted = record(desk.device_id, 1, list_id, tickets[1])
    refused = record(desk.device_id, 2, list_id, tickets[2], decision=Verdict.REFUSE)
    wire = [admitted.with_ticket_ref().to_wire(), refused.to_wire()]
    assert [r["status"] for r in (await desk.ok("uploadCheckIns", {"records": wire}))["results"]] == [
        "stored",
        "stored",
    ]
    again = await desk.ok("uploadCheckIns", {"records": wire})
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]

    online, offline = await checked_in_messages(harness)
    assert online["ticket"]["id"] == tickets[0]["id"] and "offline" not in online["checkIn"]
    assert offline["ticket"]["id"] == tickets[1]["id"]
    entry = offline["checkIn"]
    assert entry["offline"] is True
    assert (entry["id"], entry["checkInListId"], entry["gate"]) == (admitted.record_id, list_id, "North")
    at = datetime.fromisoformat(entry["checkedInAt"].replace("Z", "+00:00"))
    assert abs(at.timestamp() * 1000 - admitted.effective_ms) < 1000  # the scan's time, not the upload's

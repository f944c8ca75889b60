"""Uploads, scans at the door and other uploads of one ticket at once, on PostgreSQL: an upload locks
its tickets' rows, as an online check-in locks its ticket's, before it reads their records to judge
their conflicts. So an admission in each of two transactions at once is never judged by neither: the
later one waits, reads the earlier one's records, and records the conflict (or, at the door, refuses
the second entry). SQLite runs one write transaction at a time, so nothing here can interleave on it.

Each race is staged by holding one desk's upload open (the server's own code, in a transaction of
the test's), and each test runs again with the lock taken away, to show that it catches the race."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from conftest import Harness
from sqlalchemy import select
from support.doors import Desk, enrolled_desk, record, sold
from support.pglocks import ANSWER_S, waiting_or_done
from support.races import without_upload_ticket_lock

from server.db.engine import Database
from server.db.models import CheckInConflict, CheckInList, CheckInRecord
from server.domain.checkin.door import record_of, rules_of
from server.domain.devices.conflicts import lock_tickets, ticket_histories
from server.domain.devices.records import resolve_tickets, store_records
from sync.merge import derive
from sync.records import Record

LOCKING = "SELECT t.id, t.ticket_ref"  # an upload's lock of its tickets
SCAN_READS = "SELECT part, found FROM tickets_functions.tickets_scan_reads_locked_"  # a scan's, together
LOCKED = pytest.mark.parametrize("locked", [True, False], ids=["locked", "negative-control"])


@asynccontextmanager
async def upload_held_open(
    database_url: str, desk: Desk, batch: Sequence[Record]
) -> AsyncIterator[list[str]]:
    """``desk``'s upload of ``batch`` as the server stores it, in a transaction that commits when the
    block ends; yields the records' statuses."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            lists = dict((await session.execute(select(CheckInList.id, CheckInList.event_id))).all())
            resolved = await resolve_tickets(session, "test", batch)
            known = [pair for pair in resolved if pair is not None]
            yield await store_records(session, "test", desk.device_id, known, lists, int(time.time() * 1000))
    finally:
        await db.dispose()


async def conflicts_of(database_url: str) -> list[tuple[str, str | None, list[list[str]]]]:
    db = Database(database_url)
    try:
        async with db.read() as session:
            rows = await session.scalars(select(CheckInConflict).order_by(CheckInConflict.id))
            return [(row.kind, row.ticket_id, row.records) for row in rows]
    finally:
        await db.dispose()


@LOCKED
async def test_two_desks_uploading_one_ticket_at_once_record_its_double_admission(
    postgres_harness: Harness, monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    h = postgres_harness
    url = h.settings.database_url
    if not locked:
        without_upload_ticket_lock(monkeypatch)
    _, (ticket,), list_id = await sold(h, 1)
    north, south = await enrolled_desk(h, list_id), await enrolled_desk(h, list_id)
    async with upload_held_open(url, north, [record(north.device_id, 1, list_id, ticket)]) as statuses:
        assert statuses == ["stored"]
        wire = record(south.device_id, 2, list_id, ticket).to_wire()
        uploading = asyncio.create_task(south.call("uploadCheckIns", {"records": [wire]}))
        waiting = await waiting_or_done(url, uploading, "the second upload to wait or end", LOCKING)
        assert uploading.done() is not locked
        if locked:
            assert any(
                statement.startswith(LOCKING) and 'COLLATE "C" FOR NO KEY UPDATE' in statement
                for statement, _ in waiting
            )
    answer = await asyncio.wait_for(uploading, ANSWER_S)
    assert answer.status_code == 200 and [r["status"] for r in answer.json()["results"]] == ["stored"]
    both = [[north.device_id, "rec_0001"], [south.device_id, "rec_0002"]]
    expected = [("double_admission", ticket["id"], both)] if locked else []
    assert await conflicts_of(url) == expected, "without the lock, neither upload sees the other's entry"


@LOCKED
async def test_a_scan_at_the_door_waits_for_an_upload_of_its_ticket(
    postgres_harness: Harness, monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    """A desk's offline entry being uploaded, and the same pass scanned online: the scan waits, and
    refuses a second entry."""
    h = postgres_harness
    url = h.settings.database_url
    if not locked:
        without_upload_ticket_lock(monkeypatch)
    _, (ticket,), list_id = await sold(h, 1)
    north = await enrolled_desk(h, list_id)
    async with upload_held_open(url, north, [record(north.device_id, 1, list_id, ticket)]):
        scanning = asyncio.create_task(h.app.call("checkInTicket", {"ticketToken": ticket["passToken"]}))
        await waiting_or_done(url, scanning, "the scan to wait or end", SCAN_READS)
        assert scanning.done() is not locked
    answer = await asyncio.wait_for(scanning, ANSWER_S)
    assert answer.status_code == 200
    assert answer.json()["status"] == ("already_checked_in" if locked else "checked_in")
    assert await conflicts_of(url) == []  # with the lock: one admission; without: two, and unjudged


async def test_desks_and_the_door_at_once_leave_the_conflicts_the_kernel_derives(
    postgres_harness: Harness,
) -> None:
    """Two desks upload entries of the same tickets, in opposite orders, while each pass is scanned
    online, all at once: every call answers (no deadlock), and every conflict the shared merge
    rules derive from the records kept is stored."""
    h = postgres_harness
    url = h.settings.database_url
    _, tickets, list_id = await sold(h, 10)
    north, south = await enrolled_desk(h, list_id), await enrolled_desk(h, list_id)
    north_batch = [record(north.device_id, n, list_id, t).to_wire() for n, t in enumerate(tickets)]
    south_batch = [record(south.device_id, n, list_id, t).to_wire() for n, t in enumerate(reversed(tickets))]
    answers = await asyncio.wait_for(
        asyncio.gather(
            north.call("uploadCheckIns", {"records": north_batch}),
            south.call("uploadCheckIns", {"records": south_batch}),
            *(h.app.call("checkInTicket", {"ticketToken": t["passToken"]}) for t in tickets),
        ),
        ANSWER_S,
    )
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
    db = Database(url)
    try:
        async with db.read() as session:
            kept = [
                record_of(row)
                for row in await session.scalars(select(CheckInRecord).where(CheckInRecord.kept))
            ]
            checklist = await session.get(CheckInList, list_id)
            assert checklist is not None
            read = await lock_tickets(session, [t["id"] for t in tickets], lock=False)
            histories = await ticket_histories(session, read)
    finally:
        await db.dispose()
    derived = derive(kept, {list_id: rules_of(checklist)}, histories)
    stored = await conflicts_of(url)
    # A conflict stays stored when a record that turns up later puts another admission first.
    missing = [
        c
        for c in derived.conflicts
        if (c.kind.value, c.ticket_id, [[k.device_id, k.record_id] for k in c.records]) not in stored
    ]
    assert missing == [], "conflicts of the final records that no transaction recorded"
    assert {c.ticket_id for c in derived.conflicts if c.kind.value == "double_admission"} == {
        t["id"] for t in tickets
    }

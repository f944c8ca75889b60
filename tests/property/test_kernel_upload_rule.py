"""The server's upload path follows the kernel's acceptance rule (:func:`sync.protocol.accept`):
the same batches of a desk's records — shuffled, duplicated, with keys reused for different
records — sent over ``uploadCheckIns`` to the real server (SQLite and PostgreSQL) and to a kernel
replica leave the same stored set, the same kept record under every key, the same door state and
counts, the same conflicts and the same ``ticket.checked-in`` messages (one per key at most)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from conftest import start_harness
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from support.doors import Desk, enrollment, sold

from server.db.engine import Database, driver_of
from server.db.models import App, CheckInConflict, CheckInList, CheckInRecord, Event, OutboxMessage
from server.domain.checkin.door import record_of, rules_of
from server.domain.checkin.lists import counts
from server.domain.checkin.service import AT_NAMED_LIST, admissions
from server.domain.devices.conflicts import lock_tickets, ticket_histories
from sync.checkin import Direction, Reason, Verdict
from sync.merge import TicketHistory, derive, sort_variants
from sync.protocol import (
    AnswerUpload,
    BundleReceived,
    Replica,
    SurfaceConflict,
    SyncConfig,
    UploadReceived,
    accept,
    step,
)
from sync.records import Record, ticket_ref

scans = st.tuples(
    st.integers(0, 3),  # record id: few, so that keys are reused for different records
    st.integers(0, 2),  # ticket
    st.sampled_from([Direction.ENTRY, Direction.EXIT]),
    st.sampled_from([Verdict.ADMIT, Verdict.REFUSE]),
    st.integers(0, 5),  # scan time, seconds
    st.sampled_from(["North", "South"]),
)


class Kernel:
    """The kernel's side: one replica serving uploads, and what ``accept`` says to tell apps."""

    def __init__(self) -> None:
        self.replica = Replica(SyncConfig(upstream=None))
        self.surfaced: set[str] = set()
        self.told: list[str] = []

    def upload(self, batch: list[Record]) -> list[str]:
        self.told += [r.record_id for r in accept(self.replica.store.log, batch).first_entries]
        self.replica, commands = step(self.replica, UploadReceived(tuple(batch)))
        self.surfaced |= {c.conflict.conflict_id for c in commands if isinstance(c, SurfaceConflict)}
        answer = commands[0]
        assert isinstance(answer, AnswerUpload)
        return [result.value for result in answer.results]


async def server_state(database_url: str, list_id: str, tickets: list[str]) -> dict[str, Any]:
    db = Database(database_url)
    try:
        async with db.read() as session:
            rows = list(await session.scalars(select(CheckInRecord).where(CheckInRecord.list_id == list_id)))
            checklist = await session.get(CheckInList, list_id)
            assert checklist is not None
            counted = await counts(session, checklist)
            event = await session.get(Event, checklist.event_id)
            assert event is not None
            driver = await driver_of(session)
            doors = {}
            for t in tickets:  # what a scan at the list reads of the ticket's admissions
                scanned = {"ticket_id": t, "environment": event.environment, "list_id": list_id}
                *_, admitted = await driver.together(AT_NAMED_LIST[False], scanned)
                doors[t] = admissions(admitted, list_id, t)
            conflicts = set(
                await session.scalars(select(CheckInConflict.id).where(CheckInConflict.list_id == list_id))
            )
            told = [
                json.loads(body)["data"]["checkIn"]["id"]
                for body in await session.scalars(
                    select(OutboxMessage.body).where(OutboxMessage.event_type == "ticket.checked-in")
                )
            ]
            read = await lock_tickets(session, tickets, lock=False)
            facts = (rules_of(checklist), await ticket_histories(session, read))
        return {
            "stored": {record_of(row).with_ticket_ref() for row in rows},
            "kept": {record_of(row).with_ticket_ref() for row in rows if row.kept},
            "counts": counted,
            "doors": doors,
            "conflicts": conflicts,
            "told": told,
            "facts": facts,
        }
    finally:
        await db.dispose()


async def one_desk(
    h: Any,
    http: httpx.AsyncClient,
    list_id: str,
    tickets: list[dict[str, Any]],
    kernel: Kernel,
    data: st.DataObject,
) -> None:
    """A new desk uploads its batches to the server and to the kernel, which both hold every
    earlier desk's records too."""
    desk = Desk(http, h.server.url)
    made = await desk.ok("enrollDevice", {"code": await enrollment(h, [list_id]), "deviceName": "Door"})
    desk.credential = made["credential"]
    drawn = data.draw(st.lists(scans, min_size=1, max_size=8), "scans")
    pool = [
        Record(
            desk.device_id,
            f"r{n}-{desk.device_id}",
            list_id,
            ticket_ref(tickets[t]["id"]),
            tickets[t]["generation"],
            direction,
            verdict,
            Reason.OK if verdict is Verdict.ADMIT else Reason.ALREADY_CHECKED_IN,
            1_700_000_000_000 + at * 1000,
            0,
            gate,
        )
        for n, t, direction, verdict, at, gate in drawn
    ]
    batches = data.draw(
        st.lists(st.lists(st.sampled_from(pool), min_size=1, max_size=6), max_size=4), "batches"
    )
    batches.append(pool)  # everything arrives in the end, some of it again
    by_ref = {ticket_ref(t["id"]): t["id"] for t in tickets}
    rules, histories = (await server_state(h.settings.resolved_database_url, list_id, list(by_ref.values())))[
        "facts"
    ]
    facts = {ref: TicketHistory(ref, histories[t].tier_id, histories[t].changes) for ref, t in by_ref.items()}
    kernel.replica, _ = step(kernel.replica, BundleReceived(1, 0, {list_id: rules}, facts))  # once: seq 1
    for batch in batches:
        answer = await desk.ok("uploadCheckIns", {"records": [r.to_wire() for r in batch]})
        assert [r["status"] for r in answer["results"]] == kernel.upload(batch)

    state = await server_state(h.settings.resolved_database_url, list_id, list(by_ref.values()))
    held = kernel.replica.store
    assert state["stored"] == set(held.log)  # every record stored, each once
    assert state["kept"] == {sort_variants(held.variants(r.key))[0] for r in held.log}
    derived = derive(held.log, {list_id: rules}, facts)
    for ref, ticket_id in by_ref.items():
        assert state["doors"][ticket_id] == list(derived.scans.get((list_id, ref), ()))
    expected = derived.count(list_id)
    counted = state["counts"]
    assert (counted.checked_in, counted.inside, counted.scans, counted.refused) == (
        expected.checked_in,
        expected.inside,
        expected.scans,
        expected.refused,
    )
    assert {c.conflict_id for c in derived.conflicts} <= kernel.surfaced
    assert state["conflicts"] == kernel.surfaced
    assert Counter(state["told"]) == Counter(kernel.told)
    assert all(n == 1 for n in Counter(state["told"]).values())  # once per key


async def with_webhook(database_url: str) -> None:
    """The app gets a webhook URL nobody listens at: its messages stay in the outbox."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            await session.execute(update(App).values(webhook_url="http://127.0.0.1:9/atm-events"))
    finally:
        await db.dispose()


def test_uploads_follow_the_kernels_acceptance_rule(database_url: str, tmp_path: Path) -> None:
    harness = asyncio.run(start_harness(database_url, tmp_path))
    try:
        _, tickets, list_id = asyncio.run(sold(harness))
        asyncio.run(with_webhook(harness.settings.resolved_database_url))
        kernel = Kernel()

        # No shrinking: the server and the kernel keep every example's records, so a smaller
        # example replayed later is not the same test.
        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
        )
        @given(st.data())
        def check(data: st.DataObject) -> None:

            async def run() -> None:
                async with httpx.AsyncClient(timeout=30) as http:
                    await one_desk(harness, http, list_id, tickets, kernel, data)

            asyncio.run(run())

        check()
    finally:
        harness.server.stop()

"""Desk sync against a real server, on each configuration (workload ``sync``).

Set-up (not timed): an event whose default check-in list holds 50,000 tickets (one paid through the
broker's webhook, which creates the list and its signing key; the rest inserted in bulk with their
change-feed rows), and a desk enrolled on the list (``create_enrollment`` + ``enrollDevice``).

* **upload**: 10,000 offline check-in records (distinct tickets) in batches of 1,000
  (``uploadCheckIns``), one after the other, timed end to end (encoding included). As a desk keeps
  them, the records name their tickets by reference (``ticketRef``), which the server resolves; the
  app receives lifecycle events (a webhook URL; delivery paused for the workload), so each admission
  is told to it in the upload's transaction. Every result must be ``stored``, and the app's outbox
  must hold exactly one ``ticket.checked-in`` per record. **re-upload**: the same batches again:
  every result ``duplicate``, the database must still hold exactly 10,000 records of the desk, and
  the app is told nothing more.
* **bundle full**: ``getScannerBundle`` for the list (the request's latency: build, sign, send);
  its bytes on the wire; it must verify and count every ticket.
* **bundle delta**: 100 tickets voided (``voidTicket``), then ``getScannerBundle`` since the full
  bundle's ``seq``; its bytes; it must carry the 100 changes.

Rows: ``requests`` is the requests made, ``ok`` the records stored (upload), duplicates
(re-upload) or tickets in the bundle; ``req/s`` is records (or tickets) per second.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, insert, select, update

from bench import load
from bench.deploy import CONFIGURATIONS, Configuration, Server, deployed
from bench.paid import issue, server_environment
from bench.results import Options, Row, RunResult, Workload, find, ratio
from bench.stage import each_configuration
from bench.xrpc import NS, BenchApp, XrpcError
from server.db.engine import Database
from server.db.models import (
    App,
    CapacityGroup,
    CheckInConflict,
    CheckInRecord,
    OutboxMessage,
    Ticket,
    TicketChange,
    Tier,
)
from server.domain.common import new_id
from server.domain.devices import service as devices
from server.domain.issuance.service import ticket_number
from server.settings import Settings
from sync.bundle import verify_bundle
from sync.checkin import Direction, Reason, Verdict
from sync.passes import ListVerifyKey
from sync.records import Record, ticket_ref

TICKETS, QUICK_TICKETS = 50_000, 10_000
RECORDS, BATCH = 10_000, 1_000
VOIDS = 100
BUNDLE_RUNS, QUICK_BUNDLE_RUNS = 3, 1
INSERT_BATCH = 5_000
CAPACITY = 200_000
# A batch of 1,000 records is about 315 KB of JSON: within the server's default request limit.
MAX_BODY_BYTES = Settings.model_fields["max_body_bytes"].default

# The sync targets (docs/performance.md).
TARGET_UPLOAD_S, TARGET_UPLOAD_REQUESTS = 3.0, 20
TARGET_BUNDLE_BYTES, TARGET_BUNDLE_S, TARGET_DELTA_BYTES = 5_000_000, 2.0, 20_000
UPLOAD, REUPLOAD, FULL, DELTA = "upload", "re-upload", "bundle full", "bundle delta"

# Bytes of each bundle, by (configuration, scenario), every run: the ratios read their median.
BUNDLE_BYTES: dict[tuple[str, str], list[int]] = {}


@dataclass
class Desk:
    """An enrolled desk speaking the device methods with its credential."""

    client: httpx.AsyncClient
    credential: str = ""

    async def call(self, method: str, body: dict[str, Any], *, query: bool = False) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.credential}"} if self.credential else {}
        if query:
            return await self.client.get(f"/xrpc/{NS}{method}", params=body, headers=headers)
        return await self.client.post(f"/xrpc/{NS}{method}", json=body, headers=headers)

    async def ok(self, method: str, body: dict[str, Any], *, query: bool = False) -> dict[str, Any]:
        response = await self.call(method, body, query=query)
        if response.status_code != 200:
            raise XrpcError(f"{method}: HTTP {response.status_code} {response.text[:500]}")
        output: dict[str, Any] = response.json()
        return output


async def _fill(server: Server, first_ticket_id: str, count: int) -> list[str]:
    """``count`` more tickets like ``first_ticket_id`` (same hold, tier, list), with their change-feed
    rows, inserted in bulk; answers every ticket id of the event, the first included."""
    db = Database(server.database_url)
    try:
        async with db.read() as session:
            first = await session.get(Ticket, first_ticket_id)
            assert first is not None
        # Sold an hour ago: their changes have settled, so the full bundle's cursor covers them.
        now = int(time.time() * 1000) - 3_600_000
        ids = [new_id("ticket", now) for _ in range(count)]
        for start in range(0, count, INSERT_BATCH):
            chunk = ids[start : start + INSERT_BATCH]
            tickets = [
                {
                    "id": ticket_id,
                    "environment": first.environment,
                    "app_id": first.app_id,
                    "event_id": first.event_id,
                    "tier_id": first.tier_id,
                    "capacity_group_id": first.capacity_group_id,
                    "hold_id": first.hold_id,
                    "payment_id": first.payment_id,
                    "ticket_number": ticket_number(),
                    "buyer_did": first.buyer_did,
                    "attendee_name": f"Guest {start + n}",
                    "attendee_email": f"guest{start + n}@example.org",
                    "unit_amount": first.unit_amount,
                    "currency": first.currency,
                    "status": "active",
                    "generation": 1,
                    "created_ms": now,
                    "updated_ms": now,
                }
                for n, ticket_id in enumerate(chunk)
            ]
            changes = [{"event_id": first.event_id, "ticket_id": t, "at_ms": now} for t in chunk]
            async with db.write() as session:
                await session.execute(insert(Ticket), tickets)
                await session.execute(insert(TicketChange), changes)
        # The counters the issuance path keeps, so that voiding a ticket can give its place back.
        async with db.write() as session:
            await session.execute(update(Tier).where(Tier.id == first.tier_id).values(sold=Tier.sold + count))
            await session.execute(
                update(CapacityGroup)
                .where(CapacityGroup.id == first.capacity_group_id)
                .values(sold=CapacityGroup.sold + count)
            )
        return [first_ticket_id, *ids]
    finally:
        await db.dispose()


async def _enroll(server: Server, client: httpx.AsyncClient, list_id: str) -> Desk:
    db = Database(server.database_url)
    try:
        async with db.write() as session:
            made = await devices.create_enrollment(
                session, "test", [list_id], "Door 1", int(time.time() * 1000)
            )
    finally:
        await db.dispose()
    desk = Desk(client)
    enrolled = await desk.ok("enrollDevice", {"code": made.code, "deviceName": "Bench door"})
    desk.credential = enrolled["credential"]
    return desk


async def _receive_events(server: Server, app: BenchApp) -> None:
    """Give the app a webhook URL (never resolved: ``.invalid``), as apps that sell tickets have."""
    db = Database(server.database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(App)
                .where(App.did == app.did)
                .values(webhook_url="https://app.invalid/hooks", webhook_secret="whsec_bench_sync")
            )
    finally:
        await db.dispose()


async def _records_of(server: Server, device_id: str) -> tuple[int, dict[str, int], int]:
    """The records the desk has on the server, the conflicts recorded there by kind, and the
    ``ticket.checked-in`` messages for the app."""
    db = Database(server.database_url)
    try:
        async with db.read() as session:
            count = await session.scalar(
                select(func.count()).select_from(CheckInRecord).where(CheckInRecord.device_id == device_id)
            )
            kinds = await session.execute(
                select(CheckInConflict.kind, func.count()).group_by(CheckInConflict.kind)
            )
            told = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.event_type == "ticket.checked-in")
            )
            return int(count or 0), dict(kinds.tuples().all()), int(told or 0)
    finally:
        await db.dispose()


def _row(name: str, scenario: str, requests: int, ok: int, units: int, seconds: Sequence[float]) -> Row:
    total = sum(seconds) if scenario in (UPLOAD, REUPLOAD) else statistics.median(seconds)
    ms = [s * 1000 for s in seconds]
    return Row(
        name,
        scenario,
        requests,
        ok,
        units / total,
        load.percentile(ms, 50),
        max(ms),
        None,
        0.0,
        None,
        0.0,
        0.0,
    )


async def _upload(
    desk: Desk, device_id: str, list_id: str, ticket_ids: Sequence[str], expect: str, now: int
) -> tuple[list[float], int, int]:
    """The records (scanned from ``now``) in batches, one request after the other: each request's
    seconds, the results with status ``expect``, and the largest request body. The same ``now``
    makes the very same records, so a second upload is a plain duplicate."""
    records = [
        Record(
            device_id,
            f"rec_{n:05d}",
            list_id,
            ticket_ref(t),
            1,
            Direction.ENTRY,
            Verdict.ADMIT,
            Reason.OK,
            now + n,
            5,
            "North",
        )
        for n, t in enumerate(ticket_ids)
    ]
    seconds, matching, largest = [], 0, 0
    for start in range(0, len(records), BATCH):
        started = time.perf_counter()
        body = json.dumps({"records": [r.to_wire() for r in records[start : start + BATCH]]}).encode()
        response = await desk.client.post(
            f"/xrpc/{NS}uploadCheckIns",
            content=body,
            headers={"authorization": f"Bearer {desk.credential}", "content-type": "application/json"},
        )
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise XrpcError(f"uploadCheckIns: HTTP {response.status_code} {response.text[:500]}")
        matching += sum(1 for r in response.json()["results"] if r["status"] == expect)
        largest = max(largest, len(body))
    return seconds, matching, largest


async def _bundle(desk: Desk, params: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
    started = time.perf_counter()
    response = await desk.call("getScannerBundle", params, query=True)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise XrpcError(f"getScannerBundle: HTTP {response.status_code} {response.text[:500]}")
    bundle: dict[str, Any] = response.json()["bundle"]
    return bundle, len(response.content), elapsed


async def _measure(configuration: Configuration, options: Options, out: RunResult) -> None:
    name = configuration.name
    tickets = QUICK_TICKETS if options.quick else TICKETS
    runs = QUICK_BUNDLE_RUNS if options.quick else BUNDLE_RUNS
    app = BenchApp()
    # The app's lifecycle events are written, not sent: the delivery worker waits out the workload.
    with server_environment(webhook_poll_interval_seconds="3600"):
        async with (
            deployed(configuration, app.did, app.did_documents()) as server,
            load.pool(server.url, 8) as client,
        ):
            event = await app.event(client)
            tier = await app.tier_in_own_group(client, event, CAPACITY)
            (first,) = await issue(app, client, tier, 1)
            lists = (await app.ok(client, app.query(client, "listCheckInLists", {"eventId": event.id})))[
                "checkInLists"
            ]
            list_id = lists[0]["id"]
            started = time.perf_counter()
            ticket_ids = await _fill(server, first["id"], tickets - 1)
            out.notes.append(f"{name}: {tickets:,} tickets in place in {time.perf_counter() - started:.1f} s")
            await _receive_events(server, app)
            desk = await _enroll(server, client, list_id)
            device_id = desk.credential.split(".")[0]

            scanned = int(time.time() * 1000) - 3_600_000
            seconds, stored, largest = await _upload(
                desk, device_id, list_id, ticket_ids[:RECORDS], "stored", scanned
            )
            out.rows.append(_row(name, UPLOAD, len(seconds), stored, RECORDS, seconds))
            _, first_conflicts, first_told = await _records_of(server, device_id)
            again, duplicates, _ = await _upload(
                desk, device_id, list_id, ticket_ids[:RECORDS], "duplicate", scanned
            )
            out.rows.append(_row(name, REUPLOAD, len(again), duplicates, RECORDS, again))
            kept, conflicts, told = await _records_of(server, device_id)
            out.notes.append(
                f"{name} upload: batches of {BATCH:,} records are up to {largest / 1024:.0f} KiB "
                f"(the server's default limit is {MAX_BODY_BYTES // 1024} KiB)"
            )
            out.notes.append(
                f"{name} upload: {stored:,} stored in {sum(seconds):.2f} s over {len(seconds)} requests; "
                f"again: {duplicates:,} duplicate in {sum(again):.2f} s; {kept:,} records of the desk kept, "
                f"conflicts recorded after the upload {first_conflicts}, after the retry {conflicts}; "
                f"ticket.checked-in messages for the app {first_told:,}, after the retry {told:,}"
            )
            if {stored, duplicates, kept, first_told, told} != {RECORDS}:
                out.failures.append(
                    f"{name} upload: {stored} stored, {duplicates} duplicate on retry, {kept} kept, "
                    f"{first_told} then {told} ticket.checked-in messages (each must be {RECORDS})"
                )

            timings, size = [], 0
            for _ in range(runs):
                bundle, size, elapsed = await _bundle(desk, {"checkInListId": list_id})
                timings.append(elapsed)
            keys = {k["keyId"]: ListVerifyKey(base64.b64decode(k["publicKey"])) for k in bundle["keys"]}
            body = verify_bundle(bundle, keys)
            out.rows.append(_row(name, FULL, runs, int(body["count"]), tickets, timings))
            BUNDLE_BYTES.setdefault((name, FULL), []).append(size)
            if body["count"] != tickets:
                out.failures.append(f"{name} bundle full: {body['count']} tickets of {tickets}")

            voids = ticket_ids[-VOIDS:]
            requests = [app.procedure(client, "voidTicket", {"ticketId": t}) for t in voids]
            await asyncio.gather(*(app.ok(client, r) for r in requests))
            delta, delta_size, delta_s = await _bundle(desk, {"checkInListId": list_id, "since": body["seq"]})
            delta_body = verify_bundle(delta, keys)
            out.rows.append(
                _row(name, DELTA, 1, int(delta_body["count"]), int(delta_body["count"]), [delta_s])
            )
            BUNDLE_BYTES.setdefault((name, DELTA), []).append(delta_size)
            out.notes.append(
                f"{name} bundles: full {size / 1e6:.2f} MB "
                f"({len(bundle['entries']) / 1e6:.2f} MB of entries), "
                f"runs {', '.join(f'{s:.2f} s' for s in timings)}; delta after {VOIDS} voids "
                f"{delta_size / 1e3:.1f} KB, {delta_body['count']} entries, {delta_s * 1000:.0f} ms"
            )
            if delta_body["count"] < VOIDS:
                out.failures.append(f"{name} bundle delta: {delta_body['count']} entries after {VOIDS} voids")


async def run(options: Options) -> RunResult:
    out = RunResult()

    async def measure(configuration: Configuration) -> None:
        await _measure(configuration, options, out)

    await each_configuration(options, out, measure)
    return out


def ratios(rows: Sequence[Row]) -> list[str]:
    """Each configuration against the sync targets (docs/performance.md)."""
    lines = []
    for c in CONFIGURATIONS:
        upload = find(rows, c.name, UPLOAD)
        if upload:
            seconds = RECORDS / upload.rate
            lines.append(
                f"{c.name:<13}  upload {RECORDS:,}: {seconds:.2f} s in {upload.requests} requests: "
                f"{ratio(seconds, TARGET_UPLOAD_S)} the {TARGET_UPLOAD_S:.0f} s target, "
                f"{ratio(upload.requests, TARGET_UPLOAD_REQUESTS)} the {TARGET_UPLOAD_REQUESTS} requests"
            )
        full = find(rows, c.name, FULL)
        if full:
            size = statistics.median(BUNDLE_BYTES.get((c.name, FULL), [0]))
            scaled = "" if full.ok == TICKETS else f" ({full.ok:,} tickets; scaled to {TICKETS:,})"
            factor = TICKETS / full.ok if full.ok else 1.0
            lines.append(
                f"{c.name:<13}  full bundle {size * factor / 1e6:.2f} MB, "
                f"built {full.p50_ms * factor / 1000:.2f} s"
                f"{scaled}: {ratio(size * factor, TARGET_BUNDLE_BYTES)} the 5 MB target, "
                f"{ratio(full.p50_ms * factor / 1000, TARGET_BUNDLE_S)} the 2 s"
            )
        delta = find(rows, c.name, DELTA)
        if delta:
            size = statistics.median(BUNDLE_BYTES.get((c.name, DELTA), [0]))
            lines.append(
                f"{c.name:<13}  delta after {VOIDS} changes {size / 1e3:.1f} KB: "
                f"{ratio(size, TARGET_DELTA_BYTES)} the 20 KB target"
            )
    return lines


WORKLOAD = Workload(
    name="sync",
    summary="desk sync: upload 10,000 records (and again), bundle of 50,000 tickets, delta after 100 voids",
    run=run,
    ratios=ratios,
)

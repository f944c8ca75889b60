"""Liveness and readiness, and a graceful shutdown: requests in flight are answered, and the
delivery worker's claims are given back for another process to take at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from conftest import APP_DID, Harness, running_harness
from sqlalchemy import select
from support.catalog import active_event
from support.databases import create_pg_database, drop_pg_database, pg_reachable
from support.serve_process import ServeProcess, run_tickets, server_env
from support.server import LiveServer, make_settings
from support.webhooks import Receiver, add_webhook_app, attempts, message, queue, wait_until

from server.db import migrate
from server.db.engine import Database
from server.db.models import EventPublication
from server.domain.common import SystemClock
from server.domain.publishing.service import Publisher, PublishReport
from server.domain.publishing.worker import run_publish_worker

NOBODY_LISTENS = "postgresql+asyncpg://postgres@127.0.0.1:9/tickets"


@asynccontextmanager
async def serving(database_url: str, folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    server = LiveServer(make_settings(database_url, folder))
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            yield http
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database without any schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    if (problem := await pg_reachable()) is not None:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    url = await create_pg_database(migrated=False)
    try:
        yield url
    finally:
        await drop_pg_database(url)


async def test_ready_once_the_schema_is_at_the_head(empty_database: str, tmp_path: Path) -> None:
    async with serving(empty_database, tmp_path) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        unmigrated = await http.get("/readyz")
        await asyncio.to_thread(migrate.upgrade, empty_database, "0009")
        behind = await http.get("/readyz")
        await asyncio.to_thread(migrate.upgrade, empty_database)
        ready = await http.get("/readyz")
    assert unmigrated.status_code == 503
    assert unmigrated.json() == {
        "error": "NotReady",
        "message": "the database is unreachable or not migrated",
    }
    assert behind.status_code == 503 and "0009" in behind.json()["message"]
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "revision": migrate.head_revision(empty_database)}


async def test_alive_but_not_ready_without_a_database(tmp_path: Path) -> None:
    async with serving(NOBODY_LISTENS, tmp_path) as http:
        live = await http.get("/healthz")
        ready = await http.get("/readyz")
        old_health = await http.get("/xrpc/_health")
    assert live.status_code == 200 and old_health.status_code == 200
    assert ready.status_code == 503 and ready.json()["error"] == "NotReady"


@pytest.mark.slow
async def test_graceful_shutdown_answers_and_gives_claims_back(database_url: str, tmp_path: Path) -> None:
    receiver = Receiver(delay_s=120)  # takes a delivery and keeps it in flight
    await receiver.start()
    db = Database(database_url)
    env = server_env(database_url, tmp_path, webhook_poll_interval_seconds=0.05, webhook_timeout_seconds=60)
    try:
        await run_tickets(env, "db", "upgrade")
        [delivery_id] = await queue(db, await add_webhook_app(db, APP_DID, receiver.url))
        server = ServeProcess(env)
        await server.start()

        async def claimed() -> bool:
            return (await message(db, delivery_id)).next_attempt_ms > SystemClock().now_ms() + 10_000

        await wait_until(claimed, 20, "the delivery worker's claim")
        # A request whose body is still arriving when the server is told to stop.
        body = json.dumps({"items": [{"tierId": "tier_x", "quantity": 1}]}).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /xrpc/tickets.atmosphere.createTicketHold HTTP/1.1\r\nhost: tickets.test\r\n"
            b"content-type: application/json\r\nx-request-id: in-flight-1\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body[:10])
        )
        await writer.drain()
        await asyncio.sleep(0.3)
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.5)
        assert not stopping.done()  # waiting for the request in flight
        writer.write(body[10:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        await stopping
        stopped_ms = SystemClock().now_ms()
        given_back = await message(db, delivery_id)
        tried = await attempts(db, delivery_id)
    finally:
        await receiver.stop()
        await db.dispose()

    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 4")
    assert b"x-request-id: in-flight-1" in head.lower()
    assert json.loads(payload)["error"]
    # The claim is given back, not left to its lease: due now, untried.
    assert given_back.state == "pending"
    assert given_back.next_attempt_ms <= stopped_ms
    assert tried == []


class StuckPublisher(Publisher):
    """Claims like the real one; every publication it runs hangs."""

    async def run(self, event_id: str, version: int) -> PublishReport:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_stopped_publisher_gives_its_claims_back(database_url: str, tmp_path: Path) -> None:
    # The server's own publishing worker sleeps through the test, so only the worker under test
    # claims the events.
    async with running_harness(database_url, tmp_path, publish_poll_interval_seconds=3600) as harness:
        await _stopped_publisher_gives_back(harness)


async def _stopped_publisher_gives_back(harness: Harness) -> None:
    events = [(await active_event(harness.app))["id"] for _ in range(2)]
    db, clock, nothing = Database(harness.settings.resolved_database_url), SystemClock(), cast(Any, None)
    publisher = StuckPublisher(db, nothing, nothing, nothing, nothing, "did:web:tickets.test", clock)
    try:
        for event_id in events:  # publishing switched on, due now
            await publisher.claim(event_id)
            await publisher.give_back([event_id])

        async def due_ms() -> list[int]:
            async with db.read() as session:
                rows = await session.scalars(
                    select(EventPublication).where(EventPublication.event_id.in_(events))
                )
                return [row.next_attempt_ms for row in rows]

        worker = asyncio.create_task(run_publish_worker(publisher, 0.05))

        async def both_claimed() -> bool:
            return all(ms > clock.now_ms() + 60_000 for ms in await due_ms())

        await wait_until(both_claimed, 10, "the worker's claims")
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        stopped_ms = clock.now_ms()
        assert all(ms <= stopped_ms for ms in await due_ms())  # due again at once, not after the lease
    finally:
        await db.dispose()

"""Concurrent checkout over real HTTP never oversells: on SQLite, on PostgreSQL, and on PostgreSQL
with two server processes. The negative control turns the capacity lock off (a test-only switch that
checks availability in a separate transaction, the classic check-then-act race) and shows that the
same test then catches an oversell."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conftest import APP_DID, Harness, start_harness
from sqlalchemy import func, select
from support.catalog import ORGANIZER, active_event, shared_group
from support.races import without_hold_locks
from support.serve_process import tickets_env
from support.server import AppClient, Identity, make_settings, register

from server.db.engine import Database
from server.db.models import HoldItem
from server.domain.common import SystemClock

# Alone on the machine: the negative control needs the race to happen (requests truly concurrent),
# and the last test runs two server processes.
pytestmark = pytest.mark.serial

CAPACITY = 50
BURST = 220
TOP_UP = 60


async def hold_burst(client: AppClient, tiers: list[str], count: int, quantities: list[int]) -> list[int]:
    """Fire ``count`` holds at once; answers the quantities that were granted."""

    async def one(n: int) -> int:
        quantity = quantities[n]
        response = await client.call(
            "createTicketHold", {"items": [{"tierId": tiers[n % len(tiers)], "quantity": quantity}]}
        )
        if response.status_code == 200:
            return quantity
        body = response.json()
        assert response.status_code == 409, body
        assert body["error"] in ("SoldOut", "TierSoldOut", "InsufficientAvailability"), body
        return 0

    granted = await asyncio.gather(*(one(n) for n in range(count)))
    return [q for q in granted if q]


async def held_in_db(database_url: str, group_id: str) -> int:
    """What the database holds for the group right now, counted without any clamping."""
    db = Database(database_url)
    try:
        async with db.read() as session:
            held = await session.scalar(
                select(func.coalesce(func.sum(HoldItem.quantity), 0)).where(
                    HoldItem.capacity_group_id == group_id, HoldItem.active_until_ms > SystemClock().now_ms()
                )
            )
    finally:
        await db.dispose()
    return int(held or 0)


async def run_contended_checkout(client: AppClient, database_url: str) -> tuple[int, int]:
    """Several tiers sharing one group of ``CAPACITY``; a burst of random 1-4 holds, then a burst of
    single places to fill any remainder. Answers (places granted, places the server counts held)."""
    event = await active_event(client)
    group, tiers = await shared_group(client, event, capacity=CAPACITY, tiers=3, quantity=CAPACITY)
    rng = random.Random(2026)
    granted = await hold_burst(client, tiers, BURST, [rng.randint(1, 4) for _ in range(BURST)])
    granted += await hold_burst(client, tiers, TOP_UP, [1] * TOP_UP)
    return sum(granted), await held_in_db(database_url, group)


async def test_concurrent_holds_never_oversell(harness: Harness, database_url: str) -> None:
    granted, held = await run_contended_checkout(harness.app, database_url)
    assert granted == held == CAPACITY


async def test_negative_control_without_the_lock_oversells(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_hold_locks(monkeypatch)
    h = await start_harness(database_url, tmp_path)
    try:
        granted, held = await run_contended_checkout(h.app, database_url)
    finally:
        await h.app.aclose()
        await asyncio.to_thread(h.server.stop)
    assert granted == held
    assert held > CAPACITY, "the race was not caught: the concurrency test would not detect a missing lock"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def two_process_server(pg_database: str, tmp_path: Path) -> AsyncIterator[AppClient]:
    """``tickets serve --workers 2`` on the PostgreSQL test database."""
    from support.databases import empty_pg

    await empty_pg(pg_database)
    settings = make_settings(pg_database, tmp_path)
    assert settings.did_docs is not None
    identity = Identity.create(APP_DID, settings.did_docs)
    await register(pg_database, APP_DID)
    port = free_port()
    env = tickets_env(
        database_url=pg_database,
        service_did=settings.service_did,
        did_docs=settings.did_docs,
        data_dir=tmp_path,
        plc_url=settings.plc_url,
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
        start_new_session=True,
    )
    organizer = Identity.create(ORGANIZER, settings.did_docs)
    client = AppClient(f"http://127.0.0.1:{port}", identity, acts_for={ORGANIZER: organizer})
    try:
        for _ in range(200):
            try:
                if (await client.http.get(f"{client.base_url}/xrpc/_health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        else:
            pytest.fail("tickets serve --workers 2 did not start")
        yield client
    finally:
        await client.aclose()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.mark.postgres
@pytest.mark.slow
async def test_two_server_processes_never_oversell(two_process_server: AppClient, pg_database: str) -> None:
    granted, held = await run_contended_checkout(two_process_server, pg_database)
    assert granted == held == CAPACITY

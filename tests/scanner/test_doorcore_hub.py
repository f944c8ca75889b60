"""Hub mode when the network lies: a server that accepts connections and never answers costs one
timeout, not one per scan, and an admission at one desk is refused at the other within a second;
a hub desk that stops is shown as lost on the desks using it within about a second, and found
again when it is back. Deadlines are injected and conditions awaited, never fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness

from scanner.desks import Sale, enrolled_desk, hang_server, restart_server, sell
from scanner.test_hub import until
from scanner_app.core.desk import DeskCore
from scanner_app.io.hub import Hub
from sync.checkin import Reason, Verdict

# Short sync-round deadlines, so the hung server is found out by the first round; the scan's own
# online deadline stays long, to show that scans do not wait for it once the breaker is open.
HUNG = {"request_timeout_seconds": 2.0, "online_timeout_seconds": 8.0, "sync_interval_seconds": 30}


@asynccontextmanager
async def _two_desks_on_a_hub(
    harness: Harness, tmp_path: Path, sale: Sale, a_options: dict[str, Any], b_options: dict[str, Any]
) -> AsyncIterator[tuple[DeskCore, DeskCore]]:
    """Desk A (North door) serving as the hub, desk B (South door) joined to it; stopped and closed after."""
    a = await enrolled_desk(harness, tmp_path / "a", [sale.main_list], "North door", **a_options)
    b = await enrolled_desk(harness, tmp_path / "b", [sale.main_list], "South door", **b_options)
    hub = Hub(a, port=0, host="127.0.0.1")
    await b.join_hub(hub.text("127.0.0.1"))
    stop = asyncio.Event()
    serving = asyncio.ensure_future(hub.serve(stop))
    yield a, b
    stop.set()
    await serving
    await a.close()
    await b.close()


@pytest.mark.serial  # measures time
async def test_a_hung_server_costs_one_timeout_and_desks_still_share_admissions(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 2)
    async with _two_desks_on_a_hub(harness, tmp_path, sale, HUNG, HUNG) as (a, b):
        hung = await hang_server(harness)
        try:
            await asyncio.gather(a.sync_once(), b.sync_once())  # one timeout each: the breakers open
            assert (a.status().link, b.status().link) == ("offline", "hub")

            at_a = await a.scan(sale.token(0))
            assert (at_a.verdict, at_a.online, at_a.decided_by) == (Verdict.ADMIT, False, "desk")
            started = time.monotonic()
            at_b = await b.scan(sale.token(0))
            # No wait for the hung server: the scan's own online deadline never runs out (how fast
            # the hub answers is measured by the scanner benchmark, not here).
            assert time.monotonic() - started < HUNG["online_timeout_seconds"]
            assert (at_b.verdict, at_b.reason, at_b.decided_by) == (
                Verdict.REFUSE,
                Reason.ALREADY_CHECKED_IN,
                "hub",
            )
            assert at_b.first_entry is not None and at_b.first_entry.device_id == at_a.record.device_id
            other = await b.scan(sale.token(1))
            assert (other.verdict, other.decided_by) == (Verdict.ADMIT, "hub")
        finally:
            hung.close()
        await restart_server(harness)
        await asyncio.gather(a.sync_once(), b.sync_once())  # the probe finds the server back
        assert (a.status().link, b.status().link) == ("online", "online")
        assert (await b.scan(sale.token(1))).online  # decided by the server again


async def test_a_stopped_hub_shows_on_both_desks_within_a_second_and_is_found_again(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    hub_desk = await enrolled_desk(harness, tmp_path / "hub", [sale.main_list], "Hub")
    desks = [
        await enrolled_desk(harness, tmp_path / name, [sale.main_list], name, sync_interval_seconds=5)
        for name in ("North door", "South door")
    ]
    hub = Hub(hub_desk, port=0, host="127.0.0.1")
    port = hub.port
    for desk in desks:
        await desk.join_hub(hub.text("127.0.0.1"))
    stop, done = asyncio.Event(), asyncio.Event()
    serving = asyncio.ensure_future(hub.serve(stop))
    loops = [asyncio.ensure_future(desk.run_sync_forever(done)) for desk in desks]
    await asyncio.to_thread(harness.server.stop)
    await until(lambda: all(desk.status().link == "hub" for desk in desks), 10)

    stop.set()
    await serving
    took = await until(lambda: all(desk.status().hub_lost for desk in desks), 5)
    assert took < 1.5
    assert all(desk.status().link == "offline" for desk in desks)

    again = Hub(hub_desk, port=port, host="127.0.0.1")
    stop = asyncio.Event()
    serving = asyncio.ensure_future(again.serve(stop))
    await until(lambda: all(desk.status().link == "hub" and not desk.status().hub_lost for desk in desks), 5)
    done.set()
    stop.set()
    await asyncio.gather(serving, *loops)
    for desk in (hub_desk, *desks):
        await desk.close()


async def test_with_a_hub_set_a_round_finds_a_hung_server_by_its_probe(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    patient = {"request_timeout_seconds": 60, "probe_timeout_seconds": 1.0, "sync_interval_seconds": 60}
    async with _two_desks_on_a_hub(harness, tmp_path, sale, {}, patient) as (_a, b):
        hung = await hang_server(harness)
        try:
            syncing = asyncio.ensure_future(b.sync_once())  # the breaker is still closed
            await until(lambda: b.status().link == "hub", 20)  # long before the 60 s request timeout
            await syncing
        finally:
            hung.close()

"""Hub mode: the server is down, desk A serves desk B on the local network. An admission at either
desk is refused at the other within a second; when the server is back, each desk uploads its own
scans and every scan of both desks is on the server exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import Harness

from scanner.desks import enrolled_desk, restart_server, sell, server_records
from scanner_app.core.desk import DeskCore
from scanner_app.io.hub import Hub
from sync.checkin import Reason, Verdict
from sync.records import RecordKey


async def until(condition: Callable[[], bool], seconds: float) -> float:
    """Wait for ``condition()`` to hold; answers how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "timed out"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.serial  # measures time
async def test_two_desks_offline_share_admissions_through_the_hub(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 3)
    a = await enrolled_desk(harness, tmp_path / "a", [sale.main_list], "North door")
    b = await enrolled_desk(harness, tmp_path / "b", [sale.main_list], "South door")
    hub = Hub(a, port=0)
    await b.join_hub(hub.text("127.0.0.1"))
    stop = asyncio.Event()
    running = [
        asyncio.ensure_future(x)
        for x in (hub.serve(stop), a.run_sync_forever(stop), b.run_sync_forever(stop))
    ]

    async with httpx.AsyncClient() as stranger:
        url = f"http://127.0.0.1:{hub.port}/xrpc/tickets.atmosphere.pullCheckIns"
        denied = await stranger.get(
            url, params={"checkInListId": sale.main_list}, headers={"authorization": "Bearer x"}
        )
        assert denied.status_code == 401 and denied.json()["error"] == "AuthenticationRequired"

    await asyncio.to_thread(harness.server.stop)
    await until(lambda: b.status().via_hub and not a.status().online, 5)

    at_a = await a.scan(sale.token(0))
    assert (at_a.verdict, at_a.online) == (Verdict.ADMIT, False)
    started = time.monotonic()
    at_b = await b.scan(sale.token(0))
    assert (at_b.verdict, at_b.reason, at_b.online) == (Verdict.REFUSE, Reason.ALREADY_CHECKED_IN, False)
    assert time.monotonic() - started < 1.0
    assert at_b.first_entry is not None and at_a.record.device_id == at_b.first_entry.device_id

    assert (await b.scan(sale.token(1))).verdict is Verdict.ADMIT
    assert await until(lambda: a.counters().inside_now == 2, 1.0) < 1.0
    again = await a.scan(sale.token(1))
    assert (again.verdict, again.reason) == (Verdict.REFUSE, Reason.ALREADY_CHECKED_IN)
    # A names B once a bundle refreshed after B enrolled carries B's name: either is right.
    assert again.detail.endswith(("(another desk)", "(South door)"))

    await restart_server(harness)
    await until(lambda: all(d.status().online and not d.status().pending_uploads for d in (a, b)), 10)
    stop.set()
    await asyncio.gather(*running)
    on_server = await server_records(harness, sale.main_list)
    keys = [(device, record) for device, record, _, _ in on_server]
    assert len(keys) == len(set(keys)) == 4
    assert set(keys) == {(key.device_id, key.record_id) for desk in (a, b) for key in own_keys(desk)}
    await a.close()
    await b.close()


def own_keys(desk: DeskCore) -> list[RecordKey]:
    assert desk.enrollment is not None
    return [r.key for r in desk.store.records() if r.device_id == desk.enrollment.device_id]


async def test_the_hub_answers_bad_calls_with_errors_not_crashes(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    desk = await enrolled_desk(harness, tmp_path / "hub", [sale.main_list])
    hub = Hub(desk, port=0, host="127.0.0.1")
    stop = asyncio.Event()
    serving = asyncio.ensure_future(hub.serve(stop))
    auth = {"authorization": f"Bearer {desk.hub_token}"}
    upload = "/xrpc/tickets.atmosphere.uploadCheckIns"
    pull = "/xrpc/tickets.atmosphere.pullCheckIns"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.port}") as http:
        for body in (b"{not json", b"[1, 2]", b'{"records": "abc"}', b'{"records": [{"id": 1}]}', b"{}"):
            answer = await http.post(upload, content=body, headers=auth)
            assert (answer.status_code, answer.json()["error"]) == (400, "InvalidRequest"), body
        for params in (
            {"checkInListId": sale.main_list, "cursor": "x"},
            {"checkInListId": sale.main_list, "limit": "0"},
        ):
            answer = await http.get(pull, params=params, headers=auth)
            assert (answer.status_code, answer.json()["error"]) == (400, "InvalidRequest"), params
        assert (await http.get(pull, params={"checkInListId": "other"}, headers=auth)).status_code == 401
        assert (await http.get(upload, headers=auth)).json()["error"] == "InvalidRequest"  # wrong verb
        assert (await http.get("/xrpc/tickets.atmosphere.nothing", headers=auth)).status_code == 404
        page = (await http.get(pull, params={"checkInListId": sale.main_list}, headers=auth)).json()
        assert page["records"] == [] and page["more"] is False and isinstance(page["serverTimeMs"], int)
    stop.set()
    await serving
    await desk.close()

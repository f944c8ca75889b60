"""Prometheus metrics: what the service counts, who may scrape them, and the sums of several
server processes under ``tickets serve --workers 2``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from conftest import APP_DID, running_harness
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from support.catalog import ORGANIZER, active_event, shared_group
from support.databases import empty_pg
from support.doors import sold
from support.serve_process import ServeProcess, server_env
from support.webhooks import Receiver, point_webhooks, wait_until

from server.db.engine import Database
from server.db.models import Hold

NS = "tickets.atmosphere."
CALLS = 20
BURSTS = 5


def samples(page: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def value(page: str, name: str, **labels: str) -> float:
    return samples(page).get((name, frozenset(labels.items())), 0.0)


async def scrape(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{url}/metrics", headers=headers)


async def test_the_service_counts_its_work(database_url: str, tmp_path: Path) -> None:
    down = Receiver()  # never started: every delivery fails and the events wait in the outbox
    async with running_harness(
        database_url,
        tmp_path,
        metrics_sample_seconds=0.05,
        webhook_backoff_base_seconds=600.0,
    ) as h:
        await point_webhooks(database_url, APP_DID, down.url)
        before = (await scrape(h.server.url)).text
        _event, tickets, _list_id = await sold(h, quantity=2)
        token = tickets[0]["passToken"]
        assert (await h.app.ok("checkInTicket", {"ticketToken": token}))["status"] == "checked_in"
        assert (await h.app.ok("checkInTicket", {"ticketToken": token}))["status"] != "checked_in"
        event = await active_event(h.app)
        _, [tier] = await shared_group(h.app, event, 5, 1)
        hold = await h.app.ok("createTicketHold", {"items": [{"tierId": tier, "quantity": 1}]})
        db = Database(database_url)
        try:
            async with db.write() as session:  # its checkout time runs out now
                await session.execute(update(Hold).where(Hold.token == hold["token"]).values(expires_ms=0))
        finally:
            await db.dispose()

        async def swept_and_sampled() -> bool:
            page = (await scrape(h.server.url)).text
            expired = value(page, "tickets_holds_expired_total") - value(
                before, "tickets_holds_expired_total"
            )
            return expired >= 1 and value(page, "tickets_outbox_backlog") >= 1

        await wait_until(swept_and_sampled, 20, "the sweeper and the sampler")
        after = (await scrape(h.server.url)).text

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tickets_holds_created_total") == 2
    assert grew("tickets_issued_total") == 2
    assert grew("tickets_checkins_total", result="checked_in") == 1
    assert (
        sum(grew("tickets_checkins_total", result=r) for r in ("already_checked_in", "already_inside")) == 1
    )
    assert grew("tickets_requests_total", nsid=NS + "createTicketHold", status="200") == 2
    assert grew("tickets_request_duration_seconds_count", nsid=NS + "checkInTicket") == 2
    assert value(after, "tickets_outbox_oldest_age_seconds") > 0
    assert value(after, "tickets_sweeper_last_pass_timestamp_seconds") > 0
    assert value(after, "tickets_db_pool_connections") >= 1
    assert ("tickets_db_pool_connections_in_use", frozenset()) in samples(after)
    assert not [line for line in after.splitlines() if ORGANIZER in line or "@" in line]


async def test_metrics_answer_only_this_machine_by_default(database_url: str, tmp_path: Path) -> None:
    async with running_harness(database_url, tmp_path, trusted_proxy_count=1) as h:
        local = await scrape(h.server.url)
        forwarded = await scrape(h.server.url, **{"x-forwarded-for": "203.0.113.7"})
    assert local.status_code == 200
    assert local.headers["content-type"].startswith("text/plain")
    assert "tickets_requests_total" in local.text
    # Through a trusted proxy, the client is the address it forwarded: not this machine.
    assert forwarded.status_code == 404
    assert forwarded.json()["error"]

    async with running_harness(database_url, tmp_path / "off", metrics="off") as h:
        assert (await scrape(h.server.url)).status_code == 404


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.serial  # two server processes
async def test_two_processes_share_the_connections_and_are_summed(pg_database: str, tmp_path: Path) -> None:
    """Connections opened together, as a load balancer or a burst of buyers opens them, are served
    by both processes (each listens on a socket of its own, and the kernel spreads connections
    between them: sharing one socket, the first process awake took a whole burst), and /metrics
    sums what each counted in its own file."""
    await empty_pg(pg_database)
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left over by an earlier run")
    env = server_env(pg_database, tmp_path)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    server = ServeProcess(env, "--workers", "2")
    await server.start()
    served = [0.0, 0.0]
    try:
        assert not (folder / "counter_1.db").exists()  # emptied at start
        files = sorted(folder.glob("counter_*.db"))
        assert len(files) == 2  # one per worker process, named by its pid
        for _ in range(BURSTS):
            at_once = httpx.Limits(max_connections=CALLS, max_keepalive_connections=CALLS)
            async with httpx.AsyncClient(base_url=server.url, limits=at_once) as http:
                answers = await asyncio.gather(*(http.get("/healthz") for _ in range(CALLS)))
            assert {a.status_code for a in answers} == {200}
            # A call is counted once its answer is sent: wait for the last ones to be.
            expected = sum(served) + CALLS

            async def all_counted(want: float = expected) -> bool:
                return sum(healthz_calls(file) for file in files) >= want

            await wait_until(all_counted, 30, "every call counted")
            counted = [healthz_calls(file) for file in files]
            burst = [now - before for now, before in zip(counted, served, strict=True)]
            assert sum(burst) == CALLS and min(burst) >= CALLS // 10, burst
            served = counted
        async with httpx.AsyncClient(base_url=server.url) as http:
            page = (await http.get("/metrics")).text
    finally:
        await server.stop()
    assert (
        value(page, "tickets_requests_total", nsid="/healthz", status="200") == BURSTS * CALLS == sum(served)
    )


def healthz_calls(file: Path) -> float:
    """What one process counted, from its own file."""
    families = MultiProcessCollector.merge([str(file)], accumulate=False)  # type: ignore[no-untyped-call]
    counted: float = sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "tickets_requests_total" and sample.labels.get("nsid") == "/healthz"
    )
    return counted

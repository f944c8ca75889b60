"""Paid issuance, pass tokens and outbound webhooks.

* **paid issuance** (each configuration): a hold of two tickets (``createTicketHold``), then the
  broker's signed ``payment.completed`` webhook (``POST /webhooks/atm``), which commits the tickets
  before it answers; 8 in flight. Latency is the pair, from sending the hold to the webhook's answer.
  Afterwards every hold must have exactly its two tickets, also after a fifth of the payments is
  delivered again under new delivery ids (0 double issuance).
* **pass sign / verify** (in this process): ``ListSigningKey.sign`` + ``encode_pass``, and
  ``decode_pass`` + ``verify_for_keys``, per token.
* **outbound webhooks** (each configuration): messages queued with ``outbox.enqueue`` for the app,
  whose webhook URL is a local receiver answering 200; the server's delivery worker (polling every
  50 ms) drains them. Rate is messages over the time from the commit to the last arrival; latency
  is each message's arrival after the commit.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import func, select, update

from bench import floor, load, procfs, wrk
from bench.deploy import CONFIGURATIONS, Configuration, Server, deployed
from bench.paid import hold_body, new_payment_id, pay, payment_completed, server_environment
from bench.results import Options, Row, RunResult, Workload, find, measured, ratio
from bench.stage import Stage, each_configuration
from bench.xrpc import BenchApp
from server.db.engine import Database
from server.db.models import App, Ticket
from server.domain.common import new_id
from server.domain.outbox.service import enqueue
from server.domain.webhook_format import DELIVERY_HEADER
from sync.passes import ListSigningKey, PassPayload, decode_pass, encode_pass, keys_by_id, verify_for_keys

CONCURRENCY = 8
QUANTITY = 2
ISSUANCES, QUICK_ISSUANCES = 600, 150
WARM_UP, QUICK_WARM_UP = 48, 16
WEBHOOKS, QUICK_WEBHOOKS = 1000, 300
TOKENS, QUICK_TOKENS = 5000, 1000
REPLAY_SHARE = 5
CAPACITY = 200_000
WEBHOOK_DRAIN_TIMEOUT_S = 120.0

# The targets (docs/performance.md): paid issuance, PostgreSQL 2 processes, 8 concurrent (SQLite:
# half); pass verify.
TARGET_RATE, PRETIX_RATE = 190.0, 19.0
TARGET_VERIFY_US, PRETIX_VERIFY_US, RAW_ED25519_US = 70.0, 115.0, 52.0
IN_PROCESS = "in-process"


def paying(base_url: str, paid: list[dict[str, Any]]) -> load.Follow:
    """For each hold answered, the broker's webhook that pays it, as bytes; the holds go in ``paid``."""

    def follow(answer: bytes) -> bytes:
        hold: dict[str, Any] = json.loads(answer)
        hold["paymentId"] = new_payment_id()
        body, headers = payment_completed(hold, hold["paymentId"])
        paid.append(hold)
        return wrk.raw(httpx.Request("POST", f"{base_url}/webhooks/atm", content=body, headers=headers))

    return follow


async def _tickets_per_hold(server: Server, hold_ids: Sequence[str]) -> Counter[str]:
    db = Database(server.database_url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(Ticket.hold_id, func.count())
                .where(Ticket.hold_id.in_(hold_ids))
                .group_by(Ticket.hold_id)
            )
            return Counter(dict(rows.tuples().all()))
    finally:
        await db.dispose()


async def _issuance(stage: Stage, client: httpx.AsyncClient, tier: str, quick: bool) -> None:
    warm = [
        stage.app.procedure(client, "createTicketHold", hold_body(tier, QUANTITY))
        for _ in range(QUICK_WARM_UP if quick else WARM_UP)
    ]
    await load.by_connection(stage.server.url, warm, CONCURRENCY, paying(stage.server.url, []))()
    count = QUICK_ISSUANCES if quick else ISSUANCES
    requests = [
        stage.app.procedure(client, "createTicketHold", hold_body(tier, QUANTITY)) for _ in range(count)
    ]
    holds: list[dict[str, Any]] = []
    phase = await stage.measure("paid issuance", requests, follow=paying(stage.server.url, holds))
    stage.out.rows.append(Row.of(stage.name, "paid issuance", phase, phase.count("200")))
    if phase.count("200") != count:
        stage.out.failures.append(f"{stage.name} paid issuance: {dict(phase.outcomes)} for {count} issuances")
    # Deliver a share of the payments again, under new delivery ids: no hold may gain tickets.
    replays: Counter[int] = Counter()
    for hold in holds[::REPLAY_SHARE]:
        replays[(await pay(client, hold, hold["paymentId"])).status_code] += 1
    per_hold = await _tickets_per_hold(stage.server, [h["holdId"] for h in holds])
    wrong = {h: n for h in (h["holdId"] for h in holds) if (n := per_hold.get(h, 0)) != QUANTITY}
    stage.out.notes.append(
        f"{stage.name} paid issuance: {len(holds)} holds paid, {sum(per_hold.values())} tickets; "
        f"{sum(replays.values())} payments delivered again answered {dict(replays)}"
    )
    if wrong:
        sample = dict(list(wrong.items())[:5])
        stage.out.failures.append(
            f"{stage.name} paid issuance: {len(wrong)} holds without exactly {QUANTITY} tickets, "
            f"e.g. {sample}"
        )


class Receiver:
    """A local webhook endpoint answering 200 to every POST, noting when each delivery arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrivals: dict[str, float] = {}
        self.repeated = 0
        self.done = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower().split("\r\n")
                fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
                await reader.readexactly(int(fields.get("content-length", "0")))
                delivery = fields.get(DELIVERY_HEADER, "")
                if delivery in self.arrivals:
                    self.repeated += 1
                else:
                    self.arrivals[delivery] = time.perf_counter()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                if len(self.arrivals) >= self.expected:
                    self.done.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _outbound(stage: Stage, quick: bool) -> None:
    count = QUICK_WEBHOOKS if quick else WEBHOOKS
    receiver = Receiver(count)
    listener = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    db = Database(stage.server.database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(App)
                .where(App.did == stage.app.did)
                .values(webhook_url=f"http://127.0.0.1:{port}/hooks", webhook_secret="whsec_bench_outbound")
            )
        async with db.write() as session:
            app_id = await session.scalar(select(App.id).where(App.did == stage.app.did))
            assert app_id is not None
            now = int(time.time() * 1000)
            for n in range(count):
                data = {"ticketId": new_id("ticket", now), "n": n}
                await enqueue(session, app_id, "test", "ticket.voided", data, now)
            pids = stage.server.serving_pids()
            cpu_before = procfs.cpu_seconds(pids)
        committed = time.perf_counter()
        try:
            await asyncio.wait_for(receiver.done.wait(), WEBHOOK_DRAIN_TIMEOUT_S)
        except TimeoutError:
            stage.out.failures.append(
                f"{stage.name} outbound webhooks: {len(receiver.arrivals)} of {count} delivered "
                f"within {WEBHOOK_DRAIN_TIMEOUT_S:.0f} s"
            )
        elapsed = max(receiver.arrivals.values(), default=committed) - committed
        cpu = sum(procfs.cpu_seconds(pids).values()) - sum(cpu_before.values())
    finally:
        listener.close()
        await db.dispose()
    latencies = sorted((t - committed) * 1000 for t in receiver.arrivals.values()) or [0.0]
    delivered = len(receiver.arrivals)
    stage.out.rows.append(
        Row(
            configuration=stage.name,
            scenario="outbound webhooks",
            requests=count,
            ok=delivered,
            rate=delivered / elapsed if elapsed > 0 else 0.0,
            p50_ms=load.percentile(latencies, 50),
            p99_ms=load.percentile(latencies, 99),
            peak_rss_mb=stage.server.peak_rss_mb(),
            server_cpu_ms=cpu * 1000 / max(delivered, 1),
            database_cpu_ms=None,
            client_cpu_ms=0.0,
            other_cores=0.0,
        )
    )
    if receiver.repeated:
        stage.out.notes.append(
            f"{stage.name} outbound webhooks: {receiver.repeated} deliveries arrived twice"
        )


def _micros(action: Any, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        action()
        times.append((time.perf_counter_ns() - started) / 1000)
    return times


def _passes(options: Options, out: RunResult) -> None:
    runs = QUICK_TOKENS if options.quick else TOKENS
    key = ListSigningKey.generate()
    other = ListSigningKey.generate()
    keys = keys_by_id([key.verify_key(), other.verify_key()])
    one_list = keys_by_id([key.verify_key()])
    payload = PassPayload(new_id("ticket"), 3, int(time.time()))
    token = encode_pass(payload, [key.sign(payload), other.sign(payload)])

    def sign() -> None:
        encode_pass(payload, [key.sign(payload)])

    def verify() -> None:
        verify_for_keys(decode_pass(token), one_list)

    verify_for_keys(decode_pass(token), keys)
    for scenario, action in (("pass sign", sign), ("pass verify", verify)):
        times = _micros(action, runs)
        median = statistics.median(times)
        out.rows.append(
            Row(
                IN_PROCESS,
                scenario,
                runs,
                runs,
                1e6 / median,
                median / 1000,
                load.percentile(times, 99) / 1000,
                None,
                median / 1000,
                None,
                0.0,
                0.0,
            )
        )
        out.notes.append(
            f"{IN_PROCESS} {scenario}: median {median:.1f} µs, p99 {load.percentile(times, 99):.1f} µs "
            f"over {runs:,} tokens (two signatures on the pass, one list's key to verify with)"
        )


async def run(options: Options) -> RunResult:
    out = RunResult()
    _passes(options, out)

    async def measure(configuration: Configuration) -> None:
        app = BenchApp()
        # The receiver of the outbound webhooks listens on loopback.
        with server_environment(webhook_poll_interval_seconds="0.05", outbound_allow_private="true"):
            async with (
                deployed(configuration, app.did, app.did_documents()) as server,
                load.pool(server.url, CONCURRENCY) as client,
            ):
                event = await app.event(client)
                tier = await app.tier_in_own_group(client, event, CAPACITY)
                stage = Stage(app, server, client, options, out, CONCURRENCY)
                await _issuance(stage, client, tier, options.quick)
                await _outbound(stage, options.quick)

    await each_configuration(options, out, measure)
    return out


def ratios(rows: Sequence[Row]) -> list[str]:
    """Issuance against the targets and pretix, SQLite against PostgreSQL, and the pass timings."""
    lines = []
    for c, row in measured(rows, "paid issuance"):
        target = c.rate_target(TARGET_RATE)
        lines.append(
            f"paid issuance  {c.name:<13} {row.rate:6.0f}/s "
            f"(p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms): "
            f"{ratio(row.rate, target)} the target {target:.0f}/s, {ratio(row.rate, PRETIX_RATE)} pretix"
        )
    sqlite, pg1, pg2 = (find(rows, c.name, "paid issuance") for c in CONFIGURATIONS)
    if sqlite and pg2:
        lines.append(
            f"paid issuance  SQLite 1p / PostgreSQL 2p: {ratio(sqlite.rate, pg2.rate)} (target >= 0.50x)"
        )
    if pg1 and pg2:
        lines.append(f"paid issuance  PostgreSQL 2p / 1p: {ratio(pg2.rate, pg1.rate)}")
    for c in CONFIGURATIONS:
        hooks = find(rows, c.name, "outbound webhooks")
        if hooks is not None:
            lines.append(
                f"webhooks       {c.name:<13} {hooks.rate:6.0f} deliveries/s, last after "
                f"{hooks.p99_ms / 1000:.2f} s (p99)"
            )
    sign, verify = find(rows, IN_PROCESS, "pass sign"), find(rows, IN_PROCESS, "pass verify")
    if sign:
        lines.append(f"pass sign      {sign.p50_ms * 1000:.1f} µs per token")
    if verify:
        us = verify.p50_ms * 1000
        lines.append(
            f"pass verify    {us:.1f} µs (decode + Ed25519, no revocation lookup): "
            f"{ratio(us, TARGET_VERIFY_US)} "
            f"the {TARGET_VERIFY_US:.0f} µs target, {ratio(us, PRETIX_VERIFY_US)} pretix sig1, "
            f"{ratio(us, RAW_ED25519_US)} raw Ed25519 there"
        )
    return lines


WORKLOAD = Workload(
    name="issuance",
    summary="paid issuance (hold, signed payment webhook, tickets), 8 in flight; "
    "pass sign/verify; outbound webhooks",
    run=run,
    ratios=ratios,
    against_floor={"paid issuance": floor.HOLD},
)

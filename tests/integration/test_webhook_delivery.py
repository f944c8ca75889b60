"""Outbound webhooks against a real receiver on loopback: signed, retried with jittered backoff under
a stable delivery id, logged, dead after the attempt budget, redriven; claims never overlap."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conftest import APP_DID
from sqlalchemy import func, select, update
from support.server import make_settings
from support.webhooks import (
    Receiver,
    add_webhook_app,
    attempts,
    delivery_worker,
    message,
    queue,
    wait_for_state,
    wait_until,
)

from server.cli.main import build_parser
from server.db.engine import Database
from server.db.models import OutboxMessage
from server.domain.common import SystemClock
from server.domain.outbox.delivery import (
    RECEIVER_UNREACHABLE,
    AttemptResult,
    claim_due,
    deliver,
    lease_ms,
    record,
)
from server.domain.outbox.service import enqueue, list_messages, redrive
from server.settings import Settings

FAST = {"webhook_poll_interval_seconds": 0.05, "webhook_backoff_base_seconds": 0.05}


class FixedJitter(random.Random):
    """Always draws the same fraction, so each delay is that fraction of its backoff ceiling."""

    def random(self) -> float:
        return 0.5


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


async def test_retries_until_delivered_under_one_delivery_id(
    db: Database, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    receiver.fail = 3
    app_id = await add_webhook_app(db, APP_DID, receiver.url)
    [delivery_id] = await queue(db, app_id)
    settings = make_settings(database_url, tmp_path, **FAST)
    async with delivery_worker(db, settings, rng=random.Random(1)):
        await wait_for_state(db, [delivery_id], "delivered")

    stored = await message(db, delivery_id)
    assert receiver.delivered == Counter({delivery_id: 1})
    assert [r.status for r in receiver.requests] == [500, 500, 500, 200]
    assert {(r.delivery_id, r.event_type, r.environment) for r in receiver.requests} == {
        (delivery_id, "ticket.voided", "test")
    }
    assert {r.body for r in receiver.requests} == {stored.body.encode()}
    assert json.loads(stored.body)["id"] == delivery_id
    log = await attempts(db, delivery_id)
    assert [(a.status_code, a.error) for a in log] == [(500, "HTTP 500")] * 3 + [(200, None)]
    assert all(a.response_excerpt == "ok" for a in log)
    assert (stored.attempts, stored.last_status, stored.last_error) == (3, 200, None)
    assert stored.delivered_ms is not None
    assert stored.delivered_ms >= log[-1].at_ms


async def backoff_delays(db: Database, settings: Settings, app_id: str, rng: random.Random) -> list[int]:
    """Queue a message to a receiver that always fails and drive it by hand, each attempt at exactly
    its due time, until it is dead; answers the delays between attempts."""
    [delivery_id] = await queue(db, app_id)
    delays: list[int] = []
    now_ms = SystemClock().now_ms()
    async with httpx.AsyncClient() as http:
        while True:
            [claimed] = await claim_due(db, now_ms, 10, lease_ms(settings))
            assert claimed.delivery_id == delivery_id
            result = await deliver(claimed, http, settings, now_ms)
            assert not result.delivered
            await record(db, claimed, result, settings, rng)
            stored = await message(db, delivery_id)
            if stored.state == "dead":
                return delays
            assert await claim_due(db, stored.next_attempt_ms - 1, 10, lease_ms(settings)) == []
            delays.append(stored.next_attempt_ms - (now_ms + result.latency_ms))
            now_ms = stored.next_attempt_ms


async def test_backoff_grows_to_the_cap_with_full_jitter(
    db: Database, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    receiver.fail = 1000
    settings = make_settings(
        database_url,
        tmp_path,
        webhook_backoff_base_seconds=1.0,
        webhook_backoff_cap_seconds=8.0,
        webhook_max_attempts=7,
    )
    app_id = await add_webhook_app(db, APP_DID, receiver.url)
    ceilings = [1000, 2000, 4000, 8000, 8000, 8000]

    assert await backoff_delays(db, settings, app_id, FixedJitter()) == [c // 2 for c in ceilings]
    jittered = await backoff_delays(db, settings, app_id, random.Random(7))
    assert all(0 <= d <= c for d, c in zip(jittered, ceilings, strict=True))
    assert len({round(d / c, 3) for d, c in zip(jittered, ceilings, strict=True)}) == len(ceilings)
    assert await backoff_delays(db, settings, app_id, random.Random(7)) == jittered


async def test_dead_after_the_attempt_budget_then_redriven(
    db: Database, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    receiver.fail = 3
    settings = make_settings(database_url, tmp_path, webhook_max_attempts=3, **FAST)
    app_id = await add_webhook_app(db, APP_DID, receiver.url)
    [delivery_id] = await queue(db, app_id)
    async with delivery_worker(db, settings, rng=random.Random(2)):
        await wait_for_state(db, [delivery_id], "dead")
        assert receiver.delivered == Counter()
        async with db.read() as session:
            [dead] = await list_messages(session, state="dead")
        assert (dead.delivery_id, dead.app_did, dead.attempts, dead.last_status, dead.last_error) == (
            delivery_id,
            APP_DID,
            3,
            500,
            "HTTP 500",
        )

        async with db.write() as session:
            assert await redrive(session, now_ms=SystemClock().now_ms()) == 1
        await wait_for_state(db, [delivery_id], "delivered")

    assert receiver.delivered == Counter({delivery_id: 1})
    assert [a.status_code for a in await attempts(db, delivery_id)] == [500, 500, 500, 200]
    assert len({r.body for r in receiver.requests}) == 1
    async with db.write() as session:
        assert await redrive(session, now_ms=SystemClock().now_ms()) == 0


async def test_receiver_down_or_slow_is_a_failed_attempt(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    down = Receiver()  # bound, never listening: connections are refused
    slow = Receiver(delay_s=2.0)
    await slow.start()
    settings = make_settings(
        database_url,
        tmp_path,
        webhook_timeout_seconds=0.3,
        webhook_poll_interval_seconds=0.05,
        webhook_backoff_base_seconds=60.0,
    )
    [to_down] = await queue(db, await add_webhook_app(db, "did:web:down.example", down.url))
    [to_slow] = await queue(db, await add_webhook_app(db, "did:web:slow.example", slow.url))

    async def both_tried() -> bool:
        return all([await attempts(db, to_down), await attempts(db, to_slow)])

    try:
        async with delivery_worker(db, settings) as worker:
            await wait_until(both_tried, what="an attempt at each receiver")
            assert not worker.done()
    finally:
        await slow.stop()
        await down.stop()

    [refused] = await attempts(db, to_down)
    assert refused.status_code is None
    assert refused.error == RECEIVER_UNREACHABLE
    [timed_out] = await attempts(db, to_slow)
    assert (timed_out.status_code, timed_out.error) == (None, RECEIVER_UNREACHABLE)
    assert 250 <= timed_out.latency_ms < 2000
    for delivery_id, attempt in ((to_down, refused), (to_slow, timed_out)):
        stored = await message(db, delivery_id)
        assert (stored.state, stored.attempts, stored.last_error) == ("pending", 1, attempt.error)


async def test_concurrent_claims_never_overlap(db: Database, database_url: str) -> None:
    app_id = await add_webhook_app(db, APP_DID, "http://127.0.0.1:9/unused")
    queued = await queue(db, app_id, 120)
    now_ms = SystemClock().now_ms()
    workers = [Database(database_url) for _ in range(4)]  # one pool each, like separate processes
    shares: list[list[str]] = [[] for _ in workers]
    try:
        while True:  # rounds in which every worker claims at the same moment
            batches = await asyncio.gather(*(claim_due(w, now_ms, 7, 60_000) for w in workers))
            if not any(batches):
                break
            for share, batch in zip(shares, batches, strict=True):
                share += [c.delivery_id for c in batch]
    finally:
        await asyncio.gather(*(w.dispose() for w in workers))
    claimed = [delivery_id for share in shares for delivery_id in share]
    assert sorted(claimed) == sorted(queued)
    assert all(shares)


async def test_a_claim_lapses_after_its_lease(db: Database) -> None:
    """What a worker that died while sending had claimed is due again once the lease is over."""
    [delivery_id] = await queue(db, await add_webhook_app(db, APP_DID, "http://127.0.0.1:9/unused"))
    now_ms = SystemClock().now_ms()
    [claimed] = await claim_due(db, now_ms, 10, 5_000)
    assert await claim_due(db, now_ms + 4_999, 10, 5_000) == []
    assert await claim_due(db, now_ms + 5_000, 10, 5_000) == [claimed]
    assert claimed.delivery_id == delivery_id


async def test_claims_take_the_oldest_due_first_with_where_each_goes(db: Database) -> None:
    """A claim takes due messages by due time, then by age, never one not yet due, and answers
    them in that order with their app's webhook address."""
    app_id = await add_webhook_app(db, APP_DID, "http://127.0.0.1:9/hooks")
    queued = await queue(db, app_id, 4)
    now_ms = SystemClock().now_ms()
    due = dict(zip(queued, (now_ms - 10, now_ms - 30, now_ms + 60_000, now_ms - 30), strict=True))
    async with db.write() as session:
        for delivery_id, due_ms in due.items():
            change = update(OutboxMessage).where(OutboxMessage.delivery_id == delivery_id)
            await session.execute(change.values(next_attempt_ms=due_ms))
    first = await claim_due(db, now_ms, 2, 60_000)
    assert [c.delivery_id for c in first] == [queued[1], queued[3]]
    assert {(c.webhook_url, c.attempts, c.lease_until_ms) for c in first} == {
        ("http://127.0.0.1:9/hooks", 0, now_ms + 60_000)
    }
    assert [c.delivery_id for c in await claim_due(db, now_ms, 10, 60_000)] == [queued[0]]
    assert await claim_due(db, now_ms, 10, 60_000) == []


async def test_a_late_success_still_delivers_and_keeps_the_first_delivery_time(
    db: Database, tmp_path: Path, database_url: str
) -> None:
    """Two workers sent the same message (the first one's lease ran out): both attempts are
    logged, and the message is delivered once, at the first success's time."""
    [delivery_id] = await queue(db, await add_webhook_app(db, APP_DID, "http://127.0.0.1:9/unused"))
    settings = make_settings(database_url, tmp_path)
    now_ms = SystemClock().now_ms()
    [slow] = await claim_due(db, now_ms, 10, 1_000)
    [fast] = await claim_due(db, now_ms + 1_000, 10, 1_000)
    rng = random.Random(0)
    await record(db, fast, AttemptResult(True, now_ms + 1_000, 5, status_code=204, excerpt=""), settings, rng)
    await record(db, slow, AttemptResult(True, now_ms, 3_000, status_code=200, excerpt="ok"), settings, rng)
    failed = AttemptResult(False, now_ms + 4_000, 5, status_code=500, excerpt="", error="HTTP 500")
    await record(db, fast, failed, settings, rng)
    stored = await message(db, delivery_id)
    assert (stored.state, stored.delivered_ms, stored.attempts) == ("delivered", now_ms + 1_005, 0)
    assert (stored.last_status, stored.last_error) == (200, None)
    log = await attempts(db, delivery_id)
    assert [(a.status_code, a.latency_ms, a.error) for a in log] == [
        (204, 5, None),
        (200, 3_000, None),
        (500, 5, "HTTP 500"),
    ]


async def test_no_webhook_url_queues_nothing(db: Database) -> None:
    app_id = await add_webhook_app(db, "did:web:quiet.example", None)
    async with db.write() as session:
        assert await enqueue(session, app_id, "test", "ticket.voided", {}, SystemClock().now_ms()) is None
    async with db.read() as session:
        assert await session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_cli_lists_and_redrives(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url, tmp_path, webhook_max_attempts=1)
    down = Receiver()

    async def one_dead_one_pending() -> list[str]:
        db = Database(database_url)
        try:
            app_id = await add_webhook_app(db, APP_DID, down.url)
            [first] = await queue(db, app_id)
            async with httpx.AsyncClient() as http:
                [claimed] = await claim_due(db, SystemClock().now_ms(), 10, lease_ms(settings))
                result = await deliver(claimed, http, settings, SystemClock().now_ms())
                await record(db, claimed, result, settings, random.Random(0))
            return [first, *await queue(db, app_id)]
        finally:
            await db.dispose()

    dead, pending = asyncio.run(one_dead_one_pending())
    down.sock.close()
    parser = build_parser()

    def tickets(*argv: str) -> list[str]:
        args = parser.parse_args(argv)
        args.func(args, settings)
        return capsys.readouterr().out.splitlines()

    header, *rows = tickets("webhooks", "list")
    assert re.split(" {2,}", header) == [
        "delivery id",
        "app",
        "env",
        "type",
        "state",
        "attempts",
        "last status",
        "created",
        "last error",
    ]
    assert [row.split()[0] for row in rows] == [pending, dead]  # newest first
    assert rows[1].split()[1:7] == [APP_DID, "test", "ticket.voided", "dead", "1", "-"]
    assert RECEIVER_UNREACHABLE in rows[1]
    assert [row.split()[0] for row in tickets("webhooks", "list", "--state", "dead")[1:]] == [dead]
    assert tickets("webhooks", "list", "--app", "did:web:other.example")[1:] == []

    assert tickets("webhooks", "redrive", "--all-dead") == ["redriven: 1 message(s), due now"]
    assert [row.split()[4] for row in tickets("webhooks", "list")[1:]] == ["pending", "pending"]
    with pytest.raises(SystemExit, match="1 of the given delivery ids were not found"):
        tickets("webhooks", "redrive", dead, "whd_unknown")
    with pytest.raises(SystemExit, match="--all-dead"):
        tickets("webhooks", "redrive")

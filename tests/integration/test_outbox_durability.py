"""The outbox survives a crash: messages a server failed to deliver (its receiver was down) are
delivered after ``kill -9`` and a restart, each exactly once, under its original delivery id and with
its original body."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest
from conftest import APP_DID
from support.serve_process import ServeProcess, run_tickets, server_env
from support.webhooks import Receiver, add_webhook_app, attempts, message, queue, wait_for_state, wait_until

from server.db.engine import Database

MESSAGES = 8


@pytest.mark.slow
async def test_undelivered_messages_survive_kill_and_restart(database_url: str, tmp_path: Path) -> None:
    receiver = Receiver()  # down: its port refuses connections until it starts
    db = Database(database_url)
    env = server_env(
        database_url,
        tmp_path,
        webhook_poll_interval_seconds=0.1,
        webhook_backoff_base_seconds=0.1,
        webhook_backoff_cap_seconds=1.0,
        webhook_timeout_seconds=2.0,
        webhook_max_attempts=1000,
    )
    try:
        await run_tickets(env, "db", "upgrade")
        delivery_ids = await queue(db, await add_webhook_app(db, APP_DID, receiver.url), MESSAGES)
        bodies = {d: (await message(db, d)).body.encode() for d in delivery_ids}

        async def each_failed_twice() -> bool:
            return all([len(await attempts(db, d)) >= 2 for d in delivery_ids])

        server = ServeProcess(env)
        await server.start()
        try:
            await wait_until(each_failed_twice, 30, "failed attempts at every message")
        finally:
            await server.stop(signal.SIGKILL)
        assert receiver.requests == []
        for delivery_id in delivery_ids:
            assert (await message(db, delivery_id)).state == "pending"

        await receiver.start()
        server = ServeProcess(env)
        await server.start()
        try:
            # A message claimed at the moment of the kill comes back when its lease (timeout + 30 s) ends.
            await wait_for_state(db, delivery_ids, "delivered", timeout_s=90)
        finally:
            await server.stop()
    finally:
        await receiver.stop()
        await db.dispose()

    assert receiver.delivered == Counter(dict.fromkeys(delivery_ids, 1))
    for received in receiver.requests:
        assert received.body == bodies[received.delivery_id]
        assert json.loads(received.body)["id"] == received.delivery_id

"""Idempotency keys while a first call is still running or has died, and the append-only ledger,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import IdempotencyKey
from server.domain import apps, ledger
from server.domain.caller import Caller
from server.domain.idempotency import app_scope, request_hash, run_once
from server.errors import IdempotencyKeyInFlight, IdempotencyKeyReused

LEASE_MS = 30_000


@pytest.fixture
async def caller(db: Database) -> Caller:
    async with db.write() as session:
        app = await apps.register_app(session, did="did:web:idem.example", environment="test", now_ms=0)
        await session.flush()
        return Caller(app.id, app.did, "test")


def answer(value: int) -> Any:
    async def work(_session: AsyncSession) -> dict[str, Any]:
        return {"value": value}

    return work


async def test_a_duplicate_of_a_running_call_is_a_conflict(db: Database, caller: Caller) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(_session: AsyncSession) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"value": 1}

    first = asyncio.create_task(
        run_once(db, app_scope(caller), "key-1", request_hash("m", {"a": 1}), 1000, LEASE_MS, slow, db.write)
    )
    await started.wait()
    with pytest.raises(IdempotencyKeyInFlight):
        await asyncio.wait_for(
            run_once(
                db,
                app_scope(caller),
                "key-1",
                request_hash("m", {"a": 1}),
                1001,
                LEASE_MS,
                answer(2),
                db.write,
            ),
            10,
        )
    release.set()
    assert await first == ({"value": 1}, False)
    assert await run_once(
        db, app_scope(caller), "key-1", request_hash("m", {"a": 1}), 1002, LEASE_MS, answer(3), db.write
    ) == (
        {"value": 1},
        True,
    )
    with pytest.raises(IdempotencyKeyReused):
        await run_once(
            db, app_scope(caller), "key-1", request_hash("m", {"a": 2}), 1003, LEASE_MS, answer(4), db.write
        )


async def test_a_crashed_call_releases_its_key_when_the_lease_lapses(db: Database, caller: Caller) -> None:
    async with db.write() as session:  # what a process killed mid-call leaves behind
        session.add(
            IdempotencyKey(
                scope=app_scope(caller),
                key="key-2",
                request_hash=request_hash("m", {"a": 1}),
                state="in_flight",
                lease_until_ms=5000,
                created_ms=0,
            )
        )
    with pytest.raises(IdempotencyKeyInFlight):
        await run_once(
            db, app_scope(caller), "key-2", request_hash("m", {"a": 1}), 4999, LEASE_MS, answer(1), db.write
        )
    assert await run_once(
        db, app_scope(caller), "key-2", request_hash("m", {"a": 1}), 5000, LEASE_MS, answer(7), db.write
    ) == (
        {"value": 7},
        False,
    )


async def test_a_failed_call_gives_its_key_back(db: Database, caller: Caller) -> None:
    async def boom(_session: AsyncSession) -> dict[str, Any]:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await run_once(
            db, app_scope(caller), "key-3", request_hash("m", {"a": 1}), 1000, LEASE_MS, boom, db.write
        )
    assert await run_once(
        db, app_scope(caller), "key-3", request_hash("m", {"a": 1}), 1001, LEASE_MS, answer(9), db.write
    ) == (
        {"value": 9},
        False,
    )


async def test_the_ledger_refuses_updates_and_deletes(db: Database) -> None:
    async with db.write() as session:
        session.add(
            ledger.entry(
                environment="test",
                event_id=None,
                subject="hold",
                subject_id="hold_1",
                action="held",
                actor=None,
                now_ms=1,
            )
        )
    for statement in ("UPDATE ledger SET action = 'forged'", "DELETE FROM ledger"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.write() as session:
                await session.execute(text(statement))
    async with db.read() as session:
        assert (await session.execute(text("SELECT action FROM ledger"))).scalars().all() == ["held"]

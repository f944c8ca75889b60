"""A server killed (-9) while desks upload check-in records loses nothing and counts nothing twice:
after a restart the desks send everything again and every record is stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from support.catalog import consenting
from support.serve_process import ServeProcess, run_tickets, server_env

from server.db.engine import Database, driver_of
from server.db.models import CheckInList, CheckInRecord
from server.domain import apps
from server.domain.caller import Caller
from server.domain.catalog import service as catalog
from server.domain.catalog.service import EventInput
from server.domain.checkin.door import RECORD, row_of
from server.domain.devices import service as devices
from server.domain.issuance.list_keys import Keyring, ensure_default_list, load_server_key
from server.errors import InvalidRequest
from server.settings import Settings
from sync.checkin import Direction, Reason, Verdict
from sync.records import Record

BATCH = 1000
BATCHES = 6


async def desk_for_new_list(db: Database, settings: Settings) -> tuple[str, str]:
    """An event with its default list and a pending desk for it; answers (list id, enrollment code)."""
    now = int(time.time() * 1000)
    async with db.write() as session:
        app = await apps.register_app(session, did="did:web:crash.example", environment="test", now_ms=now)
        await session.flush()
        caller = consenting(Caller(app.id, app.did, "test"), "did:plc:org")
        keyring = Keyring(load_server_key(settings))
        given = EventInput(uri="at://did:plc:org/e/crash", title="Crash")
        event = await catalog.ensure_event(session, caller, "did:plc:org", given, now, keyring=keyring)
        checklist = await ensure_default_list(session, keyring, event.id, now)
        made = await devices.create_enrollment(session, "test", [checklist.id], "Desk", now)
    return checklist.id, made.code


def records(device_id: str, list_id: str) -> list[list[dict[str, object]]]:
    """Refused scans (no ticket needed) in batches: only their storage is under test here."""
    now = int(time.time() * 1000)
    made = [
        Record(
            device_id,
            f"rec_{n:06d}",
            list_id,
            None,
            None,
            Direction.ENTRY,
            Verdict.REFUSE,
            Reason.INVALID,
            now + n,
        ).to_wire()
        for n in range(BATCH * BATCHES)
    ]
    return [made[i : i + BATCH] for i in range(0, len(made), BATCH)]


async def upload_all(
    http: httpx.AsyncClient, url: str, credential: str, batches: list[list[dict[str, object]]]
) -> None:
    headers = {"authorization": f"Bearer {credential}"}
    for batch in batches:
        response = await http.post(
            f"{url}/xrpc/tickets.atmosphere.uploadCheckIns", json={"records": batch}, headers=headers
        )
        assert response.status_code == 200, response.text


@pytest.mark.slow
async def test_server_killed_mid_upload_loses_and_doubles_nothing(database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url, tmp_path)
    await run_tickets(env, "db", "upgrade")
    db = Database(database_url)
    list_id, code = await desk_for_new_list(db, Settings(data_dir=tmp_path, database_url=database_url))
    server = ServeProcess(env)
    await server.start()
    async with httpx.AsyncClient(timeout=30) as http:
        enrolled = (
            await http.post(f"{server.url}/xrpc/tickets.atmosphere.enrollDevice", json={"code": code})
        ).json()
        credential = enrolled["credential"]
        batches = records(enrolled["deviceId"], list_id)
        uploading = asyncio.create_task(upload_all(http, server.url, credential, batches))
        for _ in range(3000):  # kill once the first batches are in, the rest in flight
            if await stored_count(db) > 0:
                break
            await asyncio.sleep(0.01)
        await server.stop(signal.SIGKILL)
        with contextlib.suppress(httpx.TransportError, AssertionError):
            await uploading
        assert 0 < await stored_count(db) < BATCH * BATCHES, (
            "the kill should land in the middle of the upload"
        )
        server = ServeProcess(env)
        await server.start()
        try:
            await upload_all(http, server.url, credential, batches)  # the desk resends everything unacked
            await upload_all(http, server.url, credential, batches)  # and a duplicate resend changes nothing
        finally:
            await server.stop()
    async with db.read() as session:
        distinct = await session.scalar(select(func.count(func.distinct(CheckInRecord.id))))
    assert await stored_count(db) == distinct == BATCH * BATCHES
    await db.dispose()


async def stored_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(CheckInRecord)) or 0)


async def test_an_upload_that_loses_a_race_for_its_records_is_told_to_retry(
    db: Database, tmp_path: Path
) -> None:
    """Two uploads of the same records at once on PostgreSQL: the one whose inserts wait for the
    other's and then collide answers "retry" (400), not a server error, and its retry answers
    "duplicate". The other upload is held open here, so the collision is certain."""
    if db.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: two uploads cannot interleave")
    settings = Settings(data_dir=tmp_path, database_url=db.url)
    list_id, code = await desk_for_new_list(db, settings)
    now = int(time.time() * 1000)
    async with db.write() as session:
        device_id = (await devices.redeem(session, code, "Desk", now)).device.id
    desk = Caller("", "", "test", device_id=device_id, device_lists=(list_id,))
    batch = [Record.from_wire(wire) for wire in records(device_id, list_id)[0][:3]]

    async with db.write() as session:
        (event_id,) = await session.scalars(select(CheckInList.event_id).where(CheckInList.id == list_id))
        await RECORD.insert(
            await driver_of(session),
            row_of(batch[0], environment="test", event_id=event_id, server_ms=now, kept=True),
        )  # held open: the upload's insert of this record waits for it
        losing = asyncio.create_task(devices.upload_records(db, desk, batch, now))
        for _ in range(3000):
            async with db.read() as watcher:
                waiting = await watcher.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                )
            if waiting or losing.done():
                break
            await asyncio.sleep(0.01)
        assert waiting == 1 and not losing.done()
    with pytest.raises(InvalidRequest, match="retry"):
        await losing
    assert await devices.upload_records(db, desk, batch, now) == ["duplicate", "stored", "stored"]

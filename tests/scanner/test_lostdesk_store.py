"""The desk's files at rest: private to the desk's user, the credential sealed (under the desk PIN
when there is one), and a store written by an older desk (ticket ids and the credential in clear)
rewritten on open without a trace of either."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import Harness
from support.folders import folder_bytes, leaks, modes

from scanner.desks import desk_settings, enrolled_desk, enrollment_code, frame, sell, tickets_scanner
from scanner_app.core.desk import DeskCore
from scanner_app.io import vault
from scanner_app.io.http_peer import HttpPeerClient
from scanner_app.io.sqlite_store import SqliteDeskStore
from scanner_app.start import open_desk
from sync.records import ticket_ref

PIN = "271828"


def credential_of(core: DeskCore) -> str:
    """The credential the desk authenticates with (held in memory only)."""
    server = core._server
    assert isinstance(server, HttpPeerClient)
    return server.credential


async def test_lostdesk_store_and_folder_are_private(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh" / "desk"
    core = await open_desk(desk_settings(fresh))
    await core.close()
    assert modes(fresh) == {".": 0o700, "scanner.sqlite3": 0o600}

    # A folder and a store made world-readable (by hand, an old desk, a careless copy) are fixed on open.
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    store = SqliteDeskStore(loose / "scanner.sqlite3")
    store.put_settings({"gate": "North"})
    for path in loose.iterdir():
        path.chmod(0o644)
    loose.chmod(0o755)
    core = await open_desk(desk_settings(loose))
    try:
        assert modes(loose) == {".": 0o700, **{name: 0o600 for name in modes(loose) if name != "."}}
        assert {"scanner.sqlite3", "scanner.sqlite3-wal"} <= set(modes(loose))
    finally:
        await core.close()
        store.close()


async def test_lostdesk_the_pin_seals_the_credential(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    folder = tmp_path / "desk"
    core = await enrolled_desk(harness, folder, [sale.main_list], pin=PIN)
    credential = credential_of(core)
    await core.close()
    secret = credential.partition(".")[2]
    assert all(secret.encode() not in content for content in folder_bytes(folder).values())
    assert not (folder / vault.KEY_FILE).exists()

    with pytest.raises(vault.PinRequired):
        await open_desk(desk_settings(folder))
    with pytest.raises(vault.WrongPin):
        await open_desk(desk_settings(folder), "314159")
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    core = await open_desk(desk_settings(folder, pin_file=pin_file))
    try:
        assert credential_of(core) == credential
        await core.sync_once()
        assert core.status().online and core.enrolled
    finally:
        await core.close()


async def test_lostdesk_without_a_pin_the_credential_is_not_in_the_store(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    folder = tmp_path / "desk"
    core = await enrolled_desk(harness, folder, [sale.main_list])
    secret = credential_of(core).partition(".")[2]
    await core.close()
    assert all(secret.encode() not in content for content in folder_bytes(folder).values())
    assert modes(folder)[vault.KEY_FILE] == 0o600  # the key that seals it lives beside the store
    core = await open_desk(desk_settings(folder))
    try:
        await core.sync_once()
        assert core.status().online
    finally:
        await core.close()


async def test_lostdesk_an_older_desks_store_is_rewritten_on_open(harness: Harness, tmp_path: Path) -> None:
    """An older desk kept the credential in its enrollment and ticket ids in its records: the first
    open seals the one and replaces the others by references, and vacuums the pages that held them."""
    sale = await sell(harness, 2)
    folder = tmp_path / "desk"
    core = await enrolled_desk(harness, folder, [sale.main_list], pin=PIN)
    credential = credential_of(core)
    await core.scan(sale.token(0))
    await core.close()
    db = sqlite3.connect(folder / "scanner.sqlite3", isolation_level=None)
    enrollment = json.loads(db.execute("SELECT value FROM meta WHERE key = 'enrollment'").fetchone()[0])
    db.execute(
        "UPDATE meta SET value = ? WHERE key = 'enrollment'",
        (json.dumps({**enrollment, "credential": credential}),),
    )
    db.execute("DELETE FROM meta WHERE key = 'credential'")
    db.execute("UPDATE records SET ticket_id = ?", (sale.ticket(0)["id"],))
    db.close()
    assert leaks(folder, sale.tickets[:1]) != []

    core = await open_desk(desk_settings(folder), PIN)
    try:
        assert credential_of(core) == credential
        assert [record.ticket_id for record in core.store.records()] == [ticket_ref(sale.ticket(0)["id"])]
    finally:
        await core.close()
    secret = credential.partition(".")[2]
    assert all(secret.encode() not in content for content in folder_bytes(folder).values())
    assert leaks(folder, sale.tickets) == []
    with pytest.raises(vault.PinRequired):  # sealed under the PIN it was opened with
        await open_desk(desk_settings(folder))


async def test_lostdesk_the_pin_on_the_command_line(harness: Harness, tmp_path: Path) -> None:
    """``enroll --pin-file`` seals the credential with the PIN; headless, a locked desk without its
    PIN stops with one line (exit status 2), and ``--pin-file`` opens it."""
    sale = await sell(harness, 1)
    data, pin_file = tmp_path / "desk", tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    code = await enrollment_code(harness, [sale.main_list])
    enrolled = await tickets_scanner(
        data, "enroll", f"tickets-enroll:{code}@{harness.server.url}", "--pin-file", str(pin_file)
    )
    assert enrolled[0] == 0
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), frame(sale.token(0), np.random.default_rng(0)))
    status, out, err = await tickets_scanner(data, "--headless", "--source", str(frames), SCANNER_PIN="")
    assert status == 2 and out == "" and len(err.splitlines()) == 1 and "locked with a PIN" in err
    status, out, _ = await tickets_scanner(
        data, "--pin-file", str(pin_file), "--headless", "--source", str(frames)
    )
    assert status == 0 and out.startswith("admit ok online ")

"""A lost desk: its data folder, taken after the desk scanned online and offline, checked in a
searched guest, synced and pulled another desk's records, gives away no guest's name, ticket
number or ticket id — not in any file's bytes, not through its records, not by the obvious
decryptions with what the folder holds — and still decides at the door once its PIN is given."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from conftest import Harness
from support.folders import leaks, modes

from scanner.desks import desk_settings, enrolled_desk, restart_server, sell
from scanner_app.io import vault
from scanner_app.io.sqlite_store import SqliteDeskStore
from scanner_app.start import open_desk
from sync.bundle import BundleError, open_entry, tier_refs
from sync.checkin import Reason, Verdict
from sync.passes import ticket_id_from_bytes
from sync.records import is_ticket_ref

PIN = "correct horse 4711"


def obvious_ids(folder: Path) -> list[str]:
    """Ticket ids a thief could make of what the store holds: every record's ticket reference and
    every entry's lookup key, read as the 16 bytes of a ticket id."""
    db = sqlite3.connect(folder / "scanner.sqlite3")
    try:
        refs = [r for (r,) in db.execute("SELECT ticket_id FROM records WHERE ticket_id IS NOT NULL")]
        lookups = [bytes(k) for (k,) in db.execute("SELECT lookup FROM ticket_entries")]
    finally:
        db.close()
    raw = [bytes.fromhex(ref.removeprefix("tref_")) for ref in refs] + [k * 2 for k in lookups]
    return [ticket_id_from_bytes(r) for r in raw]


async def test_lostdesk_a_stolen_folder_gives_away_no_guest(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 6, tiers=("Guest",))
    folder = tmp_path / "north"
    north = await enrolled_desk(harness, folder, [sale.main_list], pin=PIN)
    south = await enrolled_desk(harness, tmp_path / "south", [sale.main_list], "South door")
    try:
        assert (await north.scan(sale.token(0))).online
        for n in (1, 2):  # admitted at the other desk: North learns them by pulling
            assert (await south.scan(sale.token(n))).verdict is Verdict.ADMIT
        (match,) = await north.search("Guest 4")
        assert (await north.check_in_searched(match.ticket_id)).verdict is Verdict.ADMIT
        await asyncio.to_thread(harness.server.stop)
        offline = await north.scan(sale.token(3))
        assert offline.verdict is Verdict.ADMIT and not offline.online
        await restart_server(harness)
        await north.sync_once()
        assert north.status().pending_uploads == 0 and north.status().online
        assert south.enrollment is not None
        pulled = {record.device_id for record in north.store.records()}
        assert south.enrollment.device_id in pulled and "online" not in pulled
    finally:
        await north.close()
        await south.close()

    # The thief has the folder, and neither a pass nor the PIN.
    assert leaks(folder, sale.tickets) == []
    db = sqlite3.connect(folder / "scanner.sqlite3")
    tickets = [t for (t,) in db.execute("SELECT ticket_id FROM records WHERE ticket_id IS NOT NULL")]
    db.close()
    assert len(tickets) == 5 and all(is_ticket_ref(t) for t in tickets)
    store = SqliteDeskStore(folder / "scanner.sqlite3")
    try:
        entries = store.entries(sale.main_list)
        tiers = tier_refs(store.bundles()[sale.main_list].body["tiers"])
        sealed = store.setting("credential") or ""
    finally:
        store.close()
    assert len(entries) == 6
    for guess in obvious_ids(folder):
        for blob in entries.values():
            with pytest.raises(BundleError, match="does not open"):
                open_entry(guess, blob, tiers)
    assert not (folder / vault.KEY_FILE).exists()  # with a PIN the folder holds no key at all
    with pytest.raises(vault.PinRequired):
        vault.unseal(sealed, None, folder)
    for pin in ("0000", "1234", "4711", sale.main_list):
        with pytest.raises(vault.WrongPin):
            vault.unseal(sealed, pin, folder)
    assert modes(folder) == {".": 0o700, **{name: 0o600 for name in modes(folder) if name != "."}}

    # With the PIN, the desk still tells who came in, offline, from the references it keeps.
    await asyncio.to_thread(harness.server.stop)
    again = await open_desk(desk_settings(folder), PIN)
    try:
        for n in (0, 1, 3, 4):
            seen = await again.scan(sale.token(n))
            assert (seen.verdict, seen.reason, seen.online) == (
                Verdict.REFUSE,
                Reason.ALREADY_CHECKED_IN,
                False,
            ), n
        assert (await again.scan(sale.token(5))).verdict is Verdict.ADMIT
    finally:
        await again.close()
        await restart_server(harness)
    assert leaks(folder, sale.tickets) == []  # not even of the passes scanned

"""What the desk's screens read from the real core, against the real server on loopback: the
conflicts screen's rows from the desk's own merge state, the holder a pass shows (its own copy's,
never a later holder's), and a search match's check-in state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Harness
from support.desk_time import in_utc

from scanner.desks import enrolled_desk, restart_server, sell
from scanner_app.core.texts import clock
from sync.checkin import Reason, Verdict
from sync.records import ticket_ref


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from in_utc(monkeypatch)


async def test_doorui_conflict_rows_say_what_which_desks_and_when(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    north = await enrolled_desk(harness, tmp_path / "north", [sale.main_list], "North door")
    south = await enrolled_desk(harness, tmp_path / "south", [sale.main_list], "South door")
    await asyncio.to_thread(harness.server.stop)
    admitted = [await north.scan(sale.token(0))]
    # South scans clearly later: the desks' clock-offset estimates differ by a few milliseconds, so
    # two scans made within that spread have no order a test could name.
    await asyncio.sleep(0.5)
    admitted.append(await south.scan(sale.token(0)))
    assert [result.verdict for result in admitted] == [Verdict.ADMIT, Verdict.ADMIT]
    await restart_server(harness)
    for desk in (north, south, north):
        await desk.sync_once()
    try:
        (row,) = north.conflict_rows()
        assert (row.what, row.list_name) == ("Admitted twice", "Main entrance")
        assert row.desks == ("North door", "South door")  # in the records' order, the second one last
        assert row.at_ms is not None and row.conflict_id == north.conflicts[0].conflict_id
        (theirs,) = south.conflict_rows()
        assert theirs.conflict_id == row.conflict_id and theirs.at_ms == row.at_ms
        assert theirs.desks == row.desks
    finally:
        for desk in (north, south):
            await desk.close()


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
async def test_doorui_an_old_copy_never_shows_the_new_holder(
    harness: Harness, tmp_path: Path, online: bool
) -> None:
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list], bundle_refresh_seconds=0.01)
    moved = await harness.app.ok(
        "transferTicket", {"ticketId": sale.ticket(0)["id"], "attendeeName": "New Holder"}
    )
    await asyncio.sleep(0.02)
    await core.sync_once()  # the bundle delta carries the transfer
    if not online:
        await asyncio.to_thread(harness.server.stop)
    try:
        old = await core.scan(sale.token(0))
        assert (old.verdict, old.reason, old.online) == (Verdict.REFUSE, Reason.REVOKED, online)
        assert old.display_name is None
        new = await core.scan(moved["ticket"]["passToken"])
        assert (new.verdict, new.display_name) == (Verdict.ADMIT, "New Holder")
    finally:
        await core.close()


async def test_doorui_search_shows_each_match_check_in_state(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 2)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    try:
        admitted = await core.scan(sale.token(0))
        assert admitted.verdict is Verdict.ADMIT
        matches = {match.display_name: match.door_state for match in await core.search("GA")}
        (at,) = {
            clock(scan.at_ms) for scan in core.door.history(sale.main_list, ticket_ref(sale.ticket(0)["id"]))
        }
        assert matches == {"GA 0": f"checked in {at}", "GA 1": "not checked in"}
    finally:
        await core.close()

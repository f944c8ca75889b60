"""The desk's core against the real server: enrollment, and every kind of pass at the door decided
online (the server answers) and offline (the server is stopped: the desk decides with its bundle and
records) — the same verdicts and reasons either way; then every scan reaches the server once."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path

import pytest
from conftest import Harness

from scanner.desks import (
    desk_settings,
    enrolled_desk,
    enrollment_code,
    fresh_passes,
    restart_server,
    revoke,
    sell,
    server_records,
)
from scanner_app.core.desk import DeskNotReady, EnrollmentFailed, ScanResult
from scanner_app.core.ports import DeviceRevokedError
from scanner_app.start import open_desk
from sync.checkin import Direction, Reason, Verdict
from sync.merge import ConflictKind
from sync.passes import decode_pass, encode_pass


def forged(token: str) -> str:
    """The pass with one bit of its signature flipped."""
    decoded = decode_pass(token)
    first = decoded.signatures[0]
    bad = type(first)(first.key_id, bytes([first.signature[0] ^ 1]) + first.signature[1:])
    return encode_pass(decoded.payload, [bad, *decoded.signatures[1:]])


def expect(result: ScanResult, verdict: Verdict, reason: Reason, *, online: bool) -> None:
    assert (result.verdict, result.reason, result.online) == (verdict, reason, online), result


async def test_enrollment_by_code_or_scanned_text(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 2)
    core = await open_desk(desk_settings(tmp_path / "a"))
    assert not core.enrolled
    with pytest.raises(DeskNotReady):
        await core.scan(sale.token(0))
    with pytest.raises(EnrollmentFailed, match="unknown, used or expired"):
        await core.enroll(harness.server.url, "AAAA-BBBB-CCCC", "North door")
    code = await enrollment_code(harness, [sale.main_list])
    await core.enroll(harness.server.url, code.lower().replace("-", " "), "North door")
    assert core.enrolled and [item.id for item in core.lists] == [sale.main_list]
    assert core.selected_list is not None and core.selected_list.id == sale.main_list  # the only list
    assert core.counters().total_admissible == 2
    status = core.status()
    assert status.online and not status.stale and status.bundle_age_ms is not None
    with pytest.raises(EnrollmentFailed, match="already enrolled"):
        await core.enroll(harness.server.url, code, None)
    await core.close()

    reopened = await open_desk(desk_settings(tmp_path / "a"))
    assert reopened.enrolled and reopened.counters().total_admissible == 2
    await reopened.close()

    scanned = await open_desk(desk_settings(tmp_path / "b"))
    text = f"tickets-enroll:{await enrollment_code(harness, [sale.main_list])}@{harness.server.url}"
    await scanned.enroll("", text, "South door")
    assert scanned.enrolled and scanned.enrollment is not None
    assert scanned.enrollment.server_url == harness.server.url
    await scanned.close()


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
async def test_every_kind_of_pass_at_the_door(harness: Harness, tmp_path: Path, online: bool) -> None:
    sale = await sell(harness, 3, tiers=("GA", "VIP"))
    vip = await harness.app.ok(
        "createCheckInList",
        {"eventId": sale.event["id"], "name": "VIP lounge", "tierIds": [sale.tiers["VIP"]]},
    )
    vip_list = vip["checkInList"]["id"]
    tokens = await fresh_passes(harness, sale)
    ga, vip_pass = tokens[:3], tokens[3]
    lists = [sale.main_list, vip_list]
    core = await enrolled_desk(harness, tmp_path / "desk", lists, bundle_refresh_seconds=0.01)
    await harness.app.ok("voidTicket", {"ticketId": sale.ticket(2)["id"]})
    await asyncio.sleep(0.02)
    await core.sync_once()  # the bundle delta carries the void
    if not online:
        await asyncio.to_thread(harness.server.stop)

    first = await core.scan(ga[0])
    expect(first, Verdict.ADMIT, Reason.OK, online=online)
    assert (first.display_name, first.tier_title, first.headline) == ("GA 0", "GA", "Admitted")
    again = await core.scan(ga[0], source="camera")
    expect(again, Verdict.REFUSE, Reason.ALREADY_CHECKED_IN, online=online)
    assert again.first_entry is not None and again.first_entry.gate == "Gate 2"
    assert again.detail.startswith("Already checked in at ") and again.detail.endswith(
        "at Gate 2 (North door)"
    )
    expect(await core.scan(ga[2]), Verdict.REFUSE, Reason.VOIDED, online=online)
    expect(await core.scan(forged(ga[1])), Verdict.REFUSE, Reason.INVALID, online=online)
    expect(await core.scan("NOT A PASS", source="manual"), Verdict.REFUSE, Reason.INVALID, online=online)
    expect(await core.scan(ga[1], Direction.EXIT), Verdict.REFUSE, Reason.NOT_INSIDE, online=online)
    expect(await core.scan(ga[0], Direction.EXIT), Verdict.ADMIT, Reason.OK, online=online)
    assert core.counters().inside_now == 0 and core.counters().admitted_here == 1

    await core.select_list(vip_list, "Lounge")
    wrong = await core.scan(ga[1])
    expect(wrong, Verdict.REFUSE, Reason.WRONG_LIST, online=online)
    assert wrong.headline == "Not valid at this entrance"
    expect(await core.scan(vip_pass), Verdict.ADMIT, Reason.OK, online=online)
    assert core.counters() == type(core.counters())(1, 1, 3)

    if not online:
        await restart_server(harness)
    await core.sync_once()
    assert core.status().pending_uploads == 0 and core.status().online
    assert core.conflicts == []  # the server's record of an online scan is the desk's own, exactly
    assert core.enrollment is not None
    own = sqlite3.connect(core.settings.database_path).execute(
        "SELECT record_id FROM records WHERE device_id = ?", (core.enrollment.device_id,)
    )
    mine = sorted(row[0] for row in own)
    on_server = await server_records(harness, sale.main_list) + await server_records(harness, vip_list)
    assert sorted(r[1] for r in on_server if r[0] == core.enrollment.device_id) == mine
    assert len(mine) == 9
    await core.close()


async def test_offline_bundle_tells_genuine_from_forged_without_the_server(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    await asyncio.to_thread(harness.server.stop)
    token = sale.token(0)
    raw = bytearray(base64.b32decode(token + "=" * (-len(token) % 8)))
    raw[5] ^= 0x10  # another ticket id under the same signature
    expect(
        await core.scan(base64.b32encode(bytes(raw)).decode().rstrip("=")),
        Verdict.REFUSE,
        Reason.INVALID,
        online=False,
    )
    expect(await core.scan(token), Verdict.ADMIT, Reason.OK, online=False)
    await core.close()


async def test_undo_takes_back_the_last_admission(harness: Harness, tmp_path: Path) -> None:
    """An undone admission never happened, on this desk and everywhere its records go: on a list
    without re-entry the holder is admitted again, online and offline, and no conflict is raised."""
    sale = await sell(harness, 2)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    assert await core.undo_last() is None
    await core.scan(sale.token(0))
    assert core.counters().admitted_here == 1 and core.counters().inside_now == 1
    undone = await core.undo_last()
    assert undone is not None and undone.reason is Reason.UNDONE and undone.direction is Direction.ENTRY
    assert undone.headline == "Undone: check-in taken back" and "GA 0" in undone.detail
    assert core.counters().admitted_here == 0 and core.counters().inside_now == 0
    assert await core.undo_last() is None  # only the last admission, once
    await core.sync_once()  # the undo reaches the server
    expect(await core.scan(sale.token(0)), Verdict.ADMIT, Reason.OK, online=True)
    assert await core.undo_last() is not None
    await core.sync_once()
    assert [row[3] for row in await server_records(harness, sale.main_list)].count("undone") == 2
    lists = await harness.app.ok("listCheckInLists", {"eventId": sale.event["id"]})
    (main,) = [item for item in lists["checkInLists"] if item["id"] == sale.main_list]
    assert (main["counts"]["checkedIn"], main["counts"]["inside"]) == (0, 0)
    await asyncio.to_thread(harness.server.stop)
    expect(await core.scan(sale.token(0)), Verdict.ADMIT, Reason.OK, online=False)
    assert core.counters().admitted_here == 1 and core.counters().inside_now == 1
    await core.close()
    reopened = await open_desk(core.settings)
    assert reopened.counters().admitted_here == 1 and reopened.counters().inside_now == 1
    expect(await reopened.scan(sale.token(0)), Verdict.REFUSE, Reason.ALREADY_CHECKED_IN, online=False)
    await reopened.close()


async def test_an_online_scan_pulled_back_before_the_desk_stores_it(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stores an online check-in under the desk's own record id; a background pull can
    bring that record back before the scan's own write. The scan still answers, the record is kept
    once, nothing is queued to send again, and the counters count it once."""
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    client = core._server
    assert client is not None
    answer_first = client.check_in

    async def check_in_then_pull(body: dict[str, object], timeout_s: float) -> dict[str, object]:
        answer = await answer_first(body, timeout_s)
        await core.sync_once()  # the pull that races the scan's own write
        return answer

    monkeypatch.setattr(client, "check_in", check_in_then_pull)
    expect(await core.scan(sale.token(0)), Verdict.ADMIT, Reason.OK, online=True)
    assert len(core.store.records()) == 1
    assert core.status().pending_uploads == 0
    counters = core.counters()
    assert (counters.admitted_here, counters.inside_now) == (1, 1)
    await asyncio.to_thread(harness.server.stop)
    expect(await core.scan(sale.token(0)), Verdict.REFUSE, Reason.ALREADY_CHECKED_IN, online=False)
    await core.close()


async def test_scans_survive_a_restart_of_the_desk(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 2)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    await asyncio.to_thread(harness.server.stop)
    expect(await core.scan(sale.token(0)), Verdict.ADMIT, Reason.OK, online=False)
    await core.close()
    reopened = await open_desk(core.settings)
    assert reopened.status().pending_uploads == 1 and reopened.counters().inside_now == 1
    expect(await reopened.scan(sale.token(0)), Verdict.REFUSE, Reason.ALREADY_CHECKED_IN, online=False)
    await reopened.close()


async def test_a_revoked_desk_wipes_its_data(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    await core.scan(sale.token(0))
    assert core.enrollment is not None
    await revoke(harness, core.enrollment.device_id)
    with pytest.raises(DeviceRevokedError):
        await core.sync_once()
    assert not core.enrolled and core.revoked and core.status().problem is not None
    assert core.status().pending_uploads == 0
    await core.close()
    reopened = await open_desk(core.settings)
    assert not reopened.enrolled
    assert sqlite3.connect(core.settings.database_path).execute(
        "SELECT count(*) FROM records"
    ).fetchone() == (0,)
    await reopened.close()


async def test_two_offline_admissions_surface_as_a_conflict_on_both_desks(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    north = await enrolled_desk(harness, tmp_path / "north", [sale.main_list], "North door")
    south = await enrolled_desk(harness, tmp_path / "south", [sale.main_list], "South door")
    await asyncio.to_thread(harness.server.stop)
    for desk in (north, south):
        expect(await desk.scan(sale.token(0)), Verdict.ADMIT, Reason.OK, online=False)
    await restart_server(harness)
    for desk in (north, south, north):
        await desk.sync_once()
    for desk in (north, south):
        assert [c.kind for c in desk.conflicts] == [ConflictKind.DOUBLE_ADMISSION]
        assert desk.status().conflicts == 1 and desk.counters().inside_now == 1
        await desk.close()


async def test_manual_search_finds_by_name_or_number_and_checks_in(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 3)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    try:
        (match,) = await core.search("GA 1")
        assert match.display_name == "GA 1" and match.ticket_number == sale.ticket(1)["ticketNumber"]
        by_number = await core.search(sale.ticket(2)["ticketNumber"][:6].lower())
        assert sale.ticket(2)["ticketNumber"] in [m.ticket_number for m in by_number]
        assert match.ticket_id == sale.ticket(1)["id"]
        result = await core.check_in_searched(match.ticket_id)
        assert result.verdict.value == "admit" and result.online and result.display_name == "GA 1"
        again = await core.check_in_searched(match.ticket_id)
        assert again.reason.value == "already_checked_in"
    finally:
        await core.close()

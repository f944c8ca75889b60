"""The desk's core under pressure at one door: real passes typed by a keyboard-wedge scanner with
random pauses and chunks, a pass shown again just after its admission, and the status line after a
restart, and a manual admission seen at another door. Clocks are injected: nothing here depends on
the machine's speed."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from conftest import Harness

from scanner.desks import (
    SteppedClock,
    buy,
    desk_settings,
    enroll,
    enrolled_desk,
    restart_server,
    sell,
    server_records,
)
from scanner_app.core import texts
from scanner_app.core.desk import DeskNotReady
from scanner_app.core.wedge import ABANDON_S, WedgeDetector, WedgeRead
from scanner_app.start import open_desk
from sync.checkin import Reason, Verdict


def wedge_keys(text: str, rng: random.Random, at_s: float) -> tuple[list[tuple[str, float]], float]:
    """``text`` as a scanner's keys in random chunks (keys a stalled desk reads in one go share a
    time), with a random pause of 0-300 ms between chunks; answers the keys and the time after."""
    keys: list[tuple[str, float]] = []
    place = 0
    while place < len(text):
        chunk = text[place : place + rng.randint(1, 12)]
        at_s += rng.choice((0.002, 0.002, rng.uniform(0.0, 0.3)))
        keys += [(key, at_s) for key in chunk]
        place += len(chunk)
    return keys, at_s


async def test_wedge_scans_with_pauses_and_chunks_are_each_decided_once(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 6)
    desk = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    rng = random.Random(7)
    wedge, now = WedgeDetector(), 100.0
    reads: list[WedgeRead] = []
    cut: list[str] = []
    for n in range(6):
        token = sale.token(n)
        if n % 2:  # the scanner lost the end of the code first: a fragment, then a whole scan
            cut.append(token[: rng.randint(2, len(token) - 1)])
            keys, now = wedge_keys(cut[-1], rng, now + 2.0)
            reads += [read for key, at in keys if (read := wedge.feed(key, at)) is not None]
            now += ABANDON_S + 0.01
            reads += [read for read in [wedge.flush(now)] if read is not None]
        keys, now = wedge_keys(token + "\r", rng, now + 2.0)
        reads += [read for key, at in keys if (read := wedge.feed(key, at)) is not None]

    complete = [read.text for read in reads if read.complete]
    assert complete == [sale.token(n) for n in range(6)]  # each whole, once, in order
    assert [read.text for read in reads if not read.complete] == cut  # only ever "scan again"
    for text in complete:
        result = await desk.scan(text, source="wedge")
        assert (result.verdict, result.reason) == (Verdict.ADMIT, Reason.OK), result
    assert desk.counters().admitted_here == 6 and len(desk.store.records()) == 6
    await desk.close()


async def test_a_pass_shown_again_just_after_its_admission_is_just_admitted(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    clock = SteppedClock()
    settings = desk_settings(tmp_path / "desk", representation_seconds=5)
    desk = await enroll(harness, await open_desk(settings, clock=clock), [sale.main_list])
    admitted = await desk.scan(sale.token(0))
    assert (admitted.verdict, admitted.repeat) == (Verdict.ADMIT, False)
    clock.now_s += 4.9
    again = await desk.scan(sale.token(0), source="camera")
    assert (again.verdict, again.repeat, again.headline) == (Verdict.ADMIT, True, texts.JUST_ADMITTED)
    assert again.record == admitted.record and len(desk.store.records()) == 1  # nothing new recorded
    assert desk.counters().admitted_here == 1
    clock.now_s += 0.2
    late = await desk.scan(sale.token(0))
    assert (late.verdict, late.reason, late.repeat) == (Verdict.REFUSE, Reason.ALREADY_CHECKED_IN, False)
    assert len(desk.store.records()) == 2
    await desk.close()


async def test_the_status_keeps_the_last_sync_and_says_connecting_until_it_knows(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    desk = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    synced = desk.status()
    assert synced.link == "online" and synced.last_sync_ms is not None
    await desk.close()
    reopened = await open_desk(desk_settings(tmp_path / "desk"))
    status = reopened.status()
    assert (status.link, status.online, status.last_sync_ms) == ("connecting", False, synced.last_sync_ms)
    result = await reopened.scan(sale.token(0))
    assert (result.online, result.decided_by) == (True, "server") and reopened.status().link == "online"
    await reopened.close()


async def test_a_manual_admission_is_a_record_refused_at_other_doors(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 1)
    slow = {"bundle_refresh_seconds": 3600}  # the bundles stay as they were at enrollment
    north = await enrolled_desk(harness, tmp_path / "north", [sale.main_list], "North door", **slow)
    south = await enrolled_desk(harness, tmp_path / "south", [sale.main_list], "South door", **slow)
    _, (late,) = await buy(harness, sale.tiers["GA"], ["Late buyer"])  # after both bundles
    await asyncio.to_thread(harness.server.stop)

    with pytest.raises(DeskNotReady):
        await north.admit_by_hand("booking checked")  # nothing amber to admit yet
    amber = await north.scan(late["passToken"])
    assert (amber.verdict, amber.reason) == (Verdict.ATTENTION, Reason.UNKNOWN_TICKET)
    assert north.can_admit_by_hand
    manual = await north.admit_by_hand("  booking   checked on the phone ")
    assert (manual.verdict, manual.headline, manual.detail) == (
        Verdict.ADMIT,
        texts.ADMITTED_BY_HAND,
        "booking checked on the phone",
    )
    assert not north.can_admit_by_hand and north.counters().admitted_here == 1
    (stored,) = [r for r in north.store.records() if r.admitted]
    assert stored.manual_reason == "booking checked on the phone" and stored.ticket_id is not None

    await restart_server(harness)
    await north.sync_once()
    await south.sync_once()  # South pulls the manual admission
    assert north.status().pending_uploads == 0
    on_server = {(device, record): (decision, reason) for device, record, decision, reason in
                 await server_records(harness, sale.main_list)}  # fmt: skip
    assert on_server[(stored.device_id, stored.record_id)] == ("admit", "ok")
    online = await harness.app.ok("checkInTicket", {"ticketToken": late["passToken"]})
    assert online["status"] == "already_checked_in"  # the server counts it
    assert any(r.manual_reason for r in south.store.records())  # pulled, marked manual
    elsewhere = await south.scan(late["passToken"])
    assert (elsewhere.verdict, elsewhere.reason) == (Verdict.REFUSE, Reason.ALREADY_CHECKED_IN)
    await north.close()
    await south.close()

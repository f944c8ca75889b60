"""The scanning screen's side of the door under pressure: F7 admits an amber scan by hand after
asking why, and a wedge code cut short shows amber "incomplete scan", never a verdict."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import Harness
from textual import events

from scanner.desks import buy, enrolled_desk, sell
from scanner.test_ui import SIZE, Recorder, app_on, scan, shown, until
from scanner_app.core import texts
from scanner_app.core.wedge import ABANDON_S
from scanner_app.ui.messages import CodeScanned, ScanDecided, ScanFailed
from scanner_app.ui.screens.manual import ManualAdmissionScreen
from scanner_app.ui.screens.scanning import ScanningScreen
from sync.checkin import Reason, Verdict


async def test_f7_admits_an_amber_scan_by_hand(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path, [sale.main_list], bundle_refresh_seconds=3600)
    _, (late,) = await buy(harness, sale.tiers["GA"], ["Late buyer"])  # not in the desk's bundle
    await asyncio.to_thread(harness.server.stop)
    seen = Recorder()
    async with app_on(core).run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("f7")  # nothing amber yet: only a notice
        assert isinstance(pilot.app.screen, ScanningScreen)
        amber = await scan(pilot, seen, late["passToken"])
        assert amber.result.reason is Reason.UNKNOWN_TICKET and shown(pilot)[0] == "attention"
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(pilot.app.screen, ManualAdmissionScreen))
        await pilot.press("enter")  # the reason filled in
        await until(pilot, lambda: len(seen.of(ScanDecided)) == 2)
        manual = seen.of(ScanDecided)[-1]
        assert (manual.result.verdict, manual.source) == (Verdict.ADMIT, "manual")
        assert shown(pilot)[0] == "admit" and texts.ADMITTED_BY_HAND in shown(pilot)[1]
        assert manual.counters.admitted_here == 1
        (record,) = [r for r in core.store.records() if r.admitted]
        assert record.manual_reason == "booking checked by hand"


async def test_a_wedge_code_cut_short_shows_incomplete_scan(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path, [sale.main_list])
    seen = Recorder()
    async with app_on(core).run_test(size=SIZE, message_hook=seen) as pilot:
        for key in sale.token(0)[:20]:  # the scanner stops before its Enter
            pilot.app.post_message(events.Key(key, key))
        await pilot.pause(ABANDON_S + 0.3)
        await until(pilot, lambda: seen.of(ScanFailed))
        assert seen.of(ScanFailed)[0].problem == texts.INCOMPLETE_SCAN
        assert shown(pilot)[0] == "attention" and not seen.of(CodeScanned)
        assert core.store.records() == []  # nothing decided, nothing recorded

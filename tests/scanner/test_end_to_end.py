"""The issue's end-to-end run: a video of pass QR codes is the desk's camera. The desk decides each
pass as it comes into view; the server is stopped mid-way and the desk keeps deciding offline; the
server restarts on the same database; after sync every scan is on the server exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from conftest import Harness

from scanner.desks import Degradation, enrolled_desk, frame, restart_server, sell, server_records, write_video
from scanner_app.core.desk import ScanResult
from scanner_app.io.camera import watch
from scanner_app.io.decoders import make_decoder
from scanner_app.io.frames import open_source
from sync.checkin import Reason, Verdict

GAP = 12  # empty frames after each pass: it has left the view (> 1 s at 10 fps) when shown again
STOP_AFTER = 5  # decisions made online before the server stops


async def test_a_video_of_passes_through_a_server_outage(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 8)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    # (pass, expected reason): admissions, a repeat seen online, repeats seen offline of an online
    # and of an offline admission.
    shown = [(0, Reason.OK), (1, Reason.OK), (2, Reason.OK), (0, Reason.ALREADY_CHECKED_IN), (3, Reason.OK)]
    shown += [(4, Reason.OK), (5, Reason.OK), (1, Reason.ALREADY_CHECKED_IN), (6, Reason.OK)]
    shown += [(5, Reason.ALREADY_CHECKED_IN), (7, Reason.OK)]
    rng = np.random.default_rng(42)
    scenes: list[str | None] = []
    for n, _ in shown:
        scenes += [sale.token(n)] * 6 + [None] * GAP
    video = write_video(tmp_path / "camera.avi", (frame(s, rng, Degradation.moderate(rng)) for s in scenes))

    decided: list[ScanResult] = []

    async def decide(text: str) -> None:
        decided.append(await core.scan(text, source="camera"))
        if len(decided) == STOP_AFTER:
            await asyncio.to_thread(harness.server.stop)

    stop = asyncio.Event()
    syncing = asyncio.ensure_future(core.run_sync_forever(stop))
    source = open_source(str(video))
    assert source is not None
    await watch(source, make_decoder("zxing"), decide)

    assert [(r.reason, r.display_name) for r in decided] == [(reason, f"GA {n}") for n, reason in shown]
    assert [r.online for r in decided] == [True] * STOP_AFTER + [False] * (len(shown) - STOP_AFTER)
    assert all((r.verdict is Verdict.ADMIT) == (r.reason is Reason.OK) for r in decided)
    assert core.status().pending_uploads >= len(shown) - STOP_AFTER
    assert core.counters().admitted_here == 8 and core.counters().inside_now == 8

    await restart_server(harness)
    for _ in range(100):
        if core.status().online and core.status().pending_uploads == 0:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await syncing
    assert core.enrollment is not None
    on_server = [
        r for r in await server_records(harness, sale.main_list) if r[0] == core.enrollment.device_id
    ]
    assert sorted(r[1] for r in on_server) == sorted(r.record.record_id for r in decided)
    assert sorted((r[2], r[3]) for r in on_server) == sorted(
        (r.verdict.value, r.reason.value) for r in decided
    )
    listed = (await harness.app.ok("listCheckInLists", {"eventId": sale.event["id"]}))["checkInLists"]
    assert next(c for c in listed if c["id"] == sale.main_list)["counts"]["checkedIn"] == 8
    await core.close()

"""``tickets-scanner`` as door staff run it: enroll with the scanned text, join a hub, refuse what
cannot work, and run headless on a folder of frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from conftest import Harness

from scanner.desks import enrollment_code, frame, sell, tickets_scanner
from scanner_app.core.config import ScannerSettings
from scanner_app.start import open_desk


async def test_enroll_join_a_hub_and_scan_headless(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    data = tmp_path / "desk"
    assert (await tickets_scanner(data, "--headless", "--source", str(tmp_path)))[0] == 2  # not enrolled
    code = await enrollment_code(harness, [sale.main_list])
    status, out, _ = await tickets_scanner(data, "enroll", f"tickets-enroll:{code}@{harness.server.url}")
    assert status == 0 and sale.main_list in out
    assert (await tickets_scanner(data, "enroll", code, "--server", harness.server.url))[0] == 1  # enrolled
    assert (await tickets_scanner(data, "join-hub", "http://nowhere"))[0] == 2
    assert (await tickets_scanner(data, "join-hub", "tickets-hub:secret@http://127.0.0.1:9"))[0] == 0

    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), frame(sale.token(0), np.random.default_rng(0)))
    status, out, _ = await tickets_scanner(
        data, "--headless", "--source", str(folder), "--gate", "East", SCANNER_ONLINE_TIMEOUT_SECONDS="60"
    )  # a loaded machine must not push the scan offline
    assert status == 0
    assert out.startswith("admit ok online ") and "| Admitted | GA, ticket" in out
    assert (await tickets_scanner(data, "--headless", "--source", "98"))[0] == 1  # no camera there

    desk = await open_desk(ScannerSettings(data_dir=data))
    assert desk.gate == "East" and desk.store.setting("hub") == "tickets-hub:secret@http://127.0.0.1:9"
    await desk.close()

"""``kill -9`` of a headless desk, mid-scan and mid-upload: every decision it printed is in its
store (written before it was shown), and after a restart every scan reaches the server exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import Harness

from scanner.desks import Degradation, enrolled_desk, frame, restart_server, sell, server_records
from scanner_app.io.sqlite_store import SqliteDeskStore

SCANNER = Path(sys.executable).with_name("tickets-scanner")
PRINTED_BEFORE_KILL = 6

pytestmark = pytest.mark.slow


def pass_folder(folder: Path, tokens: list[str]) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(len(tokens))
    for n, token in enumerate(tokens):
        # Each pass, then an empty frame: a folder plays at 10 frames a second, and a pass shown
        # again further on has long left the view.
        cv2.imwrite(str(folder / f"{2 * n:04d}.png"), frame(token, rng, Degradation(blur=0.7, noise=5)))
        cv2.imwrite(str(folder / f"{2 * n + 1:04d}.png"), frame(None, rng))
    return folder


class Headless:
    """``tickets-scanner --headless --source FOLDER`` as a child process."""

    def __init__(self, data_dir: Path, source: Path, **settings: str) -> None:
        self.env = {
            **os.environ,
            "SCANNER_DATA_DIR": str(data_dir),
            "SCANNER_SYNC_INTERVAL_SECONDS": "0.2",
            "SCANNER_ONLINE_TIMEOUT_SECONDS": "2",
            **{f"SCANNER_{k.upper()}": v for k, v in settings.items()},
        }
        self.source = source
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Headless:
        self.process = await asyncio.create_subprocess_exec(
            str(SCANNER), "--headless", "--source", str(self.source),
            env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return self

    async def read_lines(self, count: int | None = None) -> None:
        """Collect printed decisions: ``count`` more, or until the process ends."""
        assert self.process is not None and self.process.stdout is not None
        while count is None or count > 0:
            raw = await asyncio.wait_for(self.process.stdout.readline(), 60)
            if not raw:
                return
            self.lines.append(raw.decode())
            count = None if count is None else count - 1

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.read_lines()  # whatever it printed before it died
        assert await self.process.wait() == -signal.SIGKILL

    async def run(self) -> int:
        await self.start()
        await self.read_lines()
        assert self.process is not None
        return await self.process.wait()

    def decisions(self) -> dict[str, tuple[str, str]]:
        """Printed record id -> (verdict, reason)."""
        return {line.split()[4]: (line.split()[0], line.split()[1]) for line in self.lines}


async def test_kill_9_mid_scan_and_mid_upload_loses_and_doubles_nothing(
    harness: Harness, tmp_path: Path
) -> None:
    sale = await sell(harness, 30)
    desk = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    assert desk.enrollment is not None
    device = desk.enrollment.device_id
    await desk.close()
    data = tmp_path / "desk"
    tokens = [sale.token(n) for n in range(30)]
    await asyncio.to_thread(harness.server.stop)

    # Offline, killed while scanning: what it printed is what it stored.
    first = await Headless(data, pass_folder(tmp_path / "first", tokens[:20])).start()
    await first.read_lines(PRINTED_BEFORE_KILL)
    await first.kill()
    printed = first.decisions()
    assert len(printed) >= PRINTED_BEFORE_KILL
    stored = {
        r.record_id: (r.decision.value, r.reason.value)
        for r in SqliteDeskStore(data / "scanner.sqlite3").records()
    }
    assert printed.items() <= stored.items()

    # Restarted, still offline: the rest, and passes shown again are refused from the stored records.
    scanned = len(stored)
    second = Headless(data, pass_folder(tmp_path / "second", tokens[:3] + tokens[scanned:]))
    assert await second.run() == 0
    repeats = [line.split()[4] for line in second.lines[:3]]
    assert {second.decisions()[record] for record in repeats} == {("refuse", "already_checked_in")}
    printed |= second.decisions()

    # The server is back: killed in the middle of uploading one record per request, then restarted.
    await restart_server(harness)
    empty = tmp_path / "empty"
    empty.mkdir()
    third = await Headless(data, empty, upload_batch_size="1").start()
    for _ in range(600):
        held = len([r for r in await server_records(harness, sale.main_list) if r[0] == device])
        if held:
            break
        await asyncio.sleep(0.02)
    await third.kill()
    assert 0 < held < len(printed)
    assert await Headless(data, empty).run() == 0

    store = SqliteDeskStore(data / "scanner.sqlite3")
    mine = {r.record_id: (r.decision.value, r.reason.value) for r in store.records() if r.device_id == device}
    on_server = [r for r in await server_records(harness, sale.main_list) if r[0] == device]
    assert len(on_server) == len({r[1] for r in on_server}) == len(mine) == scanned + 3 + 30 - scanned
    assert {r[1]: (r[2], r[3]) for r in on_server} == mine
    assert printed.items() <= mine.items()
    assert sum(decision == ("admit", "ok") for decision in mine.values()) == 30
    assert not store.pending()

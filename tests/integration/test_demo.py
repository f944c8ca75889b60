"""The README's main command, end to end on the embedded SQLite default: ``tickets demo --headless``
seeds the demo event, sells the guests' tickets through dev payments, serves, enrolls a desk and
scans every pass image. A second run reuses the data: the same guests are already inside."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

GUESTS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo(data_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETS_", "SCANNER_"))}
    env["TICKETS_DATA_DIR"] = str(data_dir)
    finished = subprocess.run(
        [str(Path(sys.executable).with_name("tickets")), "demo", "--headless", "--port", str(free_port())],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout + finished.stderr


def test_the_main_command_runs_the_whole_story(tmp_path: Path) -> None:
    first = demo(tmp_path)
    assert "offer code    COMMUNITY" in first
    assert len(re.findall(r"^admit ok online ", first, re.M)) == GUESTS, first
    assert "done: 0 records waiting for upload" in first
    assert len(list((tmp_path / "demo" / "passes").glob("*.png"))) == GUESTS

    again = demo(tmp_path)
    assert len(re.findall(r"^refuse already_checked_in online ", again, re.M)) == GUESTS, again

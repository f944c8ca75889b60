"""Several server processes starting together on one data folder must all end with the same,
complete key file (a half-written key made a second worker fail at startup)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from server.keyfiles import read_or_create

STARTERS = 8
SLOW_MAKE_S = 0.2


def _start_together(reader: Callable[[Path, Callable[[], bytes]], bytes], path: Path) -> list[bytes]:
    """Every starter finds no file, then makes its key slowly, as a loaded machine would."""
    barrier = threading.Barrier(STARTERS)
    results: list[bytes] = []

    def make() -> bytes:
        time.sleep(SLOW_MAKE_S)
        return os.urandom(32)

    def start() -> None:
        barrier.wait()
        results.append(reader(path, make))

    threads = [threading.Thread(target=start) for _ in range(STARTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _create_then_write(path: Path, make: Callable[[], bytes]) -> bytes:
    """The earlier way: claim the name first, write the key after."""
    if not path.exists():
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(make())
    return path.read_bytes()


def test_processes_starting_together_all_read_one_whole_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "key"
    results = _start_together(read_or_create, path)
    assert len(results) == STARTERS
    assert {len(result) for result in results} == {32}
    assert len(set(results)) == 1
    assert results[0] == path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    assert [entry.name for entry in path.parent.iterdir()] == ["key"]  # no temporary file left


def test_the_race_is_real_without_the_link(tmp_path: Path) -> None:
    """Negative control: claiming the name before writing lets the others read an empty key."""
    path = tmp_path / "key"
    results = _start_together(_create_then_write, path)
    assert b"" in results


def test_an_existing_key_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"kept")
    assert read_or_create(path, lambda: b"fresh") == b"kept"

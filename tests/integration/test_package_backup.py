"""``tickets db backup`` then ``tickets db restore`` into a fresh database: every table comes back
with as many rows, on SQLite and on PostgreSQL; ``tickets db prune-functions`` drops what earlier
versions made."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import CursorResult
from support.databases import create_pg_database, drop_pg_database

from server.db.engine import Database
from server.db.models import Base
from server.demo import seed_demo
from server.settings import Settings, get_settings


def tickets(database_url: str, folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": ":".join(sys.path),
        "TICKETS_DATA_DIR": str(folder / "data"),
        "TICKETS_DATABASE_URL": database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "server", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def row_counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.read() as session:
            counts = {
                t.name: await session.scalar(select(func.count()).select_from(t)) or 0
                for t in Base.metadata.sorted_tables
            }
            counts["alembic_version"] = len(
                (await session.execute(text("SELECT version_num FROM alembic_version"))).all()
            )
            return counts
    finally:
        await db.dispose()


async def on(url: str, sql: str) -> list[tuple[object, ...]]:
    """``sql`` run on ``url`` by a connection of this version (which makes the functions it sends
    reads through, at its first checkout), in a transaction of its own; its rows, if any."""
    db = Database(url)
    try:
        async with db.write() as session:
            result = await session.execute(text(sql))
            returns_rows = isinstance(result, CursorResult) and result.returns_rows
            return [tuple(row) for row in result] if returns_rows else []
    finally:
        await db.dispose()


async def connected(url: str) -> None:
    """A connection of this version to ``url``, which makes the functions it sends reads through."""
    await on(url, "SELECT 1")


@pytest.fixture
def seeded(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The demo's app, event, tiers, offer, lists, sold tickets and desk enrollment in the database."""
    monkeypatch.setenv("TICKETS_DATABASE_URL", database_url)
    monkeypatch.setenv("TICKETS_DATA_DIR", str(tmp_path / "data"))
    for name in ("TICKETS_DID_DOCS", "TICKETS_OUTBOUND_ALLOW_PRIVATE", "TICKETS_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    seed_demo(Settings(), port=8080)
    get_settings.cache_clear()
    return database_url


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the same engine."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'tickets.sqlite3'}"
        return
    url = asyncio.run(create_pg_database(migrated=False))
    yield url
    asyncio.run(drop_pg_database(url))


def test_a_restored_backup_has_every_row(seeded: str, fresh_url: str, tmp_path: Path) -> None:
    before = asyncio.run(row_counts(seeded))
    assert before["tickets"] == 8
    assert sum(1 for count in before.values() if count) >= 10
    out = tmp_path / "tickets.backup"

    saved = tickets(seeded, tmp_path, "db", "backup", "--out", str(out))
    assert saved.returncode == 0, saved.stderr
    if not fresh_url.startswith("sqlite"):  # SQLite restores into a new file, which nothing opened
        asyncio.run(connected(fresh_url))  # what a server connecting first makes is not in the way
    restored = tickets(fresh_url, tmp_path, "db", "restore", str(out))
    assert restored.returncode == 0, restored.stderr

    assert asyncio.run(row_counts(fresh_url)) == before
    assert tickets(fresh_url, tmp_path, "db", "upgrade").returncode == 0


def test_a_backup_restores_only_into_an_empty_database(seeded: str, tmp_path: Path) -> None:
    out = tmp_path / "tickets.backup"
    assert tickets(seeded, tmp_path, "db", "backup", "--out", str(out)).returncode == 0
    again = tickets(seeded, tmp_path, "db", "backup", "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: {out} already exists: choose a new file for the backup"
    into_itself = tickets(seeded, tmp_path, "db", "restore", str(out))
    assert into_itself.returncode == 2
    assert "restore into a new" in into_itself.stderr
    assert "Traceback" not in into_itself.stderr


def test_a_file_that_is_no_backup_is_refused(database_url: str, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    done = tickets(database_url, tmp_path, "db", "restore", str(junk))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("database by `tickets db backup`")


FUNCTIONS_MADE = (
    "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname = 'tickets_functions'"
)
AN_EARLIER_VERSIONS_FUNCTION = (
    "CREATE FUNCTION tickets_functions.tickets_hold_reads_0123456789abcdef(text) "
    "RETURNS integer LANGUAGE sql AS 'SELECT 1'"
)


def functions_made(url: str) -> set[str]:
    """The functions in the schema, but this test process's own (``tickets_test_…``, of the engine's
    tests): the connection that reads them makes them again if this process has them."""
    made = {str(name) for (name,) in asyncio.run(on(url, FUNCTIONS_MADE))}
    return {name for name in made if not name.startswith("tickets_test_")}


def test_functions_of_earlier_versions_are_pruned_and_this_ones_kept(
    database_url: str, tmp_path: Path
) -> None:
    """``tickets db prune-functions`` drops the functions an earlier version made, keeps the ones
    this version sends reads through, and on SQLite says there are none."""
    pruned = tickets(database_url, tmp_path, "db", "prune-functions")
    assert pruned.returncode == 0, pruned.stderr
    if database_url.startswith("sqlite"):
        assert pruned.stdout.startswith("nothing to prune: SQLite")
        return
    asyncio.run(connected(database_url))  # this version's functions, made at the first checkout
    ours = functions_made(database_url)
    assert {"tickets_hold_reads", "tickets_scan_reads_locked"} <= {name.rsplit("_", 1)[0] for name in ours}
    asyncio.run(on(database_url, AN_EARLIER_VERSIONS_FUNCTION))
    pruned = tickets(database_url, tmp_path, "db", "prune-functions")
    assert pruned.returncode == 0, pruned.stderr
    dropped = [line for line in pruned.stdout.splitlines() if line.startswith("dropped ")]
    # The engine's tests' own functions, if this process made them, are not this version's either.
    assert [line for line in dropped if "tickets_test_" not in line] == [
        "dropped tickets_functions.tickets_hold_reads_0123456789abcdef"
    ]
    assert functions_made(database_url) == ours

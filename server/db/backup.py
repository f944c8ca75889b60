"""``tickets db backup`` and ``tickets db restore``: a whole database to one file and back.

SQLite is copied with its online backup API, page by page while the server keeps serving; the
file is a SQLite database itself. PostgreSQL goes through ``pg_dump --format=custom`` and
``pg_restore`` (PostgreSQL's client tools, which must be installed). A backup restores into a new,
empty database of the same engine; ``tickets db upgrade`` then brings an older backup's schema to
the running version.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

from server.db.engine import FUNCTIONS_SCHEMA
from server.db.migrate import current_revision
from server.operator_errors import OperatorError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


def _sqlite_path(url: str) -> Path:
    return Path(url.partition("://")[2][1:])


def _libpq_url(url: str) -> str:
    """The URL as PostgreSQL's own tools read it (no SQLAlchemy driver name)."""
    return "postgresql://" + url.partition("://")[2]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise OperatorError(
            f"{name} is not installed: install PostgreSQL's client tools (Debian: apt-get install "
            "postgresql-client) of the server's major version"
        )
    return path


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603  (our arguments)
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), "no message")
        raise OperatorError(f"{Path(argv[0]).name} failed: {first}")


def backup(url: str, out: Path) -> None:
    """Write the whole database at ``url`` to ``out`` (which must not exist yet)."""
    if out.exists():
        raise OperatorError(f"{out} already exists: choose a new file for the backup")
    if url.startswith("sqlite"):
        source = _sqlite_path(url)
        if not source.exists():
            raise OperatorError(f"there is no SQLite database at {source} to back up")
        with (
            contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as reader,
            contextlib.closing(sqlite3.connect(out)) as writer,
        ):
            reader.backup(writer)
        return
    asyncio.run(current_revision(url))  # an unreachable server or missing database is told plainly
    # The functions reads are sent through are left out: a server makes them again (engine.Together).
    dump = [
        _tool("pg_dump"),
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        f"--exclude-schema={FUNCTIONS_SCHEMA}",
        "--file",
        str(out),
    ]
    _run([*dump, _libpq_url(url)])


def restore(url: str, backup_file: Path) -> None:
    """Fill the new, empty database at ``url`` from ``backup_file``."""
    try:
        with backup_file.open("rb") as file:
            magic = file.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise OperatorError(f"cannot read the backup {backup_file}: {exc.strerror}") from None
    sqlite = url.startswith("sqlite")
    expected, engine = (SQLITE_MAGIC, "SQLite") if sqlite else (PG_DUMP_MAGIC, "PostgreSQL")
    if not magic.startswith(expected):
        raise OperatorError(f"{backup_file} is not a backup of a {engine} database by `tickets db backup`")
    if sqlite:
        target = _sqlite_path(url)
        if target.exists() and target.stat().st_size > 0:
            raise OperatorError(f"{target} already exists: restore into a new database file")
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            contextlib.closing(sqlite3.connect(backup_file)) as reader,
            contextlib.closing(sqlite3.connect(target)) as writer,
        ):
            reader.backup(writer)
        return
    revision = asyncio.run(current_revision(url))
    if revision is not None:
        raise OperatorError(
            f"the database already has a schema (revision {revision}): restore into a new, empty database"
        )
    _run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            _libpq_url(url),
            str(backup_file),
        ]
    )

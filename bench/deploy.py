"""Real servers to measure: a fresh database, ``tickets serve`` as a subprocess on loopback, and the
cleanup that runs however the benchmark ends (servers stopped, databases dropped, folders removed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Executable

from bench import procfs
from server.db.engine import Database

ROOT = Path(__file__).resolve().parent.parent
SERVICE_DID = "did:web:tickets.bench"
PG_ADMIN_URL = os.environ.get("TICKETS_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
START_TIMEOUT_S = 60.0

_live_groups: set[int] = set()
_live_databases: set[str] = set()


class BenchSetupError(RuntimeError):
    """The server or its database could not be prepared."""


@dataclass(frozen=True)
class Configuration:
    """One way of deploying the server."""

    name: str
    backend: Literal["sqlite", "postgresql"]
    workers: int

    def rate_target(self, postgresql_rate: float) -> float:
        """The rate this deployment is held to: SQLite's target is half the PostgreSQL rate."""
        return postgresql_rate / 2 if self.backend == "sqlite" else postgresql_rate


CONFIGURATIONS = (
    Configuration("SQLite 1p", "sqlite", 1),
    Configuration("PostgreSQL 1p", "postgresql", 1),
    Configuration("PostgreSQL 2p", "postgresql", 2),
)


@dataclass(frozen=True)
class Server:
    """A running ``tickets serve`` process group."""

    configuration: Configuration
    url: str
    process: subprocess.Popen[bytes]
    database_url: str

    def serving_pids(self) -> list[int]:
        """The processes that answer requests: the uvicorn workers, or the one process."""
        workers = [
            pid
            for pid in procfs.descendants(self.process.pid)
            if "resource_tracker" not in procfs.command_line(pid)
        ]
        return workers or [self.process.pid]

    def peak_rss_mb(self) -> float | None:
        """The largest peak resident set (``VmHWM``) of the serving processes since they started."""
        peaks = [kb for pid in self.serving_pids() if (kb := procfs.memory_kb(pid)) is not None]
        return max(peaks) / 1024 if peaks else None


async def read_scalar(server: Server, statement: Executable) -> Any:
    """One value read from ``server``'s database, the way the server reads it (after a phase: the
    correctness checks believe the database, not the answers)."""
    db = Database(server.database_url)
    try:
        async with db.read() as session:
            return await session.scalar(statement)
    finally:
        await db.dispose()


def dsn(url: str) -> str:
    """The asyncpg form of a SQLAlchemy PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_sql(statement: str) -> None:
    conn = await asyncpg.connect(dsn(PG_ADMIN_URL), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database() -> str:
    """A new, empty PostgreSQL database ``tickets_bench_*``; answers its URL."""
    name = f"tickets_bench_{uuid.uuid4().hex[:10]}"
    _live_databases.add(name)
    await _admin_sql(f'CREATE DATABASE "{name}"')
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(name: str) -> None:
    await _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _live_databases.discard(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _tickets(env: Mapping[str, str], *args: str) -> None:
    """Run one ``python -m server`` command; raise with its output when it fails."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    if proc.returncode != 0:
        raise BenchSetupError(f"`tickets {' '.join(args)}` failed:\n{output.decode(errors='replace')}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


async def _wait_healthy(health_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchSetupError(f"the server exited with {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(health_url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise BenchSetupError(f"the server did not answer within {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole process group, SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    _live_groups.discard(process.pid)


@contextlib.asynccontextmanager
async def running(
    configuration: Configuration,
    command: list[str],
    env: Mapping[str, str],
    folder: Path,
    database_url: str,
    health_path: str,
) -> AsyncIterator[Server]:
    """``command --port P --workers N`` as a process group on loopback, logging into ``folder``,
    once ``health_path`` answers 200; stopped on the way out (its log printed if it failed)."""
    port = _free_port()
    log = folder / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: ASYNC220 (a long-lived child, not awaited)
            [*command, "--port", str(port), "--workers", str(configuration.workers)],
            cwd=ROOT,
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _live_groups.add(process.pid)
    try:
        server_url = f"http://127.0.0.1:{port}"
        await _wait_healthy(server_url + health_path, process, log)
        yield Server(configuration, server_url, process, database_url)
    except BaseException:
        print(f"--- {configuration.name} server log ---\n{_tail(log)}", file=sys.stderr)
        raise
    finally:
        await asyncio.to_thread(_stop, process)


@contextlib.asynccontextmanager
async def deployed(
    configuration: Configuration, app_did: str, did_documents: list[dict[str, Any]]
) -> AsyncIterator[Server]:
    """A migrated database with ``app_did`` registered in ``test``, and a server on it that resolves
    the given DID documents."""
    folder = Path(tempfile.mkdtemp(prefix="tickets-bench-"))
    did_docs = folder / "did-docs"
    did_docs.mkdir()
    for n, document in enumerate(did_documents):
        (did_docs / f"bench-{n}.json").write_text(json.dumps(document))
    database = ""
    try:
        if configuration.backend == "postgresql":
            url = await create_database()
            database = make_url(url).database or ""
        else:
            url = f"sqlite+aiosqlite:///{folder / 'tickets.sqlite3'}"
        env = {
            **os.environ,
            "TICKETS_DATABASE_URL": url,
            "TICKETS_SERVICE_DID": SERVICE_DID,
            "TICKETS_DID_DOCS": str(did_docs),
            "TICKETS_DATA_DIR": str(folder),
            "TICKETS_PLC_URL": "http://127.0.0.1:9",
            "TICKETS_RATE_LIMITS_ENABLED": "false",  # the load is one app from one address
        }
        if configuration.backend == "postgresql":
            await _tickets(env, "db", "upgrade")
        await _tickets(env, "app", "add", "--did", app_did, "--environment", "test")
        command = [sys.executable, "-m", "server", "serve", "--log-level", "warning"]
        async with running(configuration, command, env, folder, url, "/xrpc/_health") as server:
            yield server
    finally:
        if database:
            await drop_database(database)
        shutil.rmtree(folder, ignore_errors=True)


def cleanup_leftovers() -> None:
    """Stop any server and drop any database an interrupted run left behind."""
    for group in list(_live_groups):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        _live_groups.discard(group)
    for name in list(_live_databases):
        with contextlib.suppress(Exception):
            asyncio.run(drop_database(name))

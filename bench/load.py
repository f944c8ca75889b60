"""Driving load: pre-signed requests sent with a fixed number in flight, by ``wrk`` (independent
requests, :mod:`bench.wrk`), by raw keep-alive connections in this process (requests whose answers
lead to further calls), or by an ``httpx`` pool (warm-ups); and what one timed phase cost (latency,
outcomes, CPU of the load generator, server and database, peak memory)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx

from bench import procfs, wrk
from bench.deploy import Server

Drive = Callable[[], Awaitable[wrk.Driven]]


def pool(base_url: str, concurrency: int) -> httpx.AsyncClient:
    """A client keeping one connection per concurrent caller alive."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(120.0))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def outcome(response: httpx.Response) -> str:
    """``200``, or the status with the XRPC error name (``409 SoldOut``)."""
    return outcome_of(response.status_code, response.content)


def outcome_of(status: int, body: bytes) -> str:
    if status == 200:
        return "200"
    try:
        error = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        error = ""
    return f"{status} {error}".strip()


@dataclass(frozen=True)
class Phase:
    """One timed phase. CPU figures are milliseconds per request; ``client`` is the load generator
    (this process, and wrk when it drove the phase); ``database`` is every PostgreSQL process on the
    machine (None on SQLite, where the database runs inside the server); ``tools`` the benchmark's own
    helpers (the profiler), in cores; ``others`` the busiest processes outside the benchmark, in cores
    (noise from other work)."""

    requests: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    outcomes: Counter[str]
    server_cpu_ms: float
    database_cpu_ms: float | None
    client_cpu_ms: float
    worker_cpu_share: list[float]
    machine_busy_cores: float
    tools_cores: float
    others: list[tuple[str, float]]
    peak_rss_mb: float | None

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s

    def count(self, name: str) -> int:
        return self.outcomes.get(name, 0)

    def _cores(self) -> dict[str, float]:
        parts = {
            "server": self.server_cpu_ms,
            "database": self.database_cpu_ms or 0.0,
            "client": self.client_cpu_ms,
        }
        return {name: ms * self.rate / 1000 for name, ms in parts.items()} | {"tools": self.tools_cores}

    @property
    def other_cores(self) -> float:
        """Cores the machine spent outside the benchmark's own processes (other work, the kernel)."""
        return max(0.0, self.machine_busy_cores - sum(self._cores().values()))

    def cpu_budget(self) -> str:
        """Where the machine's busy cores went."""
        split = ", ".join(
            f"{name} {n:.2f}" for name, n in {**self._cores(), "other": self.other_cores}.items()
        )
        busiest = ", ".join(f"{name} {n:.2f}" for name, n in self.others)
        machine = f"machine busy {self.machine_busy_cores:.2f} of {cores()} cores"
        client = self._cores()["client"]
        share = f"the load generator took {100 * client / cores():.1f} % of the machine"
        return f"{machine} ({split}; busiest other: {busiest}); {share}"


async def _drive(
    client: httpx.AsyncClient, requests: Sequence[httpx.Request], concurrency: int
) -> tuple[list[float], Counter[str]]:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    queue: Iterator[httpx.Request] = iter(requests)

    async def caller() -> None:
        for request in queue:
            started = time.perf_counter()
            try:
                response = await client.send(request)
                name = outcome(response)
            except httpx.TransportError as exc:
                name = f"transport {type(exc).__name__}"
            latencies.append((time.perf_counter() - started) * 1000)
            outcomes[name] += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, outcomes


# From a 200 answer's body, the request to send next on the same connection (None: none).
Follow = Callable[[bytes], bytes | None]


class AnswerNotFramed(Exception):
    """An answer this client cannot find the end of (no ``Content-Length``)."""


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    """Send one request and read its answer: status, body, and whether the server closes the
    connection after it. The server frames its answers by ``Content-Length``."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if b"content-length" not in fields:
        raise AnswerNotFramed(head.split(b"\r\n")[0].decode(errors="replace"))
    body = await reader.readexactly(int(fields[b"content-length"]))
    return int(head[9:12]), body, fields.get(b"connection", b"").lower() == b"close"


def by_connection(
    base_url: str, requests: Sequence[httpx.Request], concurrency: int, follow: Follow
) -> Drive:
    """The phase driven in this process over ``concurrency`` keep-alive connections, for requests
    whose answers lead to a further call (``follow``): each request was made bytes before the
    phase, answers are read by their length, and latency runs from the first request to the last
    answer of the chain. An ``httpx`` client cost 1 to 2 ms of CPU a request here, on the cores
    the server was measured on; this costs a fraction of that (``client`` in the phase's notes)."""
    raw = [wrk.raw(r) for r in requests]
    address = httpx.URL(base_url)
    assert address.port is not None, "a base URL with its port"

    async def drive() -> wrk.Driven:
        latencies: list[float] = []
        outcomes: Counter[str] = Counter()
        queue: Iterator[bytes] = iter(raw)

        async def chain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
            """One request and what follows it; answers whether the connection stays open."""
            status, body, closing = await _exchange(reader, writer, request)
            following = follow(body) if status == 200 else None
            if following is not None:
                if closing:
                    outcomes["transport closed before the next call"] += 1
                    return False
                status, body, closing = await _exchange(reader, writer, following)
            outcomes[outcome_of(status, body)] += 1
            return not closing

        async def caller() -> None:
            connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
            for request in queue:
                began = time.perf_counter()
                still_open = False
                try:
                    if connection is None:
                        connection = await asyncio.open_connection(address.host, address.port)
                    still_open = await chain(*connection, request)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    outcomes[f"transport {type(exc).__name__}"] += 1
                if not still_open and connection is not None:
                    connection[1].close()
                    connection = None
                latencies.append((time.perf_counter() - began) * 1000)
            if connection is not None:
                connection[1].close()

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(min(concurrency, len(raw)))))
        elapsed = time.perf_counter() - started
        return wrk.Driven(elapsed, percentile(latencies, 50), percentile(latencies, 99), outcomes, 0.0)

    return drive


def by_wrk(base_url: str, requests: Sequence[httpx.Request], concurrency: int) -> Drive:
    """The phase driven by wrk; the requests are turned into bytes now, before anything is timed."""
    raw = [wrk.raw(r) for r in requests]

    async def drive() -> wrk.Driven:
        return await wrk.replay(base_url, raw, concurrency)

    return drive


async def warm_up(client: httpx.AsyncClient, requests: Sequence[httpx.Request], concurrency: int) -> None:
    """Send untimed requests: opens the pool's connections and warms every server process."""
    await _drive(client, requests, concurrency)


async def settle(max_wait_s: float, quiet_cores: float = 0.3) -> float:
    """Wait (up to ``max_wait_s``) for a second in which the machine is nearly idle, so that other
    work does not share the cores with the measurement; answers the busy cores last seen."""
    deadline = time.monotonic() + max_wait_s
    busy = 0.0
    while True:
        before = procfs.machine_busy_seconds()
        await asyncio.sleep(1.0)
        busy = procfs.machine_busy_seconds() - before
        if busy < quiet_cores or time.monotonic() >= deadline:
            return busy


async def timed(server: Server, requests: int, drive: Drive) -> Phase:
    """Drive the phase's ``requests`` and measure it."""
    workers = server.serving_pids()
    postgres = server.configuration.backend == "postgresql"
    # A connection opened and closed within the phase is a PostgreSQL process gone by its end: its
    # CPU is found in the server process that waited for it (the postmaster).
    ended_before = procfs.ended_children_seconds(procfs.pids_named("postgres")) if postgres else {}
    cpu_before = procfs.cpu_seconds(procfs.all_pids())
    machine_before = procfs.machine_busy_seconds()
    window_started = time.perf_counter()
    driven = await drive()
    # The readings span the generator's start and stop too; the rate is over the requests' own time.
    window = time.perf_counter() - window_started
    elapsed = driven.elapsed_s
    machine_busy = procfs.machine_busy_seconds() - machine_before
    used = {
        pid: seconds - cpu_before.get(pid, 0.0)
        for pid, seconds in procfs.cpu_seconds(procfs.all_pids()).items()
    }
    database = set(procfs.pids_named("postgres")) if postgres else set()
    ended = sum(
        seconds - ended_before[pid]
        for pid, seconds in procfs.ended_children_seconds(database).items()
        if pid in ended_before
    )
    server_used = [used.get(pid, 0.0) for pid in workers]
    server_total = sum(server_used)
    tree = {server.process.pid, *procfs.descendants(server.process.pid)}
    tools = set(procfs.descendants(os.getpid())) - tree
    ours = {*workers, *database, *tools, os.getpid()}
    others = sorted(
        ((procfs.name(pid), s) for pid, s in used.items() if pid not in ours), key=lambda o: -o[1]
    )
    per_request = 1000 / requests
    return Phase(
        requests=requests,
        elapsed_s=elapsed,
        p50_ms=driven.p50_ms,
        p99_ms=driven.p99_ms,
        outcomes=driven.outcomes,
        server_cpu_ms=server_total * per_request,
        database_cpu_ms=(sum(used.get(pid, 0.0) for pid in database) + ended) * per_request
        if database
        else None,
        client_cpu_ms=(used.get(os.getpid(), 0.0) + driven.cpu_s) * per_request,
        worker_cpu_share=[u / server_total for u in server_used] if server_total else [],
        machine_busy_cores=machine_busy / window,
        tools_cores=sum(used.get(pid, 0.0) for pid in tools) / window,
        others=[(name, s / window) for name, s in others[:3]],
        peak_rss_mb=server.peak_rss_mb(),
    )


def cores() -> int:
    return os.cpu_count() or 1

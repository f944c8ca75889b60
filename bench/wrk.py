"""The load generator of the timed phases: ``wrk`` (C, one thread, Debian's package) replaying
pre-built requests (tokens minted and bodies encoded before the phase), each sent once, with a fixed
number of connections in flight. It costs a few tens of microseconds of CPU a request, where an
``httpx`` client in this process costs 1 to 2 ms: on a 2-core machine shared with the server, that
difference decides what the server can show. Its CPU (``cpu_s``) is reported with the phase."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

SCRIPT = Path(__file__).with_name("replay.lua")
# An upper bound: the script stops wrk as soon as every request has its answer.
MAX_PHASE_S = 900


class WrkMissing(RuntimeError):
    """``wrk`` is not installed (``scripts/bootstrap`` installs it)."""


@dataclass(frozen=True)
class Driven:
    """A phase's requests driven to their answers: wall time from the first request sent to the last
    answer read, latency percentiles, answers by outcome (``200``, ``409 SoldOut``, ``transport …``),
    and the CPU seconds a generator process used (wrk; 0 for a client inside the benchmark process,
    whose CPU is counted as the benchmark's)."""

    elapsed_s: float
    p50_ms: float
    p99_ms: float
    outcomes: Counter[str]
    cpu_s: float


def raw(request: httpx.Request) -> bytes:
    """``request`` as the bytes sent on the wire (HTTP/1.1, keep-alive)."""
    head = f"{request.method} {request.url.raw_path.decode()} HTTP/1.1\r\n"
    lines = "".join(f"{name.decode()}: {value.decode()}\r\n" for name, value in request.headers.raw)
    return (head + lines + "\r\n").encode() + request.content


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def replay(base_url: str, requests: Sequence[bytes], concurrency: int) -> Driven:
    """Send every request once over ``concurrency`` keep-alive connections to ``base_url``."""
    binary = shutil.which("wrk")
    if binary is None:
        raise WrkMissing("wrk is not installed: run scripts/bootstrap (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="tickets-bench-wrk-") as folder:
        path = Path(folder) / "requests"
        path.write_bytes(b"".join(b"%d\n%b" % (len(r), r) for r in requests))
        cpu_before = _children_cpu_s()
        process = await asyncio.create_subprocess_exec(
            binary,
            "-t1",
            f"-c{min(concurrency, len(requests))}",
            f"-d{MAX_PHASE_S}s",
            "--timeout",
            "120s",
            "-s",
            str(SCRIPT),
            base_url,
            "--",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        started = finished = None
        output: list[str] = []
        try:
            async with asyncio.timeout(MAX_PHASE_S):
                while finished is None:
                    line = (await process.stdout.readline()).decode()
                    if not line:
                        break
                    output.append(line)
                    if line == "started\n":
                        started = time.perf_counter()
                    elif line == "finished\n":
                        finished = time.perf_counter()
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)  # wrk then reports and calls the script's done()
            output.append((await process.stdout.read()).decode())
            await process.wait()
        cpu_s = _children_cpu_s() - cpu_before
    text = "".join(output)
    result = next((line[7:] for line in text.splitlines() if line.startswith("result ")), None)
    if result is None or started is None:
        raise RuntimeError(f"wrk gave no result (exit {process.returncode}):\n{text[-2000:]}")
    data = json.loads(result)
    outcomes: Counter[str] = Counter(data["counts"])
    lost = len(requests) - sum(outcomes.values())
    if lost:
        errors = {name: n for name, n in data["errors"].items() if n}
        outcomes[f"transport: no answer ({errors})"] += lost
    end = finished if finished is not None else time.perf_counter()
    return Driven(
        elapsed_s=end - started,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        outcomes=outcomes,
        cpu_s=cpu_s,
    )

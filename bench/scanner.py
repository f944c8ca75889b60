"""The desk scanner offline, on one core (targets in docs/performance.md, offline scanning):

* pass verify: decode the text, check the list's Ed25519 signature, open the ticket's sealed entry
  in the offline index (``read_pass``), for distinct passes signed for two lists;
* wedge → stored: a keyboard-wedge code read key by key by the wedge detector up to its Enter, then
  ``DeskCore.scan``, decided offline and committed to the desk's SQLite store (WAL,
  ``synchronous=FULL``: one fsync per scan) before it answers;
* frame → stored: a 1280x720 camera frame, moderately degraded (blur, tilt, noise, low contrast),
  decoded by the default decoder, then decided and stored as above.

The desk is enrolled with a bundle built here (one list of TICKETS tickets, its key and sealed
index), so every decision is the offline one, under three networks: a server address nobody answers
at (``desk offline``); a server that accepts connections and never answers (``hung server``: the
first scan waits its online deadline, then the circuit breaker keeps scans from waiting); and, with
the server down, a hub desk set up but dead (``dead hub``: each scan asks the hub first). The
``ok`` column counts admitted scans (frames: decoded and admitted); ``server`` CPU is this
process's. Online decisions are the server's ``checkin`` workload.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import multiprocessing
import secrets
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import segno
from cv2.typing import MatLike

from bench import load, procfs
from bench.results import Options, Row, RunResult, Workload, find, ratio
from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import DeskCore
from scanner_app.core.offline import read_pass
from scanner_app.core.ports import BundleState, DeskEnrollment, ListInfo
from scanner_app.core.wedge import WedgeDetector
from scanner_app.io import vault
from scanner_app.io.decoders import make_decoder
from scanner_app.io.sqlite_store import SqliteDeskStore
from scanner_app.start import open_desk
from sync.bundle import FORMAT_VERSION, TicketEntry, TicketIndex, pack_entries, seal_entry
from sync.checkin import Verdict
from sync.passes import ListSigningKey, PassPayload, encode_pass, ticket_id_from_bytes

TICKETS, QUICK_TICKETS = 20_000, 2_000
VERIFIES, QUICK_VERIFIES = 20_000, 2_000
WEDGE_SCANS, QUICK_WEDGE_SCANS = 2_000, 200
FRAMES, QUICK_FRAMES = 400, 60
CONFIGURATION = "desk offline"
HUNG, DEAD_HUB = "desk, hung server", "desk, dead hub"
NOBODY = "http://127.0.0.1:9"
KEY_GAP_S = 0.002  # a wedge scanner's key rate
LIST_ID = "checklist_bench"
TIER_ID = "tier_bench"
# The offline scanning targets (docs/performance.md).
TARGET_VERIFY_US, PRETIX_VERIFY_US = 70.0, 115.0
TARGET_WEDGE_P50_MS = 2.0
TARGET_FRAME_P50_MS, TARGET_FRAME_P99_MS, TARGET_DECODE_RATE = 10.0, 25.0, 0.95
TARGET_RSS_MB = 250.0


def enroll_offline(folder: Path, tickets: int, server_url: str = NOBODY) -> list[str]:
    """A desk store enrolled for one list with a bundle of ``tickets`` tickets; answers their passes
    (each signed for this list and a second one)."""
    key, other = ListSigningKey.generate(), ListSigningKey.generate()
    issued = int(time.time())
    passes, sealed = [], []
    for n in range(tickets):
        payload = PassPayload(ticket_id_from_bytes(secrets.token_bytes(16)), 0, issued)
        passes.append(encode_pass(payload, [key.sign(payload), other.sign(payload)]))
        entry = TicketEntry(payload.ticket_id, f"B{n:07d}", f"Guest {n}", TIER_ID, "active", 0)
        sealed.append(seal_entry(entry, n + 1))
    index = TicketIndex()
    index.learn_tiers([TIER_ID])
    index.apply(pack_entries(sealed))
    body = {
        "format": FORMAT_VERSION,
        "checkInListId": LIST_ID,
        "list": {"name": "Main entrance", "status": "active", "tierIds": None},
        "keys": [
            {"keyId": key.key_id, "publicKey": base64.b64encode(key.public_key).decode(), "status": "active"}
        ],
        "tiers": {TIER_ID: "General admission"},
    }
    store = SqliteDeskStore(folder / "scanner.sqlite3")
    store.save_enrollment(
        DeskEnrollment(server_url, "dev_bench", "Bench desk", "test", "event_bench",
                   (ListInfo(LIST_ID, "Main entrance"),)),
        vault.seal("dev_bench.x", None, folder),
    )  # fmt: skip
    store.save_bundle(LIST_ID, BundleState(body, 1, int(time.time() * 1000)), index.entries, full=True)
    store.put_settings({"selected_list": LIST_ID})
    store.close()
    return passes


def degraded_frame(text: str, rng: np.random.Generator) -> MatLike:
    """A 1280x720 webcam frame of ``text`` as a QR code: modules of 4-7 px, blur up to 1.5 px,
    tilt up to 30°, noise up to 12 levels, contrast down to 40 %."""
    modules = np.pad(np.array(segno.make(text, error="m", micro=False).matrix, np.uint8), 4)
    scale = int(rng.integers(4, 8))
    code = np.where(np.kron(modules, np.ones((scale, scale), np.uint8)) > 0, 0, 255).astype(np.uint8)
    scene = np.full((720, 1280), 200, np.uint8)
    top, left = (720 - code.shape[0]) // 2, (1280 - code.shape[1]) // 2
    scene[top : top + code.shape[0], left : left + code.shape[1]] = code
    turn = cv2.getRotationMatrix2D((640, 360), float(rng.uniform(-30, 30)), 1.0)
    tilted = cv2.warpAffine(scene, turn, (1280, 720), borderValue=200)
    blurred = cv2.GaussianBlur(tilted, (0, 0), float(rng.uniform(0.01, 1.5))).astype(np.float32)
    pixels = 128 + (blurred - 128) * rng.uniform(0.4, 1.0) + rng.normal(0, rng.uniform(0, 12), blurred.shape)
    frame: MatLike = cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return frame


def _row(
    scenario: str,
    latencies_ms: list[float],
    ok: int,
    elapsed_s: float,
    cpu_s: float,
    configuration: str = CONFIGURATION,
) -> Row:
    ordered = sorted(latencies_ms)
    return Row(
        configuration=configuration,
        scenario=scenario,
        requests=len(ordered),
        ok=ok,
        rate=len(ordered) / elapsed_s,
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[max(0, int(len(ordered) * 0.99) - 1)],
        peak_rss_mb=procfs.own_peak_mb(),
        server_cpu_ms=cpu_s * 1000 / len(ordered),
        database_cpu_ms=None,
        client_cpu_ms=0.0,
        other_cores=0.0,
    )


async def run(options: Options) -> RunResult:
    """The desk's scenarios, in a process of their own: the peak RSS reported is then the desk's,
    not the high-water mark of the workloads the benchmark ran before it in its own process (an
    export of 50,000 tickets left it at 327 MB, and the desk was read as 359 MB against 193 MB
    alone)."""
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as alone:
        return await asyncio.get_running_loop().run_in_executor(alone, _run_alone, options)


def _run_alone(options: Options) -> RunResult:
    return asyncio.run(_run(options))


async def _run(options: Options) -> RunResult:
    out = RunResult()
    tickets = QUICK_TICKETS if options.quick else TICKETS
    hung = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # the kernel accepts connections; nothing ever answers them
    setups = ((CONFIGURATION, NOBODY, None), (HUNG, f"http://127.0.0.1:{hung.getsockname()[1]}", None))
    try:
        for configuration, server_url, hub in (*setups, (DEAD_HUB, NOBODY, f"tickets-hub:x@{NOBODY}")):
            folder = Path(tempfile.mkdtemp(prefix="tickets-bench-scanner-"))
            try:
                passes = enroll_offline(folder, tickets, server_url)
                settings = ScannerSettings(
                    data_dir=folder, sync_interval_seconds=3600.0, bundle_refresh_seconds=3600.0
                )
                core = await open_desk(settings)
                try:
                    await core.join_hub(hub)
                    if configuration == CONFIGURATION:
                        await _verify(core, passes, options, out)
                    await _measure(core, passes, options, out, configuration)
                finally:
                    await core.close()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        hung.close()
    out.notes.append(
        f"one process; {tickets:,} tickets in the offline index; peak RSS is this process's, frames included"
    )
    return out


async def _settle(options: Options, out: RunResult, scenario: str) -> None:
    """Wait for other work on the machine to stop before a timed phase (``--settle``)."""
    if options.settle_s and (busy := await load.settle(options.settle_s)) >= 0.25:
        out.notes.append(f"{scenario}: the machine was still busy ({busy:.2f} cores)")


async def _verify(core: DeskCore, passes: list[str], options: Options, out: RunResult) -> None:
    bundle = core.bundles[LIST_ID]
    await _settle(options, out, "pass verify")
    verifies = QUICK_VERIFIES if options.quick else VERIFIES
    sample = [passes[n % len(passes)] for n in range(verifies)]
    latencies, found = [], 0
    started, cpu = time.perf_counter(), time.process_time()
    for text in sample:
        before = time.perf_counter()
        reading = read_pass(text, bundle)
        latencies.append((time.perf_counter() - before) * 1000)
        found += reading.entry is not None
    out.rows.append(
        _row("pass verify", latencies, found, time.perf_counter() - started, time.process_time() - cpu)
    )
    if found != verifies:
        out.failures.append(f"pass verify: {verifies - found} genuine passes not found in the index")


async def _measure(
    core: DeskCore, passes: list[str], options: Options, out: RunResult, configuration: str
) -> None:
    """Wedge and frame scans on ``core``; the first scan (the one attempt to reach the server, a
    whole online deadline with a hung server) is timed on its own, in a note."""
    first = await core.scan(passes[-1])
    out.notes.append(f"{configuration}: first scan {first.latency_ms:.0f} ms, then offline at once")
    await _settle(options, out, f"{configuration} wedge")
    wedge = passes[: (QUICK_WEDGE_SCANS if options.quick else WEDGE_SCANS)]
    detector, at_s = WedgeDetector(), 0.0
    latencies, admitted = [], 0
    started, cpu = time.perf_counter(), time.process_time()
    for text in wedge:
        before = time.perf_counter()
        read = [detector.feed(key, at_s + n * KEY_GAP_S) for n, key in enumerate(text + "\r")][-1]
        at_s += 1.0  # the next guest
        if read is None or not read.complete:
            continue  # counted as not admitted
        result = await core.scan(read.text, source="wedge")
        latencies.append((time.perf_counter() - before) * 1000)
        admitted += result.verdict is Verdict.ADMIT and not result.online
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    out.rows.append(_row("wedge → stored", latencies, admitted, elapsed, cpu_s, configuration))
    if admitted != len(wedge):
        out.failures.append(f"{configuration} wedge: {len(wedge) - admitted} distinct passes not admitted")

    decoder = make_decoder(core.settings.decoder)
    await _settle(options, out, f"{configuration} frame")
    rng = np.random.default_rng(2026)
    frames = passes[len(wedge) : len(wedge) + (QUICK_FRAMES if options.quick else FRAMES)]
    latencies, admitted, elapsed, cpu_s = [], 0, 0.0, 0.0
    for text in frames:
        image = degraded_frame(text, rng)
        before, cpu = time.perf_counter(), time.process_time()
        codes = decoder.decode(image)
        decided = [await core.scan(code, source="camera") for code in codes]
        took = time.perf_counter() - before
        elapsed, cpu_s = elapsed + took, cpu_s + time.process_time() - cpu
        latencies.append(took * 1000)
        admitted += [(r.verdict, r.display_name is not None) for r in decided] == [(Verdict.ADMIT, True)]
    out.rows.append(_row("frame → stored", latencies, admitted, elapsed, cpu_s, configuration))
    out.notes.append(
        f"{configuration} frames: {admitted} of {len(frames)} decoded and admitted"
        f" ({admitted / len(frames):.1%})"
    )


def ratios(rows: Sequence[Row]) -> list[str]:
    lines = []
    verify = find(rows, CONFIGURATION, "pass verify")
    if verify is not None:
        us = verify.p50_ms * 1000
        lines.append(
            f"pass verify   {us:5.1f} µs median: {ratio(us, TARGET_VERIFY_US)} the"
            f" {TARGET_VERIFY_US:.0f} µs target,"
            f" {PRETIX_VERIFY_US / us:.1f}x faster than pretix (sig1, {PRETIX_VERIFY_US:.0f} µs)"
        )
    wedge = find(rows, CONFIGURATION, "wedge → stored")
    if wedge is not None:
        lines.append(
            f"wedge         p50 {wedge.p50_ms:.2f} ms: {ratio(wedge.p50_ms, TARGET_WEDGE_P50_MS)} the"
            f" {TARGET_WEDGE_P50_MS:.0f} ms target"
        )
    frame = find(rows, CONFIGURATION, "frame → stored")
    if frame is not None:
        rate = frame.ok / frame.requests
        lines.append(
            f"frame         p50 {frame.p50_ms:.1f} ms"
            f" ({ratio(frame.p50_ms, TARGET_FRAME_P50_MS)} the target),"
            f" p99 {frame.p99_ms:.1f} ms ({ratio(frame.p99_ms, TARGET_FRAME_P99_MS)}),"
            f" {frame.rate:.0f} decisions/s, decoded {rate:.1%} (target {TARGET_DECODE_RATE:.0%})"
        )
        if frame.peak_rss_mb is not None:
            lines.append(
                f"memory        peak {frame.peak_rss_mb:.0f} MB:"
                f" {ratio(frame.peak_rss_mb, TARGET_RSS_MB)} the {TARGET_RSS_MB:.0f} MB target"
            )
    return lines


WORKLOAD = Workload(
    name="scanner",
    summary="desk scanner offline, with a hung server and a dead hub: pass verify, keyboard-wedge and"
    " camera-frame scans decided and stored",
    run=run,
    ratios=ratios,
)

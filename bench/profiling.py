"""Optional sampling profiles of the server processes (py-spy) during a timed phase, and a summary of
where their CPU time went."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

SAMPLE_RATE = 200
# Inclusive shares worth naming: a sample counts when any frame of its stack matches. Indented
# lines are parts of the line above them.
MARKERS: dict[str, tuple[str, ...]] = {
    "XRPC dispatch (everything after HTTP routing)": ("dispatch (server/xrpc/framework.py",),
    "  lexicon validation of the input": ("validate_input (",),
    "  caller authentication": ("authenticate (server/xrpc/auth.py",),
    "    registered-app id (cached per process)": ("app_id (server/domain/apps.py",),
    "    service JWT verification": ("verify_service_jwt (",),
    "      ECDSA signature check": ("verify (server/auth/multikey.py",),
    "      issuer key lookup (DID document, Multikey decode)": ("signing_key (",),
    "    token spend: INSERT jti + app enabled (one autocommit statement)": ("spend_token (",),
    "  createTicketHold handler": ("create_ticket_hold (",),
    "    hold transaction (create_hold)": ("create_hold (",),
    "      availability checks (check_hold)": ("check_hold (",),
    "SQLAlchemy (ORM, Core, pool), inclusive": ("sqlalchemy/",),
    "  connection pre-ping on checkout": ("do_ping (",),
    "  session flush (INSERTs)": ("flush (sqlalchemy/orm/session.py",),
    "  transaction commit": ("commit (sqlalchemy/",),
    "database driver (asyncpg / aiosqlite), inclusive": ("asyncpg/", "aiosqlite/"),
}
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.asynccontextmanager
async def recording(pids: Sequence[int], folder: Path | None, label: str) -> AsyncIterator[list[Path]]:
    """Record every pid in ``pids`` while the block runs (nothing when ``folder`` is None or py-spy
    is missing); yields the collapsed-stack files, written when the block ends."""
    binary = py_spy()
    if folder is None or binary is None:
        yield []
        return
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    outputs = [folder / f"{label}-{pid}.txt" for pid in pids]
    recorders = [
        await asyncio.create_subprocess_exec(
            binary,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(SAMPLE_RATE),
            "--format",
            "raw",
            "--function",
            "--nonblocking",
            "--output",
            str(out),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for pid, out in zip(pids, outputs, strict=True)
    ]
    await asyncio.sleep(0.5)  # let py-spy attach before the load starts
    try:
        yield outputs
    finally:
        for recorder in recorders:
            with contextlib.suppress(ProcessLookupError):
                recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            await recorder.wait()


def _stacks(paths: Sequence[Path]) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            frames, _, count = line.rpartition(" ")
            if frames and count.isdigit():
                stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def _package(frame: str) -> str:
    """``sqlalchemy``, ``server.xrpc``, ``asyncio``... for the file of a frame."""
    match = _FRAME.match(frame)
    file = match["file"] if match else frame
    parts = [p for p in file.split("/") if p and not p.endswith(".py")]
    if not parts:
        return file.removesuffix(".py") or "?"
    return ".".join(parts[:2]) if parts[0] == "server" else parts[0]


def summary(paths: Sequence[Path], top: int = 12) -> list[str]:
    """Self time by package, inclusive time of the named markers, and the hottest functions."""
    stacks = _stacks(paths)
    total = sum(stacks.values())
    if not total:
        return ["(no samples)"]
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    marked: Counter[str] = Counter()
    for stack, count in stacks.items():
        by_package[_package(stack[-1])] += count
        by_function[stack[-1]] += count
        text = ";".join(stack)
        for label, needles in MARKERS.items():
            if any(needle in text for needle in needles):
                marked[label] += count

    def share(counter: Counter[str], limit: int | None = None) -> list[str]:
        ordered = counter.most_common(limit) if limit else sorted(counter.items(), key=lambda kv: -kv[1])
        return [f"  {100 * n / total:5.1f} %  {name}" for name, n in ordered]

    return [
        f"{total} samples at {SAMPLE_RATE}/s (active CPU only; idle waits excluded)",
        "self time by package:",
        *share(by_package, top),
        "inclusive time:",
        *[f"  {100 * marked[k] / total:5.1f} %  {k}" for k in MARKERS],
        "hottest functions (self):",
        *share(by_function, top),
    ]

"""``tickets-scanner --headless``: the desk's core on a frame source, one printed line per decision.

For a desk without a screen, and for trying a camera, a video or a folder of images end to end.
Sync runs alongside; at the end of a video or folder one last round uploads what it can (anything
left goes up on the next run). The line is::

    <verdict> <reason> <online|offline> <latency>ms <record id> <name or -> | <headline> | <detail>
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TextIO

from scanner_app.core import texts
from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import DeskNotReady, ScanResult
from scanner_app.core.ports import DeviceRevokedError
from scanner_app.io.camera import watch
from scanner_app.io.decoders import make_decoder
from scanner_app.io.frames import open_source
from scanner_app.start import open_desk
from sync.checkin import Direction


def line(result: ScanResult) -> str:
    mode = "online" if result.online else "offline"
    return (
        f"{result.verdict.value} {result.reason.value} {mode} {result.latency_ms:.1f}ms "
        f"{result.record.record_id} {result.display_name or '-'} | {result.headline} | {result.detail}"
    )


async def run(
    settings: ScannerSettings,
    source_spec: str,
    list_id: str | None,
    gate: str | None,
    direction: Direction,
    out: TextIO = sys.stdout,
) -> int:
    """Scan until the source runs out; answers the exit status."""
    core = await open_desk(settings)
    try:
        if not core.enrolled:
            sys.stderr.write("this desk is not enrolled: run `tickets-scanner enroll` first\n")
            return 2
        chosen = list_id or (core.selected_list.id if core.selected_list else None)
        if chosen is None and len(core.lists) == 1:
            chosen = core.lists[0].id
        if chosen is None:
            names = ", ".join(f"{item.id} ({item.name})" for item in core.lists)
            sys.stderr.write(f"choose a check-in list with --list: {names}\n")
            return 2
        await core.select_list(chosen, gate if gate is not None else core.gate)
        source = open_source(source_spec)
        if source is None:
            sys.stderr.write(f"no camera at {source_spec}: nothing to scan\n")
            return 1
        decoder = make_decoder(settings.decoder)

        stop = asyncio.Event()

        async def decide(text: str) -> None:
            try:
                result = await core.scan(text, direction, source="camera")
            except (DeviceRevokedError, DeskNotReady):
                if not core.revoked:
                    raise
                stop.set()  # revoked (the core wiped the desk): nothing more to scan
                return
            out.write(line(result) + "\n")
            out.flush()

        # The sync loop ends when the desk is revoked: so does the scanning.
        syncing = asyncio.ensure_future(core.run_sync_forever(stop))
        syncing.add_done_callback(lambda _: stop.set())
        try:
            await watch(source, decoder, decide, stop)
        finally:
            source.close()
            stop.set()
            await syncing
        with contextlib.suppress(DeviceRevokedError):
            await core.sync_once()
        if core.revoked:
            sys.stderr.write(texts.REVOKED + "\n")
            return 3
        status = core.status()
        waiting = f"done: {status.pending_uploads} records waiting for upload"
        sys.stderr.write(waiting + ("\n" if status.online else " (server unreachable)\n"))
        return 0
    finally:
        await core.close()

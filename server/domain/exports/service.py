"""One export of a check-in list as a file, for the command line and the XRPC method alike."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.datetimes import format_datetime
from server.db.engine import Database
from server.db.models import Event
from server.domain.caller import Caller
from server.domain.catalog.service import ensure_can_manage, find_event
from server.domain.checkin.lists import find_list
from server.domain.common import SystemClock
from server.domain.exports import writers
from server.domain.exports.rows import conflict_rows, list_rows, scan_rows
from server.domain.exports.rules import check_format, file_name


async def export_list(
    session: AsyncSession, environment: str, list_id: str, fmt: str, *, now_ms: int | None = None
) -> tuple[bytes, str, str]:
    """The list's door list (``csv``, ``csv-semicolon``, ``xlsx``, ``pdf``), check-in log
    (``scans-csv``) or check-in conflicts (``conflicts-csv``) as ``(body, content type, file
    name)``. The file is made in a worker thread, so a server keeps answering while a large PDF is
    laid out."""
    chosen = check_format(fmt)
    moment = SystemClock().now_ms() if now_ms is None else now_ms
    checklist = await find_list(session, environment, list_id)
    if fmt == "scans-csv":
        body = await asyncio.to_thread(writers.scans_to_csv, await scan_rows(session, checklist))
    elif fmt == "conflicts-csv":
        body = await asyncio.to_thread(writers.conflicts_to_csv, await conflict_rows(session, checklist))
    else:
        rows = await list_rows(session, checklist)
        if fmt == "pdf":
            event_title = await session.scalar(select(Event.title).where(Event.id == checklist.event_id))
            generated = format_datetime(moment)[:16].replace("T", " ")
            subtitle = f"{checklist.name} · {len(rows):,} tickets · generated {generated} UTC"
            body = await asyncio.to_thread(writers.to_pdf, rows, event_title or "", subtitle)
        elif fmt == "xlsx":
            body = await asyncio.to_thread(writers.to_xlsx, rows, checklist.name)
        else:
            body = await asyncio.to_thread(writers.to_csv, rows, ";" if fmt == "csv-semicolon" else ",")
    return body, chosen.content_type, file_name(checklist.name, fmt, moment)


async def export_managed_list(
    db: Database, caller: Caller, list_id: str, fmt: str, now_ms: int
) -> tuple[bytes, str, str]:
    """The door list or check-in log of a list whose event the caller manages
    (``exportCheckInList``): its body, media type and file name."""
    async with db.read() as session:
        checklist = await find_list(session, caller.environment, list_id)
        event = await find_event(session, caller.environment, event_id=checklist.event_id)
        await ensure_can_manage(session, event, caller)
        return await export_list(session, caller.environment, checklist.id, fmt, now_ms=now_ms)

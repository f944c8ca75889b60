"""One export of a check-in list as a file, for the command line and the XRPC method alike."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.datetimes import format_datetime
from server.db.models import Event
from server.domain.checkin.lists import find_list
from server.domain.common import SystemClock
from server.domain.exports import writers
from server.domain.exports.rows import conflict_rows, list_rows, scan_rows
from server.errors import InvalidRequest

CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF = "application/pdf"


@dataclass(frozen=True, slots=True)
class Format:
    extension: str
    content_type: str


FORMATS = {
    "csv": Format("csv", CSV),
    "csv-semicolon": Format("csv", CSV),
    "xlsx": Format("xlsx", XLSX),
    "pdf": Format("pdf", PDF),
    "scans-csv": Format("csv", CSV),
    "conflicts-csv": Format("csv", CSV),
}
DOOR_LIST_FORMATS = ("csv", "csv-semicolon", "xlsx", "pdf")


def file_name(list_name: str, fmt: str, now_ms: int) -> str:
    """``<list name>-<date>.<ext>`` (``-scans`` before the date for the check-in log), in ASCII
    letters, digits and dashes so that it is safe in any folder and HTTP header."""
    ascii_name = unicodedata.normalize("NFKD", list_name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-").lower() or "check-in-list"
    if fmt in ("scans-csv", "conflicts-csv"):
        stem += "-" + fmt.removesuffix("-csv")
    return f"{stem}-{format_datetime(now_ms)[:10]}.{FORMATS[fmt].extension}"


async def export_list(
    session: AsyncSession, environment: str, list_id: str, fmt: str, *, now_ms: int | None = None
) -> tuple[bytes, str, str]:
    """The list's door list (``csv``, ``csv-semicolon``, ``xlsx``, ``pdf``), check-in log
    (``scans-csv``) or check-in conflicts (``conflicts-csv``) as ``(body, content type, file
    name)``. The file is made in a worker thread, so a server keeps answering while a large PDF is
    laid out."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
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
    return body, FORMATS[fmt].content_type, file_name(checklist.name, fmt, moment)

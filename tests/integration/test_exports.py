"""Organizer exports of a check-in list, on SQLite and PostgreSQL: every format is read back with a
real parser (csv, openpyxl, pypdf, pdftotext) and compared with the database; the command line runs
as a child process."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import openpyxl
import pytest
from conftest import Harness, start_harness
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from support.broker import FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event, shared_group
from support.databases import sqlite_copy
from support.serve_process import tickets_env

from server.db.engine import Database
from server.db.models import CheckInList, CheckInRecord, Ticket, Tier
from server.domain.exports.rows import DoorRow
from server.domain.exports.service import export_list
from server.domain.exports.writers import ROWS_PER_PAGE, sheet_title, to_csv, to_pdf, to_xlsx
from server.errors import CheckInListNotFound, InvalidRequest
from server.settings import Settings

T = TypeVar("T")
BROKER = FakeBroker()
BASE_MS = 1_798_747_200_000  # 2026-12-31T20:00:00.000Z
MINUTE_MS = 60_000
EXPORTED_MS = BASE_MS + 60 * MINUTE_MS
BUYER = "did:plc:buyer00000000000000000042"
SCANNER = "did:plc:doorstaff000000000000000001"
HEADERS = [
    "Ticket number",
    "Attendee name",
    "Attendee email",
    "Tier",
    "Price",
    "Currency",
    "Status",
    "Checked in at",
    "Gate",
    "Device",
    "Inside",
    "Last scan",
    "Buyer DID",
    "Ticket ID",
    "Order ID",
    "Payment ID",
]
SCAN_HEADERS = [
    "Server time",
    "Device time",
    "Device",
    "Gate",
    "Scanner DID",
    "Direction",
    "Decision",
    "Reason",
    "Ticket number",
    "Attendee name",
    "Ticket ID",
]

# The door night: (minute after 20:00, attendee or None for a pass of no ticket here, list, direction,
# decision, reason, gate, device). Inserted in reverse, so that the log's order must come from the
# server time.
SCANS = [
    (1, "Zoë Ångström", "main", "entry", "admit", "ok", "North", "desk-1"),
    (2, "山田 太郎", "main", "entry", "admit", "ok", None, "online"),
    (3, "Party 🎉 Person", "main", "entry", "refuse", "not_yet_valid", "South", "desk-2"),
    (4, "émile Zola", "vip", "entry", "admit", "ok", "VIP", "desk-3"),
    (5, None, "main", "entry", "refuse", "invalid", "South", "desk-2"),
    (6, "Zoë Ångström", "main", "exit", "admit", "ok", "North", "desk-1"),
    (7, "Zoë Ångström", "main", "entry", "admit", "ok", "South", "desk-2"),
    (8, "ada lovelace", "main", "entry", "refuse", "voided", "North", "desk-1"),
]
# Case and accents ignored, missing names last.
MAIN_ORDER = ["ada lovelace", "émile Zola", "Party 🎉 Person", "Zoë Ångström", "山田 太郎", None]
# attendee: (Checked in at, Gate, Device, Inside, Last scan)
MAIN_CHECK_INS = {
    "ada lovelace": ("", "", "", "no", "2026-12-31T20:08:00.000Z"),
    "Party 🎉 Person": ("", "", "", "no", "2026-12-31T20:03:00.000Z"),
    "Zoë Ångström": ("2026-12-31T20:01:00.000Z", "North", "desk-1", "yes", "2026-12-31T20:07:00.000Z"),
    "山田 太郎": ("2026-12-31T20:02:00.000Z", "", "online", "yes", "2026-12-31T20:02:00.000Z"),
}
VIP_ORDER = ["émile Zola", None]
VIP_CHECK_INS = {
    "émile Zola": ("2026-12-31T20:04:00.000Z", "VIP", "desk-3", "yes", "2026-12-31T20:04:00.000Z")
}
NOT_SCANNED = ("", "", "", "no", "")


@dataclass
class Night:
    """An event with two tiers (10.00 EUR and 3000 JPY), its default list, a list admitting the VIP
    tier only, six tickets (one voided) and the scans of :data:`SCANS`."""

    lists: dict[str, str]  # "main" | "vip" → list id
    tiers: dict[str, Tier]  # by id
    tickets: dict[str | None, Ticket]  # by attendee name


async def in_db(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = False
) -> T:
    db = Database(settings.resolved_database_url)
    try:
        async with db.write() if write else db.read() as session:
            return await work(session)
    finally:
        await db.dispose()


async def paid(h: Harness, tier: str, quantity: int, attendees: list[dict[str, str]], **extra: Any) -> None:
    hold = await h.app.ok(
        "createTicketHold",
        {"items": [{"tierId": tier, "quantity": quantity}], "attendees": attendees, **extra},
    )
    delivery = BROKER.paid(hold, payment_id=new_payment_id())
    assert (await BROKER.send(h.app.http, h.server.url, delivery)).json()["outcome"] == "issued"


async def door_night(h: Harness) -> Night:
    event = await active_event(h.app, "Fête de la musique")
    group, (general,) = await shared_group(h.app, event, capacity=20, tiers=1)
    vip_tier = await h.app.ok(
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": event["uri"]},
            "title": "VIP 席",
            "currency": "jpy",
            "unitAmount": 3000,
            "quantityTotal": 5,
            "capacityGroupId": group,
        },
    )
    vip = vip_tier["tier"]["id"]
    buyer = {
        "buyerDid": BUYER,
        "buyerAssertionJwt": h.identity(BUYER).token("tickets.atmosphere.createTicketHold"),
    }
    trio = [
        {"name": "Zoë Ångström", "email": "zoe@example.org"},
        {"name": "山田 太郎"},
        {"name": "Party 🎉 Person"},
    ]
    await paid(h, general, 3, trio, **buyer)
    await paid(h, vip, 2, [{"name": "émile Zola"}], customerEmail="vip@example.org")
    await paid(h, general, 1, [{"name": "ada lovelace"}])
    vip_list = await h.app.ok(
        "createCheckInList", {"eventId": event["id"], "name": "VIP door", "tierIds": [vip]}
    )

    async def tickets(session: AsyncSession) -> list[Ticket]:
        return list(await session.scalars(select(Ticket).where(Ticket.event_id == event["id"])))

    by_name = {t.attendee_name: t for t in await in_db(h.settings, tickets)}
    await h.app.ok("voidTicket", {"ticketId": by_name["ada lovelace"].id})

    async def record_scans(session: AsyncSession) -> tuple[str, dict[str, Tier]]:
        main = await session.scalar(
            select(CheckInList.id).where(
                CheckInList.event_id == event["id"], CheckInList.is_default.is_(True)
            )
        )
        assert main is not None
        lists = {"main": main, "vip": vip_list["checkInList"]["id"]}
        for n, (minute, name, on, direction, decision, reason, gate, device) in enumerate(reversed(SCANS)):
            ticket = by_name[name] if name else None
            server_ms = BASE_MS + minute * MINUTE_MS
            session.add(
                CheckInRecord(
                    id=f"scan-{n}",
                    device_id=device,
                    environment="test",
                    event_id=event["id"],
                    list_id=lists[on],
                    ticket_id=ticket.id if ticket else None,
                    token_generation=1,
                    direction=direction,
                    decision=decision,
                    reason=reason,
                    gate=gate,
                    scanner_did=SCANNER,
                    device_ms=server_ms - 1000,
                    server_ms=server_ms,
                )
            )
        tiers = {t.id: t for t in await session.scalars(select(Tier).where(Tier.event_id == event["id"]))}
        return main, tiers

    main, tiers = await in_db(h.settings, record_scans, write=True)
    return Night(
        {"main": main, "vip": vip_list["checkInList"]["id"]},
        tiers,
        {t.attendee_name: t for t in await in_db(h.settings, tickets)},
    )


def expected_door_list(
    night: Night, order: list[str | None], check_ins: dict[str, tuple[str, str, str, str, str]]
) -> list[dict[str, str]]:
    """The door list as the database has it, one dict per ticket (CSV header → text)."""
    rows = []
    for name in order:
        ticket = night.tickets[name]
        tier = night.tiers[ticket.tier_id]
        checked_in, gate, device, inside, last_scan = check_ins.get(name or "", NOT_SCANNED)
        rows.append(
            dict(
                zip(
                    HEADERS,
                    [
                        ticket.ticket_number,
                        name or "—",
                        ticket.attendee_email or "",
                        tier.title,
                        {"eur": "10.00", "jpy": "3000"}[tier.currency],
                        tier.currency.upper(),
                        ticket.status,
                        checked_in,
                        gate,
                        device,
                        inside,
                        last_scan,
                        ticket.buyer_did or "",
                        ticket.id,
                        ticket.hold_id,
                        ticket.payment_id or "",
                    ],
                    strict=True,
                )
            )
        )
    return rows


def expected_scans(night: Night) -> list[dict[str, str]]:
    rows = []
    for minute, name, on, direction, decision, reason, gate, device in SCANS:
        if on != "main":
            continue
        ticket = night.tickets[name] if name else None
        values = [
            f"2026-12-31T20:{minute:02d}:00.000Z",
            f"2026-12-31T20:{minute - 1:02d}:59.000Z",
            device,
            gate or "",
            SCANNER,
            direction,
            decision,
            reason,
            ticket.ticket_number if ticket else "",
            name or "",
            ticket.id if ticket else "",
        ]
        rows.append(dict(zip(SCAN_HEADERS, values, strict=True)))
    return rows


async def export(h: Harness, list_id: str, fmt: str) -> tuple[bytes, str, str]:
    async def work(session: AsyncSession) -> tuple[bytes, str, str]:
        return await export_list(session, "test", list_id, fmt, now_ms=EXPORTED_MS)

    return await in_db(h.settings, work)


def read_csv(body: bytes, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    assert body.startswith("\ufeff".encode()), "no byte order mark"
    text = body.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    return list(reader.fieldnames or []), list(reader)


def pdf_lines(body: bytes) -> list[list[str]]:
    """The text of each page, line by line, as pypdf extracts it."""
    return [page.extract_text().splitlines() for page in PdfReader(io.BytesIO(body)).pages]


def pdftotext_lines(body: bytes) -> list[str]:
    """The text poppler's ``pdftotext -layout`` reads; none when it is not installed."""
    if shutil.which("pdftotext") is None:
        return []
    run = subprocess.run(["pdftotext", "-layout", "-", "-"], input=body, capture_output=True, check=True)
    return run.stdout.decode().splitlines()


def door_line(lines: list[str], row: dict[str, str]) -> str:
    (line,) = [line for line in lines if row["Ticket number"] in line]
    return line


# --- door list ------------------------------------------------------------------------------------


async def test_csv_and_semicolon_csv_match_the_database(harness: Harness) -> None:
    night = await door_night(harness)
    expected = expected_door_list(night, MAIN_ORDER, MAIN_CHECK_INS)
    for fmt, delimiter in (("csv", ","), ("csv-semicolon", ";")):
        body, content_type, name = await export(harness, night.lists["main"], fmt)
        assert content_type == "text/csv; charset=utf-8" and name == "main-entrance-2026-12-31.csv"
        header, rows = read_csv(body, delimiter)
        assert header == HEADERS
        assert rows == expected


async def test_a_list_of_one_tier_has_only_its_tickets_and_check_ins(harness: Harness) -> None:
    night = await door_night(harness)
    body, _, name = await export(harness, night.lists["vip"], "csv")
    assert name == "vip-door-2026-12-31.csv"
    assert read_csv(body)[1] == expected_door_list(night, VIP_ORDER, VIP_CHECK_INS)
    with pytest.raises(CheckInListNotFound):
        await export(harness, "checklist_nope", "csv")
    with pytest.raises(InvalidRequest):
        await export(harness, night.lists["vip"], "docx")


async def test_xlsx_matches_the_database(harness: Harness) -> None:
    night = await door_night(harness)
    body, content_type, name = await export(harness, night.lists["main"], "xlsx")
    assert content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert name == "main-entrance-2026-12-31.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(body))
    sheet = book.active
    assert sheet is not None and sheet.title == "Main entrance"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:P7"
    assert sheet.column_dimensions["B"].width == 28
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert list(header) == HEADERS and all(cell.font.bold for cell in sheet[1])
    read = [
        {
            h: "" if v is None else Decimal(str(v)) if h == "Price" else v
            for h, v in zip(HEADERS, row, strict=True)
        }
        for row in rows
    ]
    expected = [
        {**row, "Price": Decimal(row["Price"])}
        for row in expected_door_list(night, MAIN_ORDER, MAIN_CHECK_INS)
    ]
    assert read == expected


async def test_pdf_is_the_printable_door_list(harness: Harness) -> None:
    night = await door_night(harness)
    body, content_type, name = await export(harness, night.lists["main"], "pdf")
    assert content_type == "application/pdf" and name == "main-entrance-2026-12-31.pdf"
    assert len(PdfReader(io.BytesIO(body)).pages) == 1
    (lines,) = pdf_lines(body)
    assert lines[0].startswith("Fête de la musique") and "Page 1 of 1" in lines[0]
    assert lines[1] == "Main entrance · 6 tickets · generated 2026-12-31 21:00 UTC"
    expected = expected_door_list(night, MAIN_ORDER, MAIN_CHECK_INS)
    positions = [lines.index(door_line(lines, row)) for row in expected]
    assert positions == sorted(positions), "not in name order"
    for row in expected:
        line = door_line(lines, row)
        assert line.startswith("☐") and row["Attendee name"] in line and row["Status"] in line
        assert row["Checked in at"][:19].replace("T", " ") in line
    layout = pdftotext_lines(body)
    for row in expected if layout else []:
        (line,) = [line for line in layout if row["Ticket number"] in line]
        assert row["Attendee name"] in line and row["Checked in at"][11:19] in line


async def test_the_scan_log_has_one_row_per_scan_in_server_order(harness: Harness) -> None:
    night = await door_night(harness)
    body, content_type, name = await export(harness, night.lists["main"], "scans-csv")
    assert content_type == "text/csv; charset=utf-8" and name == "main-entrance-scans-2026-12-31.csv"
    header, rows = read_csv(body)
    assert header == SCAN_HEADERS
    assert rows == expected_scans(night)


# --- the command line -------------------------------------------------------------------------------


async def tickets_command(env: dict[str, str], folder: Path, *argv: str) -> tuple[int, bytes, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "export",
        *argv,
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out, err.decode()


async def test_the_command_line_writes_each_file(tmp_path: Path, sqlite_template_file: Path) -> None:
    url = sqlite_copy(sqlite_template_file, tmp_path)
    h = await start_harness(url, tmp_path)
    try:
        night = await door_night(h)
    finally:
        await h.app.aclose()
        await asyncio.to_thread(h.server.stop)
    env = tickets_env(database_url=url, data_dir=tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    main = night.lists["main"]

    status, out, _ = await tickets_command(env, folder, "checkin-list", "--list", main)
    (written,) = folder.iterdir()
    assert status == 0 and re.fullmatch(r"main-entrance-\d{4}-\d\d-\d\d\.csv", written.name)
    assert out.decode().startswith(f"wrote {written}")
    assert read_csv(written.read_bytes())[1] == expected_door_list(night, MAIN_ORDER, MAIN_CHECK_INS)

    status, _, _ = await tickets_command(
        env, folder, "checkin-list", "--list", main, "--format", "pdf", "--out", "door.pdf"
    )
    assert status == 0 and len(PdfReader(folder / "door.pdf").pages) == 1

    status, out, _ = await tickets_command(env, folder, "scans", "--list", main, "--out", "-")
    assert status == 0 and read_csv(out)[1] == expected_scans(night)

    status, _, err = await tickets_command(
        env, folder, "checkin-list", "--list", main, "--format", "xlsx", "--out", "-"
    )
    assert status != 0 and "only CSV" in err
    status, _, err = await tickets_command(env, folder, "scans", "--list", "checklist_nope")
    assert status == 2 and "not found" in err


# --- the writers alone --------------------------------------------------------------------------------


def door_row(n: int, name: str) -> DoorRow:
    return DoorRow(
        ticket_number=f"TKT{n:02d}-00000",
        attendee_name=name,
        attendee_email=None,
        buyer_did=None,
        tier="General",
        unit_amount=1250,
        currency="eur",
        status="active",
        checked_in_at=None,
        last_scan_at=None,
        gate=None,
        device=None,
        inside=False,
        ticket_id=f"ticket_{n}",
        order_id=f"hold_{n}",
        payment_id=None,
    )


def test_every_pdf_page_repeats_the_heading() -> None:
    rows = [door_row(n, f"Guest {n:03d}") for n in range(2 * ROWS_PER_PAGE + 1)]
    pages = pdf_lines(to_pdf(rows, "Night", "Main entrance"))
    assert len(pages) == 3
    for number, lines in enumerate(pages, start=1):
        assert lines[0] == f"Night Page {number} of 3" and lines[1] == "Main entrance"
        assert lines[2].startswith("Attendee name Ticket number Tier Status Checked in")
    names = [line.split()[2] for lines in pages for line in lines[3:]]
    assert names == [f"{n:03d}" for n in range(len(rows))]


def test_text_a_spreadsheet_would_run_stays_text() -> None:
    rows = [
        door_row(1, '=HYPERLINK("http://example.org")'),
        door_row(2, "@SUM(A1)"),
        door_row(3, "Bell\x07 Ringer"),
    ]
    _, read = read_csv(to_csv(rows))
    assert [r["Attendee name"] for r in read] == [
        '\'=HYPERLINK("http://example.org")',
        "'@SUM(A1)",
        "Bell\x07 Ringer",
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(rows, "List"))).active
    assert sheet is not None
    assert sheet["B2"].value == '=HYPERLINK("http://example.org")' and sheet["B2"].data_type == "s"
    assert sheet["B4"].value == "Bell Ringer", "XML cannot carry control characters"


def test_sheet_names() -> None:
    assert sheet_title("'Door: [VIP]/North's'") == "Door   VIP  North's"
    assert sheet_title("A" * 40) == "A" * 31 and sheet_title("[]") == "Sheet"

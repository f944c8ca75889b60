"""Export files from rows: pure functions, rows in, bytes out.

* CSV: UTF-8 with a byte order mark (so that Excel reads the accents right), CRLF line ends, a header
  row. Text that a spreadsheet would run as a formula (starting with ``= + - @``, a tab or a carriage
  return) gets a leading apostrophe, as OWASP advises for CSV.
* XLSX: one sheet, bold frozen header row with a filter, fixed column widths; times are text in
  RFC 3339 UTC exactly as in the CSV (they sort correctly as text, and no timezone is lost); the
  price is a number in the currency's major unit; text is never a formula.
* PDF: the printable door list (A4 portrait): a heading on every page (title, subtitle, page
  number), then the column headings, then one line per ticket with a box to tick.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import string
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, cast
from xml.sax.saxutils import escape

from server.domain.exports.rows import ConflictRow, DoorRow, ScanRow

if TYPE_CHECKING:
    from fpdf.fonts import TTFFont

Cell = str | Decimal | None

# (header, XLSX column width in characters)
DOOR_COLUMNS: tuple[tuple[str, float], ...] = (
    ("Ticket number", 14),
    ("Attendee name", 28),
    ("Attendee email", 28),
    ("Tier", 20),
    ("Price", 10),
    ("Currency", 9),
    ("Status", 10),
    ("Checked in at", 25),
    ("Gate", 12),
    ("Device", 16),
    ("Inside", 7),
    ("Last scan", 25),
    ("Buyer DID", 34),
    ("Ticket ID", 34),
    ("Order ID", 34),
    ("Payment ID", 24),
)
SCAN_COLUMNS = (
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
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SHEET_TITLE_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", " "))
SHEET_TITLE_MAX = 31

# --- XLSX: the parts of a one-sheet workbook (ECMA-376); only the sheet's rows vary ------------

COLUMN_LETTERS = string.ascii_uppercase
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
QUOTE = {'"': "&quot;"}
XLSX_CHUNK = 1000
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_TYPES = "application/vnd.openxmlformats-officedocument.spreadsheetml"
XLSX_PARTS = {
    "[Content_Types].xml": XML_HEAD
    + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{OFFICE_TYPES}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{OFFICE_TYPES}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{OFFICE_TYPES}.styles+xml"/>'
    "</Types>",
    "_rels/.rels": XML_HEAD + f'<Relationships xmlns="{PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>",
    "xl/_rels/workbook.xml.rels": XML_HEAD + f'<Relationships xmlns="{PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{DOC_RELS}/styles" Target="styles.xml"/>'
    "</Relationships>",
    # Style 0: Calibri 11; style 1: the same, bold (the header row).
    "xl/styles.xml": XML_HEAD + f'<styleSheet xmlns="{MAIN_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>",
}


def _workbook_xml(sheet: str, last: str) -> str:
    """The workbook: one sheet, and the range its filter covers."""
    quoted = "'" + sheet.replace("'", "''") + "'"
    column, row = last[0], last[1:]
    return (
        f'{XML_HEAD}<workbook xmlns="{MAIN_NS}" xmlns:r="{DOC_RELS}">'
        f'<sheets><sheet name="{escape(sheet, QUOTE)}" sheetId="1" r:id="rId1"/></sheets>'
        '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
        f"{escape(quoted)}!$A$1:${column}${row}</definedName></definedNames></workbook>"
    )


def _sheet_start(last: str) -> str:
    """The sheet up to its first row: the header row stays in view (frozen pane), columns have widths."""
    columns = "".join(
        f'<col min="{n}" max="{n}" width="{width}" customWidth="1"/>'
        for n, (_, width) in enumerate(DOOR_COLUMNS, start=1)
    )
    return (
        f'{XML_HEAD}<worksheet xmlns="{MAIN_NS}" xmlns:r="{DOC_RELS}"><dimension ref="A1:{last}"/>'
        '<sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{columns}</cols><sheetData>'
    )


def door_cells(row: DoorRow) -> tuple[Cell, ...]:
    """The cells of one ticket, in the order of :data:`DOOR_COLUMNS`."""
    return (
        row.ticket_number,
        row.attendee_name,
        row.attendee_email,
        row.tier,
        row.price,
        row.currency.upper(),
        row.status,
        row.checked_in_at,
        row.gate,
        row.device,
        "yes" if row.inside else "no",
        row.last_scan_at,
        row.buyer_did,
        row.ticket_id,
        row.order_id,
        row.payment_id,
    )


def _inert(value: Cell) -> Cell:
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _csv(header: Sequence[str], rows: Iterable[Sequence[Cell]], delimiter: str) -> bytes:
    out = io.BytesIO()
    with io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True) as text:
        writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([_inert(value) for value in row] for row in rows)
        text.flush()
        return out.getvalue()


def to_csv(rows: Iterable[DoorRow], delimiter: str = ",") -> bytes:
    """The door list; ``;`` for spreadsheets in locales whose decimal separator is a comma."""
    return _csv([name for name, _ in DOOR_COLUMNS], map(door_cells, rows), delimiter)


def scans_to_csv(rows: Iterable[ScanRow], delimiter: str = ",") -> bytes:
    """The check-in log, one line per scan."""
    return _csv(SCAN_COLUMNS, rows, delimiter)


CONFLICT_COLUMNS = (
    "Detected at",
    "Kind",
    "Ticket number",
    "Attendee name",
    "Ticket ID",
    "Records",
    "Conflict ID",
)


def conflicts_to_csv(rows: Iterable[ConflictRow], delimiter: str = ",") -> bytes:
    """The list's check-in conflicts, one line each."""
    return _csv(CONFLICT_COLUMNS, rows, delimiter)


def sheet_title(title: str) -> str:
    """``title`` as Excel allows a sheet name: at most 31 characters, none of ``[]:*?/\\``, no
    apostrophe first or last."""
    return title.translate(SHEET_TITLE_FORBIDDEN).strip(" '")[:SHEET_TITLE_MAX].strip(" '") or "Sheet"


def _xml_text(value: str) -> str:
    """``value`` escaped for XML, without the control characters XML 1.0 cannot carry."""
    return escape(XML_ILLEGAL.sub("", value))


def _xlsx_row(number: int, values: Iterable[Cell], style: str = "") -> str:
    """One ``<row>``: text as inline strings (never formulas), decimals as numbers, empty cells left out."""
    cells = []
    for column, value in zip(COLUMN_LETTERS, values, strict=False):
        if value is None or value == "":
            continue
        if isinstance(value, Decimal):
            cells.append(f'<c r="{column}{number}"{style}><v>{value}</v></c>')
        else:
            text = _xml_text(value)
            cells.append(
                f'<c r="{column}{number}"{style} t="inlineStr">'
                f'<is><t xml:space="preserve">{text}</t></is></c>'
            )
    return f'<row r="{number}">{"".join(cells)}</row>'


def to_xlsx(rows: Sequence[DoorRow], title: str) -> bytes:
    """The door list as a workbook with one sheet named after ``title``. The SpreadsheetML is written
    directly and streamed into the zip: several times faster than a library's cell objects."""
    sheet = sheet_title(title)
    last = f"{COLUMN_LETTERS[len(DOOR_COLUMNS) - 1]}{len(rows) + 1}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for part, text in XLSX_PARTS.items():
            package.writestr(part, text)
        package.writestr("xl/workbook.xml", _workbook_xml(sheet, last))
        with package.open("xl/worksheets/sheet1.xml", "w") as stream:
            stream.write(_sheet_start(last).encode())
            stream.write(_xlsx_row(1, [header for header, _ in DOOR_COLUMNS], ' s="1"').encode())
            for start in range(0, len(rows), XLSX_CHUNK):
                chunk = rows[start : start + XLSX_CHUNK]
                text = "".join(_xlsx_row(start + n, door_cells(row)) for n, row in enumerate(chunk, start=2))
                stream.write(text.encode())
            stream.write(f'</sheetData><autoFilter ref="A1:{last}"/></worksheet>'.encode())
    return out.getvalue()


# --- PDF -----------------------------------------------------------------------------------------

FONT_DIR = Path("/usr/share/fonts/truetype")
# DejaVu Sans (Debian: fonts-dejavu-core) covers Latin, Greek, Cyrillic, Hebrew, Arabic and many
# symbols. The fallbacks are tried in order for what it lacks (Debian packages, installed by
# scripts/bootstrap): Chinese and Japanese (fonts-droid-fallback), Korean (fonts-nanum), emoji
# (fonts-symbola). A character none of them has prints as U+FFFD; a missing fallback font only
# narrows what prints.
REGULAR_FONT = FONT_DIR / "dejavu" / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "dejavu" / "DejaVuSans-Bold.ttf"
FALLBACK_FONTS = {
    "cjk": FONT_DIR / "droid" / "DroidSansFallbackFull.ttf",
    "hangul": FONT_DIR / "nanum" / "NanumGothic.ttf",
    "symbols": FONT_DIR / "ancient-scripts" / "Symbola_hint.ttf",
}
MAIN = "main"
# Symbola carries hinting tables that the font subsetter drops (harmlessly) with a warning each time.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
MISSING = "\ufffd"
ELLIPSIS = "…"
CHECKBOX = "☐"

PAGE_WIDTH, MARGIN = 210.0, 12.0
TITLE_Y, SUBTITLE_Y, HEADINGS_Y, FIRST_ROW_Y, LAST_ROW_Y = 18.0, 24.0, 32.0, 38.5, 287.0
ROW_HEIGHT = 5.5
ROWS_PER_PAGE = int((LAST_ROW_Y - FIRST_ROW_Y) / ROW_HEIGHT) + 1
TEXT_SIZE, TITLE_SIZE = 9.0, 13.0
PAGE_NUMBER_WIDTH = 32.0
# (heading, width in mm): 186 mm between the margins.
PDF_COLUMNS: tuple[tuple[str, float], ...] = (
    ("", 7),
    ("Attendee name", 58),
    ("Ticket number", 31),
    ("Tier", 37),
    ("Status", 17),
    ("Checked in (UTC)", 36),
)
CELL_GAP = 1.5


class DoorListPdf:
    """Lays out the door list with fpdf2. Text is drawn in DejaVu Sans; runs of characters it lacks
    switch to a fallback font. The fallbacks' character maps are read when a text first needs one,
    and a fallback font itself (tens of MB once loaded) when it is first drawn. Widths come straight
    from the fonts' advance widths, and the font is changed only when it differs, to keep 50,000 rows
    fast."""

    def __init__(self, title: str, subtitle: str, pages: int) -> None:
        from fpdf import FPDF  # on the first PDF: importing it costs every server process 0.4 s

        if not REGULAR_FONT.exists():
            raise RuntimeError(f"the PDF export needs the DejaVu Sans font at {REGULAR_FONT}")
        self.title = title
        self.subtitle = subtitle
        self.pages = pages
        self.style = ""
        self.size = TEXT_SIZE
        self.selected: tuple[str, str, float] | None = None
        self.loaded = {MAIN}
        self.pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        self.pdf.set_auto_page_break(auto=False)
        self.pdf.set_title(title)
        self.pdf.add_font(MAIN, "", str(REGULAR_FONT))
        self.pdf.add_font(MAIN, "B", str(BOLD_FONT))
        self.main_chars = frozenset(map(chr, self._select(MAIN).cmap))
        self.fallbacks: list[tuple[str, frozenset[str]]] | None = None

    def _fallbacks(self) -> list[tuple[str, frozenset[str]]]:
        if self.fallbacks is None:
            from fontTools.ttLib import TTFont

            self.fallbacks = []
            for family, path in FALLBACK_FONTS.items():
                if path.exists():
                    with TTFont(path, lazy=True) as font:
                        self.fallbacks.append((family, frozenset(map(chr, font.getBestCmap()))))
        return self.fallbacks

    def set_font(self, style: str, size: float) -> None:
        self.style, self.size = style, size

    def _select(self, family: str) -> TTFFont:
        """Make ``family`` (bold when the style is; fallbacks never are) the current font."""
        wanted = (family, self.style if family == MAIN else "", self.size)
        if family not in self.loaded:
            self.pdf.add_font(family, "", str(FALLBACK_FONTS[family]))
            self.loaded.add(family)
        if wanted != self.selected:
            self.pdf.set_font(*wanted)
            self.selected = wanted
        return cast("TTFFont", self.pdf.current_font)  # every font added is a TrueType file

    def runs(self, text: str) -> list[tuple[str, str]]:
        """``text`` split into (font, characters) runs; characters no font has become U+FFFD."""
        if self.main_chars.issuperset(text):
            return [(MAIN, text)]
        runs: list[tuple[str, str]] = []
        for char in text:
            font, drawn = self._glyph(char)
            if runs and runs[-1][0] == font:
                runs[-1] = (font, runs[-1][1] + drawn)
            else:
                runs.append((font, drawn))
        return runs

    def _glyph(self, char: str) -> tuple[str, str]:
        """The first font that has ``char``, and ``char``; else the main font and U+FFFD."""
        if char in self.main_chars:
            return MAIN, char
        for family, chars in self._fallbacks():
            if char in chars:
                return family, char
        return MAIN, MISSING

    def _run_width(self, font: str, chars: str) -> float:
        widths = self._select(font).cw
        return sum(map(widths.__getitem__, map(ord, chars))) * self.size * 0.001 / self.pdf.k

    def width(self, runs: Sequence[tuple[str, str]]) -> float:
        return sum(self._run_width(font, chars) for font, chars in runs)

    def fit(self, text: str, width: float) -> list[tuple[str, str]]:
        """The runs of ``text``, cut short with an ellipsis when wider than ``width`` mm."""
        runs = self.runs(text)
        if self.width(runs) <= width:
            return runs
        low, high = 0, len(text)  # the longest prefix that fits with the ellipsis
        while low < high:
            middle = (low + high + 1) // 2
            if self.width(self.runs(text[:middle] + ELLIPSIS)) <= width:
                low = middle
            else:
                high = middle - 1
        return self.runs(text[:low] + ELLIPSIS)

    def put(self, x: float, y: float, text: str, width: float) -> None:
        """``text`` at baseline ``y`` from ``x``, within ``width`` mm."""
        for font, chars in self.fit(text, width):
            self._select(font)
            self.pdf.text(x, y, chars)
            x += self._run_width(font, chars)

    def new_page(self) -> None:
        pdf = self.pdf
        pdf.add_page()
        self.selected = None  # a new page starts without a font
        self.set_font("B", TITLE_SIZE)
        self.put(MARGIN, TITLE_Y, self.title, PAGE_WIDTH - 2 * MARGIN - PAGE_NUMBER_WIDTH)
        self.set_font("", TEXT_SIZE)
        page_number = f"Page {pdf.page_no()} of {self.pages}"
        self.put(PAGE_WIDTH - MARGIN - PAGE_NUMBER_WIDTH, TITLE_Y, page_number, PAGE_NUMBER_WIDTH)
        self.put(MARGIN, SUBTITLE_Y, self.subtitle, PAGE_WIDTH - 2 * MARGIN)
        self.set_font("B", TEXT_SIZE)
        x = MARGIN
        for heading, width in PDF_COLUMNS:
            if heading:
                self.put(x, HEADINGS_Y, heading, width - CELL_GAP)
            x += width
        pdf.set_line_width(0.3)
        pdf.line(MARGIN, HEADINGS_Y + 2, PAGE_WIDTH - MARGIN, HEADINGS_Y + 2)
        pdf.set_line_width(0.1)
        pdf.set_draw_color(190)
        self.set_font("", TEXT_SIZE)

    def rows(self, rows: Sequence[DoorRow]) -> None:
        if not rows:
            self.new_page()
            self.put(MARGIN, FIRST_ROW_Y, "No tickets.", PAGE_WIDTH - 2 * MARGIN)
        for index, row in enumerate(rows):
            if index % ROWS_PER_PAGE == 0:
                self.new_page()
            y = FIRST_ROW_Y + index % ROWS_PER_PAGE * ROW_HEIGHT
            x = MARGIN
            for text, (_, width) in zip(door_list_cells(row), PDF_COLUMNS, strict=True):
                if text:
                    self.put(x, y, text, width - CELL_GAP)
                x += width
            self.pdf.line(MARGIN, y + 1.8, PAGE_WIDTH - MARGIN, y + 1.8)


def door_list_cells(row: DoorRow) -> tuple[str, str, str, str, str, str]:
    """What the printed door list shows of a ticket: a box to tick, the name, the ticket number,
    the tier, the status and the first check-in (``2026-12-31 20:03:12``, UTC)."""
    checked_in = "" if row.checked_in_at is None else row.checked_in_at[:19].replace("T", " ")
    return (CHECKBOX, row.attendee_name, row.ticket_number, row.tier, row.status, checked_in)


def to_pdf(rows: Sequence[DoorRow], title: str, subtitle: str) -> bytes:
    """The printable door list, in the order of ``rows``."""
    document = DoorListPdf(title, subtitle, pages=max(1, -(-len(rows) // ROWS_PER_PAGE)))
    document.rows(rows)
    return bytes(document.pdf.output())

"""Pure export rules: the formats a list exports to and their file names, amounts in a currency's
major unit, and how names are shown and sorted on a door list."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from server.atproto.datetimes import format_datetime
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


def check_format(fmt: str) -> Format:
    """The export format ``fmt`` names."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


NO_NAME = "—"

# ISO 4217 currencies whose minor unit is not a hundredth (amounts are stored in minor units).
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "isk",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "iqd", "jod", "kwd", "lyd", "omr", "tnd"])


def price(amount: int, currency: str) -> Decimal:
    """An amount in minor units as a decimal in the currency's major unit: 1250 eur → 12.50,
    3000 jpy → 3000, 1250 kwd → 1.250."""
    code = currency.lower()
    digits = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Decimal(amount).scaleb(-digits)


def display_name(name: str | None) -> str:
    return name if name and name.strip() else NO_NAME


def name_order(name: str | None, ticket_number: str) -> tuple[bool, str, str, str]:
    """Names ignoring case and accents (``Émile`` beside ``emile``), missing names last, then the
    ticket number."""
    if not name or not name.strip():
        return (True, "", "", ticket_number)
    folded = name.casefold()
    if folded.isascii():
        return (False, folded, folded, ticket_number)
    bare = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    return (False, bare, folded, ticket_number)

"""The Lexicon ``datetime`` format (RFC 3339) to and from the integer milliseconds the service keeps
([ADR 0001](../../docs/adr/0001-integer-times-and-money.md))."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.errors import InvalidRequest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_datetime(ms: int) -> str:
    """RFC 3339, UTC, millisecond precision, uppercase ``T`` and ``Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def format_optional_datetime(ms: int | None) -> str | None:
    return None if ms is None else format_datetime(ms)


def parse_datetime(value: str, field: str) -> int:
    """An RFC 3339 datetime (any offset) to epoch milliseconds; sub-millisecond digits truncate."""
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{field} must be an RFC 3339 datetime") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{field} must include a timezone offset")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def parse_optional_datetime(value: str | None, field: str) -> int | None:
    return None if value is None else parse_datetime(value, field)

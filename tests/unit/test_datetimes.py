"""The Lexicon ``datetime`` format the service writes: RFC 3339 in UTC to the millisecond, which
reads back to the same instant."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from server.atproto.datetimes import format_datetime, parse_datetime

RFC3339_UTC_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# Year 1 to year 9999, the range Python's datetime holds.
FIRST_MS, LAST_MS = -62_135_596_800_000, 253_402_300_799_999
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(FIRST_MS, LAST_MS))
def test_a_time_is_written_in_rfc3339_and_reads_back(ms: int) -> None:
    text = format_datetime(ms)
    assert RFC3339_UTC_MS.fullmatch(text), text
    assert parse_datetime(text, "at") == ms
    moment = EPOCH + timedelta(milliseconds=ms)
    assert text == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_known_instants() -> None:
    assert format_datetime(0) == "1970-01-01T00:00:00.000Z"
    assert format_datetime(-1) == "1969-12-31T23:59:59.999Z"
    assert format_datetime(1_765_000_000_123) == "2025-12-06T05:46:40.123Z"
    assert format_datetime(FIRST_MS) == "0001-01-01T00:00:00.000Z"  # four digits, as RFC 3339 asks

"""Small shared vocabulary: identifiers, clocks, environments and paging cursors."""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
import time
from typing import Any, Protocol

from server.errors import InvalidRequest

ENVIRONMENTS = ("test", "live")
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
# An id's 26 digits (130 bits, the top two zero) two at a time: every 10-bit value's two digits.
_CROCKFORD_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
_PAIR_SHIFTS = tuple(range(120, -1, -10))


_last_id = [0]
_id_lock = threading.Lock()
# Random bytes for ids, read from the system a page at a time (a read per id was most of an id's
# cost), never shared across a fork: a child starts with none.
_ID_RANDOM_BYTES = 10
_random = bytearray()
os.register_at_fork(after_in_child=_random.clear)


def _random_bits() -> int:
    """80 random bits from the system's generator; called under ``_id_lock``."""
    if not _random:
        _random.extend(os.urandom(_ID_RANDOM_BYTES * 400))
    value = int.from_bytes(_random[-_ID_RANDOM_BYTES:])
    del _random[-_ID_RANDOM_BYTES:]
    return value


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """``<prefix>_<26 chars>``: 48 bits of milliseconds then 80 random bits, Crockford base32.
    Time-ordered, and strictly increasing within a process (ids made in the same millisecond
    count up from the previous one), so cursors and listings follow creation order."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _id_lock:
        value = (ms & ((1 << 48) - 1)) << 80 | _random_bits()
        if value >> 80 == _last_id[0] >> 80 and value <= _last_id[0]:
            value = _last_id[0] + 1
        _last_id[0] = value
    return prefix + "_" + "".join([_CROCKFORD_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def compact(values: dict[str, Any]) -> dict[str, Any]:
    """Optional lexicon properties are left out, not sent as null."""
    return {k: v for k, v in values.items() if v is not None}


# A paging cursor is versioned: a cursor of another version, or one that decodes to anything but an
# id of the listed rows, is refused rather than sent to the database.
_CURSOR_VERSION = "1."
_CURSOR_ID = re.compile(r"[0-9a-z]{1,64}")
# Arrival-order cursors (``pullCheckIns``) count rows of a 32-bit sequence; desks keep them as
# integers, so they stay decimal.
_SEQ_CURSOR = re.compile(r"[0-9]{1,10}")
_MAX_SEQ = 2**31 - 1


def encode_cursor(row_id: str) -> str:
    """An opaque paging cursor: the id of the last row of the page."""
    return base64.urlsafe_b64encode(f"{_CURSOR_VERSION}{row_id}".encode()).decode().rstrip("=")


def _bad_cursor() -> InvalidRequest:
    return InvalidRequest("cursor is not one this service gave out")


def decode_cursor(cursor: str, prefix: str) -> str:
    """The row id in a cursor :func:`encode_cursor` gave out for rows whose ids start with ``prefix``."""
    try:
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad_cursor() from None
    row_id = text.removeprefix(_CURSOR_VERSION)
    if row_id == text or not row_id.startswith(prefix) or not _CURSOR_ID.fullmatch(row_id[len(prefix) :]):
        raise _bad_cursor()
    return row_id


def decode_seq_cursor(cursor: str) -> int:
    """A place in an arrival order, as ``str(seq)`` of its last row (``0``: from the start)."""
    if not _SEQ_CURSOR.fullmatch(cursor) or int(cursor) > _MAX_SEQ:
        raise _bad_cursor()
    return int(cursor)

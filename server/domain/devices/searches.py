"""The log of desks' manual searches (``searchTickets``): one row per search, per device, with when,
the list, the kind of query and how many tickets matched; never the query, which is a guest's name
or ticket number. The organizer reads it with ``tickets device searches <device id>``."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import DeviceSearch

# Ticket numbers are Crockford base32 (no I, L, O or U) in two groups of five: ``K7QM2-9XD4P``.
_NUMBER_PIECE = re.compile(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{0,5}")


def query_kind(query: str) -> str:
    """``number`` for a ticket number or a piece of one (letters, digits and dashes with a digit, or
    the shape of a number up to and past its dash, which may have no digit at all), else ``name``."""
    compact = query.replace("-", "")
    if not (compact.isascii() and compact.isalnum()):
        return "name"
    return "number" if any(c.isdigit() for c in compact) or _NUMBER_PIECE.fullmatch(query.upper()) else "name"


def log_search(
    session: AsyncSession, device_id: str, list_id: str, query: str, matches: int, now_ms: int
) -> None:
    session.add(
        DeviceSearch(
            device_id=device_id, list_id=list_id, query_kind=query_kind(query), matches=matches, at_ms=now_ms
        )
    )


async def searches(session: AsyncSession, device_id: str) -> list[DeviceSearch]:
    """A device's searches, oldest first."""
    return list(
        await session.scalars(
            select(DeviceSearch).where(DeviceSearch.device_id == device_id).order_by(DeviceSearch.id)
        )
    )

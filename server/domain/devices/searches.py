"""The log of desks' manual searches (``searchTickets``): one row per search, per device, with when,
the list, the kind of query and how many tickets matched; never the query, which is a guest's name
or ticket number. The organizer reads it with ``tickets device searches <device id>``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import DeviceSearch


def query_kind(query: str) -> str:
    """``number`` for a ticket number (letters, digits and dashes, at least one digit), else
    ``name``."""
    compact = query.replace("-", "")
    return "number" if compact.isalnum() and any(c.isdigit() for c in compact) else "name"


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

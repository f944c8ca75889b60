"""The "publish needed" mark, set in the transaction of every catalog change."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import EventPublication


async def mark_changed(session: AsyncSession, event_id: str) -> None:
    """Note that the public records of ``event_id`` may have to change. Nothing happens for an
    event whose records are not published; for one that is, the publisher picks the mark up."""
    await session.execute(
        update(EventPublication)
        .where(EventPublication.event_id == event_id)
        .values(version=EventPublication.version + 1)
        .execution_options(synchronize_session=False)
    )

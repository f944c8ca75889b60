"""The "publish needed" mark, set in the transaction of every catalog change."""

from __future__ import annotations

from server.db.engine import Unit, driver_of

_MARK = "UPDATE event_publications SET version = version + 1 WHERE event_id = :event_id"


async def mark_changed(session: Unit, event_id: str) -> None:
    """Note that the public records of ``event_id`` may have to change. Nothing happens for an
    event whose records are not published; for one that is, the publisher picks the mark up."""
    await (await driver_of(session)).execute(_MARK, {"event_id": event_id})

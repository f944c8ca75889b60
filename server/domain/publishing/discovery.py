"""Public discovery: the records this service published for an organizer, as anyone may list them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_

from server.db.engine import Database
from server.db.models import Event, PublishedRecord
from server.domain.common import decode_cursor, encode_cursor
from server.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class PublicRecord:
    record: PublishedRecord
    event: Event


async def public_records(
    db: Database,
    *,
    environment: str,
    organizer: str,
    collections: Sequence[str],
    event_uri: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[PublicRecord], str | None]:
    """One page of the organizer's published records in ``collections``, in (collection, key)
    order; the records of archived events are left out (they are being deleted from the
    repository). The cursor is absent on the last page."""
    query = (
        select(PublishedRecord, Event)
        .join(Event, Event.id == PublishedRecord.event_id)
        .where(
            PublishedRecord.repo == organizer,
            PublishedRecord.collection.in_(collections),
            Event.environment == environment,
            Event.status != "archived",
        )
    )
    if event_uri is not None:
        query = query.where(Event.uri == event_uri)
    if cursor is not None:
        collection, slash, rkey = decode_cursor(cursor, "").partition("/")
        if not slash:
            raise InvalidRequest("cursor is not one this service gave out")
        query = query.where(tuple_(PublishedRecord.collection, PublishedRecord.rkey) > (collection, rkey))
    async with db.read() as session:
        rows = (
            await session.execute(
                query.order_by(PublishedRecord.collection, PublishedRecord.rkey).limit(limit + 1)
            )
        ).all()
    found = [PublicRecord(record, event) for record, event in rows[:limit]]
    if len(rows) <= limit:
        return found, None
    last = found[-1].record
    return found, encode_cursor(f"{last.collection}/{last.rkey}")

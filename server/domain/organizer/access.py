"""Who may see an event's back office: the app it belongs to, with its organizer's standing
consent (an XRPC call), or a console session of its organizer or of the operator."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import Event
from server.domain.caller import Caller
from server.domain.catalog.service import ensure_can_manage, find_event
from server.errors import EventNotFound


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks, and the name their changes are logged under (``actor``)."""

    actor: str
    # The organizer a console session is scoped to; None for the operator (every organizer).
    organizer_did: str | None
    # Set for an app's call: the app, checked for ownership and the organizer's consent.
    caller: Caller | None = None


def app_viewer(caller: Caller) -> Viewer:
    return Viewer(actor=caller.app_did, organizer_did=None, caller=caller)


def console_viewer(organizer_did: str | None) -> Viewer:
    return Viewer(actor=f"console:{organizer_did or 'operator'}", organizer_did=organizer_did)


async def viewed_event(session: AsyncSession, viewer: Viewer, event_id: str) -> Event:
    """The event, if ``viewer`` may see it; an event of another organizer is not found."""
    if viewer.caller is not None:
        event = await find_event(session, viewer.caller.environment, event_id=event_id)
        await ensure_can_manage(session, event, viewer.caller)
        return event
    found = await session.get(Event, event_id)
    if found is None or (viewer.organizer_did is not None and found.organizer_did != viewer.organizer_did):
        raise EventNotFound("this event is not ticketed here")
    return found


async def viewed_events(db: Database, viewer: Viewer) -> list[Event]:
    """A console's events, newest first (an app lists its events with the catalog methods)."""
    query = select(Event).order_by(Event.created_ms.desc())
    if viewer.organizer_did is not None:
        query = query.where(Event.organizer_did == viewer.organizer_did)
    async with db.read() as session:
        return list(await session.scalars(query))

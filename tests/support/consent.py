"""Organizer consent in tests: organizers of their own, other apps, and the rows a deployment from
before consent may hold."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from conftest import Harness
from sqlalchemy import func, select

from server.db.engine import Database
from server.db.models import App, CheckInList, Event, ListKey
from server.domain.common import new_id
from support.server import AppClient

CALENDAR = "community.lexicon.calendar.event"
_rkeys = itertools.count(1)


def calendar_uri(organizer: str) -> str:
    """A fresh calendar event URI in the organizer's repository."""
    return f"at://{organizer}/{CALENDAR}/3kconsent{next(_rkeys):05d}"


def event_body(organizer: str, uri: str | None = None, **extra: Any) -> dict[str, Any]:
    """``createTicketEvent`` input ticketing a (new) event of ``organizer`` as active."""
    uri = uri or calendar_uri(organizer)
    return {"organizerDid": organizer, "event": {"uri": uri, "title": "Night"}, "status": "active", **extra}


def tier_body(organizer: str, uri: str, unit_amount: int = 1000, **extra: Any) -> dict[str, Any]:
    return {
        "organizerDid": organizer,
        "event": {"uri": uri},
        "title": "GA",
        "currency": "eur",
        "unitAmount": unit_amount,
        "quantityTotal": 20,
        **extra,
    }


async def consented_app(h: Harness, did: str, organizer: str) -> AppClient:
    """Another registered app that holds the organizer's consent, granted the one way there is: its
    first ticketing call for the organizer (here an event of its own, left paused) carried the
    organizer's assertion."""
    client = await h.client(did, acts_for=[organizer])
    await client.ok("createTicketEvent", {**event_body(organizer), "status": "paused"})
    return client


def refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text


async def app_id(h: Harness, did: str, environment: str = "test") -> str:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.read() as session:
            found = await session.scalar(select(App.id).where(App.did == did, App.environment == environment))
    finally:
        await db.dispose()
    assert found is not None
    return found


async def legacy_event(h: Harness, *, owner_did: str, organizer_did: str, uri: str) -> str:
    """An event row as the service before consent let any app write it: owned by ``owner_did``'s
    app, for whatever organizer it named, without check-in lists. Answers its id."""
    owner = await app_id(h, owner_did)
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.write() as session:
            event = Event(
                id=new_id("event", 0),
                environment="test",
                organizer_did=organizer_did,
                owner_app_id=owner,
                uri=uri,
                title="Night",
                status="active",
                created_ms=0,
                updated_ms=0,
            )
            session.add(event)
    finally:
        await db.dispose()
    return event.id


async def lists_and_keys(h: Harness, event_id: str) -> tuple[int, int]:
    """How many check-in lists the event has, and how many signing keys they have."""
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.read() as session:
            lists = await session.scalar(
                select(func.count()).select_from(CheckInList).where(CheckInList.event_id == event_id)
            )
            keys = await session.scalar(
                select(func.count())
                .select_from(ListKey)
                .join(CheckInList, CheckInList.id == ListKey.list_id)
                .where(CheckInList.event_id == event_id)
            )
    finally:
        await db.dispose()
    return int(lists or 0), int(keys or 0)

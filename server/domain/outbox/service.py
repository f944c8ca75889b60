"""Writing to the outbox. A message is added in the transaction of the change it reports, so it
exists exactly when the change does. Also the operator's view: listing messages and redriving them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import ColumnElement

from server.db.engine import Unit, driver_of
from server.db.models import App, Event, OutboxMessage, WebhookAttempt
from server.db.rows import Shape
from server.domain.common import new_id
from server.domain.webhook_format import BROKER_TYPE_BASE, envelope
from server.observability import current_request_id

# Where an app's lifecycle events go: its webhook URL, or (XRPC delivery) its DID, whose document
# names its receiver. None: the app receives nothing, and nothing is queued for it.
DESTINATION = case((App.delivery == "xrpc", App.did), else_=App.webhook_url)


def destination_sql(apps: str) -> str:
    """:data:`DESTINATION` as SQL for statements sent to the driver, of the ``apps`` row aliased so."""
    return f"CASE WHEN {apps}.delivery = 'xrpc' THEN {apps}.did ELSE {apps}.webhook_url END"


_EVENT_URI = "SELECT uri FROM events WHERE id = :event_id"
_EVENT_URIS, _DESTINATIONS = "tickets.event_uris", "tickets.destinations"
_WEBHOOK_URL = f"SELECT {destination_sql('a')} FROM apps a WHERE a.id = :app_id"  # noqa: S608 (constant names)


async def enqueue(
    session: Unit, app_id: str, environment: str, event_type: str, data: dict[str, Any], now_ms: int
) -> OutboxMessage | None:
    """Queue ``event_type`` for the app, in the caller's transaction; nothing when the app receives
    no lifecycle events."""
    message = outbox_message(
        app_id, await webhook_url(session, app_id), environment, event_type, data, now_ms
    )
    if message is not None:
        await MESSAGE.insert(await driver_of(session), message)
    return message


async def event_uri(session: Unit, event_id: str) -> str:
    """The calendar event URI every lifecycle event names (``data.eventUri``); no statement when
    the session has the event loaded, or the transaction has read its URI, already."""
    loaded = (
        session.identity_map.get(identity_key(Event, event_id)) if isinstance(session, AsyncSession) else None
    )
    if isinstance(loaded, Event):
        return loaded.uri
    known: dict[str, str] = session.info.setdefault(_EVENT_URIS, {})  # an event's URI never changes
    if event_id not in known:
        # Every hold and ticket belongs to an event.
        (row,) = await (await driver_of(session)).fetch(_EVENT_URI, {"event_id": event_id})
        known[event_id] = row[0]
    return known[event_id]


def remember(session: Unit, *, event_id: str, uri: str, app_id: str, destination: str | None) -> None:
    """An event's URI and an app's destination, read along with a row that names them (a hold's),
    kept for the rest of the session or transaction (its ``info``): :func:`event_uri` and
    :func:`webhook_url` then ask nothing more of the database for them."""
    session.info.setdefault(_EVENT_URIS, {})[event_id] = uri
    session.info.setdefault(_DESTINATIONS, {})[app_id] = destination


async def webhook_url(session: Unit, app_id: str) -> str | None:
    """Where the app's lifecycle events go (:data:`DESTINATION`); no statement when the session or
    transaction has it already (:func:`remember`, or an earlier call)."""
    known: dict[str, str | None] = session.info.setdefault(_DESTINATIONS, {})
    if app_id not in known:
        rows = await (await driver_of(session)).fetch(_WEBHOOK_URL, {"app_id": app_id})
        known[app_id] = rows[0][0] if rows else None
    return known[app_id]


MESSAGE = Shape(OutboxMessage, "o")


def outbox_message(
    app_id: str,
    webhook_url: str | None,
    environment: str,
    event_type: str,
    data: dict[str, Any],
    now_ms: int,
) -> OutboxMessage | None:
    """A lifecycle event for the app, to where its events go (:func:`webhook_url`, read already in
    the transaction of what the message reports); None when they go nowhere. Written through the
    driver by its shape (:data:`MESSAGE`: :func:`enqueue`, ``server.db.rows.insert_all``)."""
    if not webhook_url:
        return None
    delivery_id = new_id("whd", now_ms)
    return MESSAGE.new(
        delivery_id=delivery_id,
        app_id=app_id,
        environment=environment,
        event_type=event_type,
        body=envelope(delivery_id, event_type, now_ms, environment, data, BROKER_TYPE_BASE).decode(),
        state="pending",
        attempts=0,
        next_attempt_ms=now_ms,
        created_ms=now_ms,
        request_id=current_request_id(),
    )


async def backlog(session: AsyncSession) -> tuple[int, int | None]:
    """How many messages wait to be delivered, and when the oldest of them was written."""
    row = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_ms)).where(OutboxMessage.state == "pending")
        )
    ).one()
    return int(row[0]), row[1]


@dataclass(frozen=True)
class MessageSummary:
    """One outbox message as the operator sees it; ``attempts`` counts the delivery log's rows."""

    delivery_id: str
    app_did: str
    environment: str
    event_type: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_ms: int
    next_attempt_ms: int
    delivered_ms: int | None


async def list_messages(
    session: AsyncSession, *, state: str | None = None, app_did: str | None = None, limit: int = 50
) -> list[MessageSummary]:
    """The newest ``limit`` messages, optionally only those in ``state`` or to the app ``app_did``."""
    attempts = (
        select(func.count(WebhookAttempt.id))
        .where(WebhookAttempt.outbox_id == OutboxMessage.id)
        .scalar_subquery()
    )
    query = select(OutboxMessage, App.did, attempts).join(App, App.id == OutboxMessage.app_id)
    if state is not None:
        query = query.where(OutboxMessage.state == state)
    if app_did is not None:
        query = query.where(App.did == app_did)
    rows = await session.execute(query.order_by(OutboxMessage.id.desc()).limit(limit))
    return [
        MessageSummary(
            delivery_id=m.delivery_id,
            app_did=did,
            environment=m.environment,
            event_type=m.event_type,
            state=m.state,
            attempts=count,
            last_status=m.last_status,
            last_error=m.last_error,
            created_ms=m.created_ms,
            next_attempt_ms=m.next_attempt_ms,
            delivered_ms=m.delivered_ms,
        )
        for m, did, count in rows
    ]


async def redrive(
    session: AsyncSession,
    *,
    delivery_ids: Sequence[str] | None = None,
    state: str | None = "dead",
    now_ms: int,
) -> int:
    """Put messages back to ``pending``, due now, with a fresh attempt budget: those named by
    ``delivery_ids`` that are in ``state`` (any state when ``state`` is None), or every message in
    ``state``. Answers how many were redriven. Their delivery ids and bodies do not change."""
    conditions: list[ColumnElement[bool]] = []
    if delivery_ids is not None:
        conditions.append(OutboxMessage.delivery_id.in_(delivery_ids))
    if state is not None:
        conditions.append(OutboxMessage.state == state)
    if not conditions:
        raise ValueError("redrive needs delivery ids or a state")
    result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(OutboxMessage)
        .where(*conditions)
        .values(state="pending", attempts=0, next_attempt_ms=now_ms, delivered_ms=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount

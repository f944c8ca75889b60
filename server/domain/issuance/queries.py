"""Reading tickets with everything shown around them: event, tier and the signed pass."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import Event, Ticket, Tier
from server.domain.caller import Caller
from server.domain.catalog.service import find_event
from server.domain.common import decode_cursor, encode_cursor
from server.domain.issuance.list_keys import Keyring, PassSigner, pass_access_key, pass_signer


@dataclass(frozen=True, slots=True)
class TicketInContext:
    ticket: Ticket
    event: Event
    tier: Tier
    pass_token: str | None
    access_key: str


async def in_context(
    session: AsyncSession, keyring: Keyring, tickets: Sequence[Ticket]
) -> list[TicketInContext]:
    event_ids = {t.event_id for t in tickets}
    events = {e.id: e for e in await session.scalars(select(Event).where(Event.id.in_(event_ids)))}
    tiers = {
        t.id: t for t in await session.scalars(select(Tier).where(Tier.id.in_({t.tier_id for t in tickets})))
    }
    signers: dict[str, PassSigner] = {e: await pass_signer(session, keyring, e) for e in event_ids}
    return [
        TicketInContext(
            t, events[t.event_id], tiers[t.tier_id], signers[t.event_id].token(t), pass_access_key(keyring, t)
        )
        for t in tickets
    ]


async def page(
    session: AsyncSession, query: Select[Ticket], limit: int, cursor: str | None
) -> tuple[list[Ticket], str | None]:
    """One page in creation order; the cursor is absent on the last page."""
    if cursor is not None:
        query = query.where(Ticket.id > decode_cursor(cursor, "ticket_"))
    rows = list(await session.scalars(query.order_by(Ticket.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


async def _page_in_context(
    db: Database, keyring: Keyring, query: Select[Ticket], limit: int, cursor: str | None
) -> tuple[list[TicketInContext], str | None]:
    async with db.read() as session:
        tickets, next_cursor = await page(session, query, limit, cursor)
        return await in_context(session, keyring, tickets), next_cursor


def _originated(caller: Caller) -> Select[Ticket]:
    return select(Ticket).where(Ticket.app_id == caller.app_id, Ticket.environment == caller.environment)


async def buyer_tickets(
    db: Database,
    keyring: Keyring,
    caller: Caller,
    *,
    buyer_did: str | None,
    payment_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[TicketInContext], str | None]:
    """One page of the tickets the calling app originated, by buyer and/or payment."""
    query = _originated(caller)
    if buyer_did is not None:
        query = query.where(Ticket.buyer_did == buyer_did)
    if payment_id is not None:
        query = query.where(Ticket.payment_id == payment_id)
    return await _page_in_context(db, keyring, query, limit, cursor)


async def organizer_tickets(
    db: Database,
    keyring: Keyring,
    caller: Caller,
    *,
    event_id: str | None,
    organizer_did: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[TicketInContext], str | None]:
    """One page of the tickets the calling app originated, by organizer and/or event."""
    query = _originated(caller)
    async with db.read() as session:
        if event_id is not None:
            event = await find_event(session, caller.environment, event_id=event_id)
            query = query.where(Ticket.event_id == event.id)
        if organizer_did is not None:
            query = query.join(Event, Event.id == Ticket.event_id).where(Event.organizer_did == organizer_did)
        tickets, next_cursor = await page(session, query, limit, cursor)
        return await in_context(session, keyring, tickets), next_cursor


async def hold_tickets(db: Database, keyring: Keyring, hold_id: str) -> list[TicketInContext]:
    """The tickets issued for a hold, in issue order."""
    async with db.read() as session:
        tickets = await session.scalars(select(Ticket).where(Ticket.hold_id == hold_id).order_by(Ticket.id))
        return await in_context(session, keyring, list(tickets))


def pass_page_url(public_url: str, item: TicketInContext) -> str:
    """The hosted pass page of a ticket (its address carries the secret access key)."""
    return f"{public_url.rstrip('/')}/passes/{item.ticket.id}?k={item.access_key}"


async def pass_of(
    db: Database, keyring: Keyring, ticket_id: str, key: bytes
) -> tuple[TicketInContext, str] | None:
    """The ticket of a pass URL and what the URL's holder sees of its status: ``transferred`` for
    the address of an earlier generation. None when the access ``key`` is wrong."""
    async with db.read() as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            return None
        generations = range(ticket.generation, 0, -1)
        matched = [
            g
            for g in generations
            if secrets.compare_digest(key, pass_access_key(keyring, ticket, g).encode())
        ]
        if not matched:
            return None
        (item,) = await in_context(session, keyring, [ticket])
    return item, ticket.status if matched[0] == ticket.generation else "transferred"

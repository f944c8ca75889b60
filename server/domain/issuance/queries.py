"""Reading tickets with everything shown around them: event, tier and the signed pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Event, Ticket, Tier
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


def pass_page_url(public_url: str, item: TicketInContext) -> str:
    """The hosted pass page of a ticket (its address carries the secret access key)."""
    return f"{public_url.rstrip('/')}/passes/{item.ticket.id}?k={item.access_key}"

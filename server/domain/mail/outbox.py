"""The mail outbox: a row per message to a buyer, written in the transaction of the change it tells,
so a message is never lost nor sent for a change that rolled back, and issuing never waits on mail.

Who is told: the address the order gave (the hold's ``customerEmail``); a transfer's new holder gets
the new pass at the address the transfer names."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Hold, MailMessage, Ticket
from server.db.rows import Shape

KINDS = ("issued", "voided", "refunded", "transferred", "resent")
MESSAGE = Shape(MailMessage, "m")


def message(
    hold: Hold, kind: str, recipient: str | None, tickets: Sequence[Ticket], now_ms: int
) -> MailMessage | None:
    """One message about ``tickets`` to ``recipient`` (None without an address), to be added by
    :func:`enqueue` or written by its shape (:data:`MESSAGE`)."""
    if not recipient or not tickets:
        return None
    assert kind in KINDS
    return MESSAGE.new(
        environment=hold.environment,
        hold_id=hold.id,
        kind=kind,
        recipient=recipient,
        ticket_ids=[t.id for t in tickets],
        state="pending",
        attempts=0,
        next_attempt_ms=now_ms,
        created_ms=now_ms,
    )


def enqueue(
    session: AsyncSession,
    hold: Hold,
    kind: str,
    recipient: str | None,
    tickets: Sequence[Ticket],
    now_ms: int,
) -> MailMessage | None:
    """Queue one message about ``tickets`` to ``recipient`` (nothing without an address)."""
    made = message(hold, kind, recipient, tickets, now_ms)
    if made is not None:
        session.add(made)
    return made


async def tell_buyer(
    session: AsyncSession, ticket: Ticket, kind: str, now_ms: int, *, holder_first: bool = False
) -> MailMessage | None:
    """Queue a message about one ticket to the address its order gave (``holder_first``: to its
    holder's address when it has one, as after a transfer)."""
    hold = await session.get(Hold, ticket.hold_id)
    assert hold is not None
    recipient = (ticket.attendee_email if holder_first else None) or hold.customer_email
    return enqueue(session, hold, kind, recipient, [ticket], now_ms)

"""Turning a completed hold into tickets, and every later change of a ticket's status.

Whatever here moves ``sold`` locks the capacity groups involved, in id order (ADR 0002); all of it
happens in the caller's transaction together with the history rows, the ledger entries and the
outbox messages that report it."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import metrics
from server.db.engine import Database, Unit, at_the_end, driver_of
from server.db.models import (
    Hold,
    HoldItem,
    MailMessage,
    Ticket,
    TicketChange,
    TicketEvent,
    Tier,
)
from server.db.rows import Shape, insert_all
from server.domain import idempotency, ledger
from server.domain.caller import Caller
from server.domain.catalog.service import ensure_can_manage, find_event, lock_groups, lock_groups_to_sell
from server.domain.common import new_id
from server.domain.holds.service import (
    HOLD,
    HOLD_ITEM,
    HoldRequest,
    HoldResult,
    create_hold,
    price_parts,
    take_order,
)
from server.domain.issuance.list_keys import Keyring, default_list_made
from server.domain.issuance.queries import TicketInContext, in_context
from server.domain.issuance.rules import Holder, attendee, transferred
from server.domain.mail import outbox as mail
from server.domain.offers import limits
from server.domain.offers import service as offers
from server.domain.outbox.lifecycle import event_data, ticket_entry, ticket_event_data
from server.domain.outbox.service import MESSAGE as OUTBOX_MESSAGE
from server.domain.outbox.service import enqueue, event_uri, outbox_message, webhook_url
from server.errors import CustomerEmailMissing, TicketNotActive, TicketNotFound, TierNotFree
from sync.records import ticket_ref

NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ticket_number() -> str:
    """``K7QM2-9XD4P``: 50 random bits in Crockford base32, easy to read out at a door."""
    chars = "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


TICKET, TICKET_EVENT, TICKET_CHANGE = (
    Shape(Ticket, "t"),
    Shape(TicketEvent, "e"),
    Shape(TicketChange, "c"),
)
_RELEASE = "UPDATE hold_items SET active_until_ms = NULL WHERE hold_id = :hold_id"
_RELEASE_ITEMS = f"{_RELEASE} RETURNING {HOLD_ITEM.names}"
# Places sold, counted by the database from the hold's lines (a tier's own count cannot pass its
# quantity, a constraint): its groups' rows first, then its tiers', each locked by its update.
_SOLD = (
    "SELECT i.{column} AS id, SUM(i.quantity) AS quantity FROM hold_items i "
    "WHERE i.hold_id = :hold_id GROUP BY i.{column}"
)
_SELL_FROM_GROUPS = (
    "UPDATE capacity_groups SET sold = capacity_groups.sold + s.quantity "  # noqa: S608 (constant names)
    f"FROM ({_SOLD.format(column='capacity_group_id')}) s WHERE capacity_groups.id = s.id"
)
_SELL_FROM_TIERS = (
    "UPDATE tiers SET sold = tiers.sold + s.quantity "  # noqa: S608 (constant names)
    f"FROM ({_SOLD.format(column='tier_id')}) s WHERE tiers.id = s.id"
)
# PostgreSQL: the two in one statement, so that a group's lock is held for it and the commit
# alone; the tiers are updated only once the groups are (a one-time filter on ``groups``), so a
# tier's row is never locked before its group's, as every other writer of both does.
_SELL = (
    f"WITH groups AS ({_SELL_FROM_GROUPS} RETURNING 1) "  # noqa: S608 (constant names)
    f"{_SELL_FROM_TIERS} AND (SELECT count(*) FROM groups) > 0"
)


async def _sell(session: Unit, hold: Hold, items: Sequence[HoldItem]) -> None:
    """Count the hold's places sold (a caller that checked the places again holds its groups'
    locks already), then the offer's redemptions spent."""
    driver = await driver_of(session)
    if driver.sqlite:  # one writer at a time, and no UPDATE in a WITH
        await driver.execute(_SELL_FROM_GROUPS, {"hold_id": hold.id})
        await driver.execute(_SELL_FROM_TIERS, {"hold_id": hold.id})
    else:
        groups = {item.capacity_group_id for item in items}
        if len(groups) > 1:  # the one lock order first: the statement's own is its plan's
            await lock_groups_to_sell(session, groups)
        # After the writes left for later (sent first, in a statement of their own): a group's lock is
        # taken by the transaction's last statement before the commit, and held for it alone.
        await driver.execute(_SELL, {"hold_id": hold.id})
    if hold.offer_id is not None:  # only a hold with an offer has redemptions
        await offers.consume(session, hold.id)


async def release_later(session: Unit, hold_id: str) -> None:
    """The lines of a hold about to be issued, read already with the hold, no longer counted as held
    (seen by others only when the transaction commits, together with the places sold): with the
    writes left for later (``Driver.later``)."""
    await (await driver_of(session)).later(_RELEASE, {"hold_id": hold_id})


async def release_items(session: Unit, hold_id: str) -> list[HoldItem]:
    """The lines of a hold about to be issued (or found ended), in their order, no longer counted as
    held (seen by others only when the transaction commits, together with the places sold), in one
    statement. The lines are as read, in no session: nothing else changes them."""
    rows = await (await driver_of(session)).fetch(_RELEASE_ITEMS, {"hold_id": hold_id})
    return sorted((HOLD_ITEM.load(row) for row in rows), key=lambda item: item.id)


def _history(
    ticket: Ticket,
    action: str,
    actor: str | None,
    now_ms: int,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[TicketEvent, TicketChange]:
    """The change in the ticket's history, and in its event's change feed (bundle deltas)."""
    return (
        TICKET_EVENT.new(
            ticket_id=ticket.id,
            at_ms=now_ms,
            action=action,
            status=ticket.status,
            generation=ticket.generation,
            actor=actor,
            reason=reason,
            data=data,
        ),
        TICKET_CHANGE.new(event_id=ticket.event_id, ticket_id=ticket.id, at_ms=now_ms),
    )


@dataclass(frozen=True, slots=True)
class Issued:
    hold: Hold
    tickets: list[Ticket]


async def prepare_issue(session: Unit, keyring: Keyring, hold: Hold, now_ms: int) -> str | None:
    """The part of issuing ``hold`` that no capacity lock guards: the event's default list made if
    it has none, the event's URI read for the webhook (the session or transaction keeps it).
    Answers the seller's webhook URL, for :func:`issue_hold`."""
    await default_list_made(session, keyring, hold.event_id, now_ms)
    await event_uri(session, hold.event_id)
    return await webhook_url(session, hold.app_id)


async def issue_hold(
    session: Unit,
    hold: Hold,
    items: Sequence[HoldItem],
    now_ms: int,
    *,
    seller_url: str | None,
    actor: str | None,
    payment_id: str | None = None,
    claim_id: str | None = None,
) -> Issued:
    """Sell the hold's places and issue one ticket per place, after :func:`prepare_issue` (which
    answered ``seller_url``). The places must be known to fit: the hold still live, or its places
    re-reserved under its groups' locks. Everything else is written now; the places are sold
    (:func:`_sell`) at the end of the transaction, after whatever the caller writes next, so that
    a group's lock is held from the sale to the commit only."""
    driver = await driver_of(session)
    attendees: list[dict[str, Any]] = list(hold.attendees or [])
    tickets: list[Ticket] = []
    for item in items:
        for _ in range(item.quantity):
            holder = attendee(attendees, len(tickets), hold.customer_email)
            ticket_id = new_id("ticket", now_ms)
            ticket = TICKET.new(
                id=ticket_id,
                ticket_ref=ticket_ref(ticket_id),
                environment=hold.environment,
                app_id=hold.app_id,
                event_id=hold.event_id,
                tier_id=item.tier_id,
                capacity_group_id=item.capacity_group_id,
                hold_id=hold.id,
                payment_id=payment_id,
                claim_id=claim_id,
                ticket_number=ticket_number(),
                buyer_did=hold.buyer_did,
                attendee_name=holder.name,
                attendee_email=holder.email,
                unit_amount=item.unit_amount,
                currency=hold.currency,
                status="active",
                generation=1,
                created_ms=now_ms,
                updated_ms=now_ms,
            )
            tickets.append(ticket)
    history = [
        _history(ticket, "issued", actor, now_ms, data={"paymentId": payment_id, "claimId": claim_id})
        for ticket in tickets
    ]
    await HOLD.update(
        driver,
        hold,
        later=True,
        status="completed",
        payment_id=payment_id,
        claim_id=claim_id,
        updated_ms=now_ms,
    )
    entry = ledger.about(
        "hold",
        hold,
        "completed",
        actor,
        now_ms,
        {"paymentId": payment_id, "claimId": claim_id, "tickets": len(tickets)},
    )
    webhook = issued_webhook(hold, items, tickets, await event_uri(session, hold.event_id))
    message = outbox_message(hold.app_id, seller_url, hold.environment, "tickets.issued", webhook, now_ms)
    await insert_all(
        driver,
        (TICKET, tickets),
        (TICKET_EVENT, [happened for happened, _ in history]),
        (TICKET_CHANGE, [changed for _, changed in history]),
        (ledger.ENTRY, [entry]),
        (OUTBOX_MESSAGE, [message]),
        (mail.MESSAGE, [mail.message(hold, "issued", hold.customer_email, tickets, now_ms)]),
        later=True,
    )
    at_the_end(session, functools.partial(_sell, session, hold, items))
    metrics.TICKETS_ISSUED.inc(len(tickets))
    return Issued(hold, tickets)


def issued_webhook(
    hold: Hold, items: Sequence[HoldItem], tickets: Sequence[Ticket], uri: str
) -> dict[str, Any]:
    return event_data(
        event_id=hold.event_id,
        event_uri=uri,
        hold_id=hold.id,
        payment_id=hold.payment_id,
        issued_count=len(tickets),
        tickets=[ticket_entry(t, uri, status="issued") for t in tickets],
        claimId=hold.claim_id,
        hold={
            "id": hold.id,
            "eventId": hold.event_id,
            "amount": hold.amount,
            **price_parts(hold),
            "currency": hold.currency,
            "quantityTotal": sum(i.quantity for i in items),
            "items": [
                {"tierId": i.tier_id, "quantity": i.quantity, "unitAmount": i.unit_amount} for i in items
            ],
        },
    )


async def ticket_webhook(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    return ticket_event_data(ticket, await event_uri(session, ticket.event_id))


# --- status changes ------------------------------------------------------------------------------


async def find_ticket(
    session: AsyncSession, environment: str, ticket_id: str, *, lock: bool = False
) -> Ticket:
    query = (
        select(Ticket)
        .where(Ticket.id == ticket_id, Ticket.environment == environment)
        .execution_options(populate_existing=True)
    )
    ticket = await session.scalar(query.with_for_update() if lock else query)
    if ticket is None:
        raise TicketNotFound(f"ticket {ticket_id} not found")
    return ticket


async def end_ticket(
    session: AsyncSession, ticket: Ticket, status: str, actor: str | None, reason: str | None, now_ms: int
) -> Ticket:
    """Void or refund an active ticket; its place goes back on sale (see docs/issuance.md)."""
    if ticket.status != "active":
        raise TicketNotActive(f"ticket {ticket.id} is already {ticket.status}")
    groups = await lock_groups(session, [ticket.capacity_group_id])
    tier = await session.get(Tier, ticket.tier_id, populate_existing=True)
    assert tier is not None
    tier.sold -= 1
    groups[ticket.capacity_group_id].sold -= 1
    ticket.status = status
    ticket.updated_ms = now_ms
    session.add_all(_history(ticket, status, actor, now_ms, reason))
    session.add(ledger.about("ticket", ticket, status, actor, now_ms, {"reason": reason} if reason else None))
    await enqueue(
        session,
        ticket.app_id,
        ticket.environment,
        f"ticket.{status}",
        await ticket_webhook(session, ticket),
        now_ms,
    )
    await mail.tell_buyer(session, ticket, status, now_ms)
    return ticket


async def transfer_ticket(
    session: AsyncSession,
    ticket: Ticket,
    *,
    buyer_did: str | None,
    attendee_name: str | None,
    attendee_email: str | None,
    actor: str | None,
    reason: str | None,
    now_ms: int,
) -> Ticket:
    """Reissue to a new holder under the next generation: every pass of an older one is revoked."""
    if ticket.status != "active":
        raise TicketNotActive(f"ticket {ticket.id} is {ticket.status}")
    before = {
        "buyerDid": ticket.buyer_did,
        "attendeeName": ticket.attendee_name,
        "generation": ticket.generation,
    }
    ticket.generation += 1
    current = Holder(ticket.buyer_did, ticket.attendee_name, ticket.attendee_email)
    holder = transferred(current, buyer_did, attendee_name, attendee_email)
    ticket.buyer_did, ticket.attendee_name, ticket.attendee_email = (
        holder.buyer_did,
        holder.name,
        holder.email,
    )
    ticket.updated_ms = now_ms
    session.add_all(_history(ticket, "transferred", actor, now_ms, reason, data={"from": before}))
    session.add(
        ledger.about("ticket", ticket, "transferred", actor, now_ms, {"generation": ticket.generation})
    )
    await enqueue(
        session,
        ticket.app_id,
        ticket.environment,
        "ticket.transferred",
        await ticket_webhook(session, ticket),
        now_ms,
    )
    told = await mail.tell_buyer(session, ticket, "transferred", now_ms)
    if attendee_email is not None and (told is None or told.recipient != attendee_email):
        hold = await session.get(Hold, ticket.hold_id)
        assert hold is not None
        mail.enqueue(session, hold, "issued", attendee_email, [ticket], now_ms)
    return ticket


async def resend_pass(
    session: AsyncSession, ticket: Ticket, now_ms: int, *, actor: str | None
) -> MailMessage:
    """Queue the active ticket's pass again, to its holder's address or else its order's, and note
    in the ledger who asked (``actor``). Refused before anything is written: a ticket that is not
    active (``TicketNotActive``), no address to send it to (``CustomerEmailMissing``)."""
    if ticket.status != "active":
        raise TicketNotActive(f"ticket {ticket.id} is {ticket.status}")
    message = await mail.tell_buyer(session, ticket, "resent", now_ms, holder_first=True)
    if message is None:
        raise CustomerEmailMissing("no e-mail address was given for this ticket")
    session.add(ledger.about("ticket", ticket, "resent", actor, now_ms))
    return message


@dataclass(frozen=True, slots=True)
class Claim:
    """Free tickets issued at once: the claim, its hold and the tickets."""

    claim_id: str
    held: HoldResult
    tickets: list[TicketInContext]


async def claim_free(
    db: Database,
    keyring: Keyring,
    caller: Caller,
    request: HoldRequest,
    now_ms: int,
    ttl_ms: int,
    *,
    codes: limits.CodeLimits,
    once: idempotency.Once | None,
    encode: Callable[[Claim], dict[str, Any]],
) -> dict[str, Any]:
    """Free tickets (or made free by an offer code) as ``claimFreeTicket`` issues them: held and
    issued in one write transaction, once per idempotency key, guarded against guessed codes. An
    order that costs anything is refused (``TierNotFree``), naming the priced tiers. ``encode``
    turns the claim into the answer, which a replay of the key answers again."""

    async def claim(session: AsyncSession) -> dict[str, Any]:
        held = await create_hold(session, caller, request, now_ms, ttl_ms)
        if held.hold.amount != 0:
            priced = ", ".join(line.tier.id for line in held.lines if line.tier.unit_amount != 0)
            raise TierNotFree(f"only free tickets can be claimed (or made free by an offer code): {priced}")
        items = await release_items(session, held.hold.id)
        seller_url = await prepare_issue(session, keyring, held.hold, now_ms)
        claim_id = new_id("claim", now_ms)
        issued = await issue_hold(
            session,
            held.hold,
            items,
            now_ms,
            seller_url=seller_url,
            actor=caller.app_did,
            claim_id=claim_id,
        )
        return encode(Claim(claim_id, held, await in_context(session, keyring, issued.tickets)))

    return await take_order(db, caller, request, now_ms, codes, once, claim, db.write)


async def _managed_ticket(session: AsyncSession, caller: Caller, ticket_id: str) -> Ticket:
    """The ticket, locked, if the caller originated it or manages its event (with the organizer's
    consent)."""
    ticket = await find_ticket(session, caller.environment, ticket_id, lock=True)
    if ticket.app_id != caller.app_id:
        event = await find_event(session, caller.environment, event_id=ticket.event_id)
        await ensure_can_manage(session, event, caller)
    return ticket


async def end_managed_ticket(
    db: Database,
    keyring: Keyring,
    caller: Caller,
    ticket_id: str,
    status: str,
    reason: str | None,
    now_ms: int,
) -> TicketInContext:
    """Void or refund a ticket the caller originated or manages (``voidTicket``, ``refundTicket``)."""
    async with db.write() as session:
        ticket = await _managed_ticket(session, caller, ticket_id)
        await end_ticket(session, ticket, status, caller.app_did, reason, now_ms)
        (item,) = await in_context(session, keyring, [ticket])
    return item


async def transfer_managed_ticket(
    db: Database,
    keyring: Keyring,
    caller: Caller,
    ticket_id: str,
    *,
    buyer_did: str | None,
    attendee_name: str | None,
    attendee_email: str | None,
    reason: str | None,
    now_ms: int,
) -> TicketInContext:
    """Reissue a ticket the caller originated or manages to a new holder (``transferTicket``)."""
    async with db.write() as session:
        ticket = await _managed_ticket(session, caller, ticket_id)
        await transfer_ticket(
            session,
            ticket,
            buyer_did=buyer_did,
            attendee_name=attendee_name,
            attendee_email=attendee_email,
            actor=caller.app_did,
            reason=reason,
            now_ms=now_ms,
        )
        (item,) = await in_context(session, keyring, [ticket])
    return item


async def resend_sold_pass(db: Database, caller: Caller, ticket_id: str, now_ms: int) -> Ticket:
    """Queue a ticket's pass again, only for the app that sold it: the pass goes to its buyer's
    address (``resendTicketEmail``)."""
    async with db.write() as session:
        ticket = await find_ticket(session, caller.environment, ticket_id)
        if ticket.app_id != caller.app_id:
            raise TicketNotFound(f"ticket {ticket_id} not found")
        await resend_pass(session, ticket, now_ms, actor=caller.app_did)
    return ticket

"""Ticket methods: free claims, listings, and void / refund / transfer (our extensions)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Event, Ticket
from server.domain.catalog.service import ensure_can_manage, find_event, lock_groups
from server.domain.common import new_id
from server.domain.holds import service as holds
from server.domain.holds.rules import merge_items
from server.domain.issuance import service as issuance
from server.domain.issuance.queries import in_context, page
from server.errors import InvalidRequest, TicketNotFound, TierNotFree
from server.xrpc.auth import verify_buyer
from server.xrpc.codes import guarding_codes
from server.xrpc.framework import NAMESPACE, Call, write_once, xrpc_method
from server.xrpc.holds import BUYER_RETRY_FIELDS, hold_request
from server.xrpc.views import ticket_view


async def views(call: Call, session: AsyncSession, tickets: list[Ticket]) -> list[dict[str, Any]]:
    items = await in_context(session, call.services.keyring, tickets)
    return [ticket_view(item, call.settings.public_url) for item in items]


async def _claim(call: Call, params: dict[str, Any], session: AsyncSession) -> dict[str, Any]:
    request = hold_request(call, params)
    result = await holds.create_hold(
        session, call.caller, request, call.now_ms, call.settings.hold_ttl_seconds * 1000
    )
    if result.hold.amount != 0:
        priced = ", ".join(line.tier.id for line in result.lines if line.tier.unit_amount != 0)
        raise TierNotFree(f"only free tickets can be claimed (or made free by an offer code): {priced}")
    items = await issuance.hold_items(session, result.hold.id)
    seller_url = await issuance.prepare_issue(session, call.services.keyring, result.hold, call.now_ms)
    groups = await lock_groups(session, (i.capacity_group_id for i in items))
    claim_id = new_id("claim", call.now_ms)
    issued = await issuance.issue_hold(
        session,
        result.hold,
        items,
        groups,
        call.now_ms,
        seller_url=seller_url,
        actor=call.caller.app_did,
        claim_id=claim_id,
    )
    return {
        "claimId": claim_id,
        "holdId": result.hold.id,
        "environment": call.caller.environment,
        "items": [
            {
                "tierId": line.tier.id,
                "title": line.tier.title,
                "quantity": line.quantity,
                "unitAmount": line.tier.unit_amount,
                "currency": line.tier.currency,
            }
            for line in result.lines
        ],
        "tickets": await views(call, session, issued.tickets),
    }


@xrpc_method(NAMESPACE + "claimFreeTicket")
async def claim_free_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Free tiers issue at once, for a buyer proven by their own assertion. The public SDK's single
    ``tierId`` means one place of that tier."""
    await verify_buyer(call.services, call.nsid, params["buyerDid"], params["buyerAssertionJwt"])
    if "items" not in params:
        if "tierId" not in params:
            raise InvalidRequest("items (or a single tierId) is required")
        params = {**params, "items": [{"tierId": params["tierId"], "quantity": 1}]}
    merge_items((i["tierId"], i["quantity"]) for i in params["items"])
    return await guarding_codes(
        call,
        params,
        lambda: write_once(
            call, params, lambda session: _claim(call, params, session), unhashed=BUYER_RETRY_FIELDS
        ),
    )


def _limit(params: dict[str, Any]) -> int:
    return int(params.get("limit", 50))


@xrpc_method(NAMESPACE + "listBuyerTickets")
async def list_buyer_tickets(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Tickets the calling app originated, by buyer and/or payment."""
    query = select(Ticket).where(
        Ticket.app_id == call.caller.app_id, Ticket.environment == call.caller.environment
    )
    if "buyerDid" in params:
        query = query.where(Ticket.buyer_did == params["buyerDid"])
    if "paymentId" in params:
        query = query.where(Ticket.payment_id == params["paymentId"])
    async with call.db.read() as session:
        tickets, cursor = await page(session, query, _limit(params), params.get("cursor"))
        out: dict[str, Any] = {"tickets": await views(call, session, tickets)}
    return {**out, "cursor": cursor} if cursor else out


@xrpc_method(NAMESPACE + "listOrganizerTickets")
async def list_organizer_tickets(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Tickets the calling app originated, by organizer and/or event."""
    query = select(Ticket).where(
        Ticket.app_id == call.caller.app_id, Ticket.environment == call.caller.environment
    )
    async with call.db.read() as session:
        if "eventId" in params:
            event = await find_event(session, call.caller.environment, event_id=params["eventId"])
            query = query.where(Ticket.event_id == event.id)
        if "organizerDid" in params:
            query = query.join(Event, Event.id == Ticket.event_id).where(
                Event.organizer_did == params["organizerDid"]
            )
        tickets, cursor = await page(session, query, _limit(params), params.get("cursor"))
        out: dict[str, Any] = {"tickets": await views(call, session, tickets)}
    return {**out, "cursor": cursor} if cursor else out


async def _managed_ticket(call: Call, session: AsyncSession, ticket_id: str) -> Ticket:
    """The ticket, locked, if the caller originated it or manages its event (with the organizer's
    consent)."""
    ticket = await issuance.find_ticket(session, call.caller.environment, ticket_id, lock=True)
    if ticket.app_id != call.caller.app_id:
        event = await find_event(session, call.caller.environment, event_id=ticket.event_id)
        await ensure_can_manage(session, event, call.caller)
    return ticket


async def _change(call: Call, params: dict[str, Any], status: str) -> dict[str, Any]:
    async with call.db.write() as session:
        ticket = await _managed_ticket(call, session, params["ticketId"])
        await issuance.end_ticket(
            session, ticket, status, call.caller.app_did, params.get("reason"), call.now_ms
        )
        (view,) = await views(call, session, [ticket])
    return {"ticket": view}


@xrpc_method(NAMESPACE + "voidTicket")
async def void_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _change(call, params, "voided")


@xrpc_method(NAMESPACE + "refundTicket")
async def refund_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return await _change(call, params, "refunded")


@xrpc_method(NAMESPACE + "resendTicketEmail")
async def resend_ticket_email(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Only the app that sold the ticket: the pass goes to its buyer's address."""
    async with call.db.write() as session:
        ticket = await issuance.find_ticket(session, call.caller.environment, params["ticketId"])
        if ticket.app_id != call.caller.app_id:
            raise TicketNotFound(f"ticket {params['ticketId']} not found")
        await issuance.resend_pass(session, ticket, call.now_ms, actor=call.caller.app_did)
    return {"ticketId": ticket.id, "queued": True}


@xrpc_method(NAMESPACE + "transferTicket")
async def transfer_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async with call.db.write() as session:
        ticket = await _managed_ticket(call, session, params["ticketId"])
        await issuance.transfer_ticket(
            session,
            ticket,
            buyer_did=params.get("toBuyerDid"),
            attendee_name=params.get("attendeeName"),
            attendee_email=params.get("attendeeEmail"),
            actor=call.caller.app_did,
            reason=params.get("reason"),
            now_ms=call.now_ms,
        )
        (view,) = await views(call, session, [ticket])
    return {"ticket": view}

"""Ticket methods: free claims, listings, and void / refund / transfer (our extensions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from server.domain.holds.rules import merge_items
from server.domain.issuance import queries
from server.domain.issuance import service as issuance
from server.domain.issuance.queries import TicketInContext
from server.errors import InvalidRequest
from server.xrpc.auth import verify_buyer
from server.xrpc.codes import code_limits
from server.xrpc.framework import NAMESPACE, Call, once, xrpc_method
from server.xrpc.holds import BUYER_RETRY_FIELDS, hold_request
from server.xrpc.views import claim_view, ticket_page_view, ticket_view

# A ticket listing of ``queries`` (buyer_tickets, organizer_tickets): a page and the next cursor.
Listing = Callable[..., Awaitable[tuple[list[TicketInContext], str | None]]]


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
    return await issuance.claim_free(
        call.db,
        call.services.keyring,
        call.caller,
        hold_request(call, params),
        call.now_ms,
        call.settings.hold_ttl_seconds * 1000,
        codes=code_limits(call.settings),
        once=once(call, params, unhashed=BUYER_RETRY_FIELDS),
        encode=partial(claim_view, call.settings.public_url),
    )


# The ticket listings of the calling app's tickets: each method's query, and the parameters that
# narrow it (parameter: the query's argument).
TICKET_LISTINGS: dict[str, tuple[Listing, dict[str, str]]] = {
    # by buyer and/or payment
    "listBuyerTickets": (queries.buyer_tickets, {"buyerDid": "buyer_did", "paymentId": "payment_id"}),
    # by organizer and/or event
    "listOrganizerTickets": (
        queries.organizer_tickets,
        {"eventId": "event_id", "organizerDid": "organizer_did"},
    ),
}


async def _ticket_page(
    call: Call, params: dict[str, Any], *, listing: Listing, filters: dict[str, str]
) -> dict[str, Any]:
    """One page of the tickets the calling app originated, narrowed by the ``filters`` sent."""
    found = await listing(
        call.db,
        call.services.keyring,
        call.caller,
        limit=int(params.get("limit", 50)),
        cursor=params.get("cursor"),
        **{argument: params.get(name) for name, argument in filters.items()},
    )
    return ticket_page_view(*found, call.settings.public_url)


for _method, (_listing, _filters) in TICKET_LISTINGS.items():
    xrpc_method(NAMESPACE + _method)(partial(_ticket_page, listing=_listing, filters=_filters))


def _one(call: Call, item: TicketInContext) -> dict[str, Any]:
    return {"ticket": ticket_view(item, call.settings.public_url)}


@xrpc_method(NAMESPACE + "voidTicket")
async def void_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _one(call, await _end(call, params, "voided"))


@xrpc_method(NAMESPACE + "refundTicket")
async def refund_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _one(call, await _end(call, params, "refunded"))


async def _end(call: Call, params: dict[str, Any], status: str) -> TicketInContext:
    return await issuance.end_managed_ticket(
        call.db,
        call.services.keyring,
        call.caller,
        params["ticketId"],
        status,
        params.get("reason"),
        call.now_ms,
    )


@xrpc_method(NAMESPACE + "resendTicketEmail")
async def resend_ticket_email(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Only the app that sold the ticket: the pass goes to its buyer's address."""
    ticket = await issuance.resend_sold_pass(call.db, call.caller, params["ticketId"], call.now_ms)
    return {"ticketId": ticket.id, "queued": True}


@xrpc_method(NAMESPACE + "transferTicket")
async def transfer_ticket(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    item = await issuance.transfer_managed_ticket(
        call.db,
        call.services.keyring,
        call.caller,
        params["ticketId"],
        buyer_did=params.get("toBuyerDid"),
        attendee_name=params.get("attendeeName"),
        attendee_email=params.get("attendeeEmail"),
        reason=params.get("reason"),
        now_ms=call.now_ms,
    )
    return _one(call, item)

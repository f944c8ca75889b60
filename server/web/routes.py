"""HTTP outside XRPC: the payment broker's webhooks, the built-in dev checkout, and pass pages."""

from __future__ import annotations

import html
import secrets
from typing import Any, TypeGuard

import segno
from litestar import Request, Response, get, post
from litestar.response import Redirect
from sqlalchemy import select

from server.atproto.datetimes import format_datetime
from server.db.models import Event, Hold, HoldItem, Ticket, Tier
from server.domain.holds.rules import redirect_problem
from server.domain.holds.service import effective_status, end_hold
from server.domain.issuance.list_keys import pass_access_key
from server.domain.issuance.queries import TicketInContext, in_context
from server.domain.payments.devpay import pay, serves_checkout
from server.domain.payments.inbound import receive
from server.domain.storefront import calendar_entry, local_time
from server.web.buyer import ROUTES as buyer_routes
from server.web.buyer import pass_links, pass_url
from server.web.pages import money, not_found, page, static_file
from server.xrpc.framework import Services


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def _not_found() -> Response[str]:
    """The dev checkout of an unknown hold, of a live one, or with a broker configured."""
    return not_found("Checkout")


def _may_redirect(url: str | None, hold: Hold) -> TypeGuard[str]:
    """Checked again where the buyer is sent, for holds stored before the rule."""
    return url is not None and redirect_problem(url, hold.environment) is None


@post("/webhooks/atm", status_code=200)
async def atm_webhook(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The payment broker's signed webhooks (docs/contract.md)."""
    services = _services(request)
    raw = await request.body()
    reply = await receive(
        services.db, services.keyring, services.settings, raw, request.headers, services.clock.now_ms()
    )
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


async def _checkout_hold(
    services: Services, token: str
) -> tuple[Hold, Event, list[tuple[HoldItem, Tier]]] | None:
    async with services.db.read() as session:
        hold = await session.scalar(select(Hold).where(Hold.token == token))
        if hold is None:
            return None
        event = await session.get(Event, hold.event_id)
        rows = await session.execute(
            select(HoldItem, Tier).join(Tier, Tier.id == HoldItem.tier_id).where(HoldItem.hold_id == hold.id)
        )
        assert event is not None
        return hold, event, [(item, tier) for item, tier in rows]


@get("/checkout/{token:str}")
async def checkout_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The dev payments checkout: what the buyer is about to pay, with Pay and Cancel."""
    token = request.path_params["token"]
    services = _services(request)
    found = await _checkout_hold(services, token)
    if found is None or not serves_checkout(services.settings, found[0]):
        return _not_found()
    hold, event, lines = found
    status = effective_status(hold, services.clock.now_ms())
    cur = hold.currency
    items = "".join(
        f"<li>{item.quantity} x {html.escape(tier.title)}: {money(item.unit_amount * item.quantity, cur)}"
        "</li>"
        for item, tier in lines
    )
    actions = (
        f"""<form method="post" action="/checkout/{html.escape(token)}/pay" class="inline">
<button class="pay" type="submit">Pay {money(hold.amount, hold.currency)}</button></form>
<form method="post" action="/checkout/{html.escape(token)}/cancel" class="inline">
<button type="submit">Cancel</button></form>"""
        if status == "held"
        else f"<p>This checkout is <strong>{html.escape(status)}</strong>.</p>"
    )
    body = f"""<h1>{html.escape(event.title)}</h1><p class="muted">Development payments: no money moves.</p>
<div class="card"><ul>{items}</ul><p><strong>Total {money(hold.amount, hold.currency)}</strong></p>
<p class="muted">Reserved until {format_datetime(hold.expires_ms)}</p></div>{actions}"""
    return page(f"Checkout — {event.title}", body, form_targets=[hold.return_url, hold.cancel_url])


@post("/checkout/{token:str}/pay", status_code=200)
async def checkout_pay(request: Request[Any, Any, Any]) -> Response[str] | Redirect:
    """Pay: a correctly signed ``payment.completed``, through the same path as the real broker's."""
    token = request.path_params["token"]
    services = _services(request)
    found = await _checkout_hold(services, token)
    if found is None or not serves_checkout(services.settings, found[0]):
        return _not_found()
    hold, _, _ = found
    reply = await pay(services.db, services.keyring, services.settings, hold, services.clock.now_ms())
    if reply.status != 200 or reply.body.get("outcome") != "issued":
        reason = html.escape(str(reply.body.get("outcome") or reply.body.get("message")))
        return page("Payment not completed", f"<h1>Payment not completed</h1><p>{reason}</p>", 409)
    if _may_redirect(hold.return_url, hold):
        return Redirect(hold.return_url)
    async with services.db.read() as session:
        tickets = list(
            await session.scalars(select(Ticket).where(Ticket.hold_id == hold.id).order_by(Ticket.id))
        )
        items = await in_context(session, services.keyring, tickets)
    links = pass_links(services.settings, items)
    return page("Paid", f"<h1>Paid — thank you</h1><div class='card'><ul>{links}</ul></div>")


@post("/checkout/{token:str}/cancel", status_code=200)
async def checkout_cancel(request: Request[Any, Any, Any]) -> Response[str] | Redirect:
    """Cancel: the hold is released and nothing is charged."""
    token = request.path_params["token"]
    services = _services(request)
    async with services.db.write() as session:
        hold = await session.scalar(select(Hold).where(Hold.token == token).with_for_update())
        if hold is None or not serves_checkout(services.settings, hold):
            return _not_found()
        if hold.status == "held":
            await end_hold(
                session, hold, "released", "buyer", services.clock.now_ms(), "cancelled at checkout"
            )
    if _may_redirect(hold.cancel_url, hold):
        return Redirect(hold.cancel_url)
    return page("Cancelled", "<h1>Checkout cancelled</h1><p>Nothing was charged.</p>")


@get("/dev-payments")
async def dev_payments_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Where the dev payments send an organizer to manage payments: there is nothing to set up."""
    if _services(request).settings.broker_url:
        return page("Not found", "<h1>Not found</h1>", 404)
    body = """<h1>Development payments</h1><div class="card"><p>Every organizer is approved and payable
at once. No money moves.</p></div>"""
    return page("Development payments", body)


# What a pass page says of a ticket that no longer admits anyone.
NO_LONGER_VALID = {
    "voided": "This ticket was voided.",
    "refunded": "This ticket was refunded.",
    "transferred": "This ticket was transferred to someone else: their pass replaces this one.",
}


async def _pass(request: Request[Any, Any, Any]) -> tuple[Services, TicketInContext, str] | None:
    """The ticket of a pass URL and what the URL's holder sees of its status: ``transferred`` for
    the address of an earlier generation. None when the access key is wrong."""
    services = _services(request)
    # Compared as bytes: compare_digest raises on a str with non-ASCII characters.
    key = request.query_params.get("k", "").encode("utf-8", "surrogatepass")
    async with services.db.read() as session:
        ticket = await session.get(Ticket, request.path_params["ticket_id"])
        if ticket is None:
            return None
        generations = range(ticket.generation, 0, -1)
        matched = [
            g
            for g in generations
            if secrets.compare_digest(key, pass_access_key(services.keyring, ticket, g).encode())
        ]
        if not matched:
            return None
        (item,) = await in_context(session, services.keyring, [ticket])
    return services, item, ticket.status if matched[0] == ticket.generation else "transferred"


def _event_facts(item: TicketInContext) -> str:
    event = item.event
    when = local_time(event.starts_ms, event.timezone) if event.starts_ms else ""
    where = f'<p class="place">{html.escape(event.place)}</p>' if event.place else ""
    return f"<h1>{html.escape(event.title)}</h1>" + (f"<p>{html.escape(when)}</p>" if when else "") + where


@get("/passes/{ticket_id:str}")
async def pass_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The hosted pass: a large QR code a door scanner reads, while the ticket is active; the ticket
    number for a lookup by hand; a calendar entry; a printable layout."""
    found = await _pass(request)
    if found is None:
        return not_found("Pass")
    services, item, status = found
    ticket = item.ticket
    number = f'<p>Ticket number <span class="number">{html.escape(ticket.ticket_number)}</span></p>'
    # An earlier holder's address does not show who holds the ticket now.
    shown = ticket.attendee_name if status != "transferred" else None
    holder = f"<p>{html.escape(shown)}</p>" if shown else ""
    details = f"<p><strong>{html.escape(item.tier.title)}</strong></p>{holder}{number}"
    if status != "active":
        said = NO_LONGER_VALID.get(status, f"This ticket is {status}.")
        body = f'{_event_facts(item)}<p class="problem" role="status">{html.escape(said)}</p>{details}'
        return page("Pass no longer valid", body, 410)
    if item.pass_token is None:
        return page("No door list", "<h1>No check-in list admits this ticket yet</h1>", 409)
    qr = segno.make(item.pass_token, error="m", micro=False)
    svg = qr.svg_inline(scale=8, border=4, dark="#000", light="#fff", title="Ticket QR code")
    ics = pass_url(services.settings, item).replace("?", "/event.ics?", 1)
    calendar = (
        f'<a class="button" href="{html.escape(ics)}">Add to calendar</a>' if item.event.starts_ms else ""
    )
    body = f"""{_event_facts(item)}<div class="card">
<div class="qr" role="img" aria-label="Ticket QR code">{svg}</div>
{details}</div><p class="muted">Show this code at the door, screen at full brightness. Screenshots work
offline.</p><p class="no-print">{calendar}</p>"""
    return page(f"Pass — {item.event.title}", body)


@get("/passes/{ticket_id:str}/event.ics")
async def pass_calendar(request: Request[Any, Any, Any]) -> Response[str]:
    """The event of a pass as a calendar entry."""
    found = await _pass(request)
    if found is None or found[1].event.starts_ms is None or found[2] != "active":
        return not_found("Calendar entry")
    services, item, _ = found
    host = services.settings.public_url.split("//", 1)[-1].split("/", 1)[0]
    entry = calendar_entry(
        item.event,
        f"{item.ticket.id}@{host}",
        pass_url(services.settings, item),
        services.clock.now_ms(),
        f"{item.tier.title} · ticket {item.ticket.ticket_number}",
    )
    return Response(
        entry,
        media_type="text/calendar",
        headers={"content-disposition": 'attachment; filename="event.ics"', "cache-control": "no-store"},
    )


ROUTES = [
    atm_webhook,
    checkout_page,
    checkout_pay,
    checkout_cancel,
    dev_payments_page,
    pass_page,
    pass_calendar,
    static_file,
    *buyer_routes,
]

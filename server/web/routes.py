"""HTTP outside XRPC: the payment broker's webhooks, the built-in dev checkout, and pass pages."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, TypeGuard

import segno
from litestar import Request, Response, get, post
from litestar.response import Redirect

from server.atproto.datetimes import format_datetime
from server.domain.holds.rules import redirect_problem
from server.domain.holds.service import effective_status
from server.domain.issuance.queries import TicketInContext, hold_tickets, pass_of
from server.domain.payments.devpay import cancel_checkout, checkout_of, pay
from server.domain.payments.inbound import receive
from server.domain.storefront.rules import calendar_entry, local_time
from server.web.buyer import ROUTES as buyer_routes
from server.web.buyer import pass_links, pass_url
from server.web.pages import money, not_found, page, static_file
from server.xrpc.framework import Services

if TYPE_CHECKING:
    from server.db.models import Hold


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


@get("/checkout/{token:str}")
async def checkout_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The dev payments checkout: what the buyer is about to pay, with Pay and Cancel."""
    token = request.path_params["token"]
    services = _services(request)
    found = await checkout_of(services.db, services.settings, token)
    if found is None:
        return _not_found()
    hold, event, lines = found.hold, found.event, found.lines
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
    found = await checkout_of(services.db, services.settings, token)
    if found is None:
        return _not_found()
    hold = found.hold
    reply = await pay(services.db, services.keyring, services.settings, hold, services.clock.now_ms())
    if reply.status != 200 or reply.body.get("outcome") != "issued":
        reason = html.escape(str(reply.body.get("outcome") or reply.body.get("message")))
        return page("Payment not completed", f"<h1>Payment not completed</h1><p>{reason}</p>", 409)
    if _may_redirect(hold.return_url, hold):
        return Redirect(hold.return_url)
    items = await hold_tickets(services.db, services.keyring, hold.id)
    links = pass_links(services.settings, items)
    return page("Paid", f"<h1>Paid — thank you</h1><div class='card'><ul>{links}</ul></div>")


@post("/checkout/{token:str}/cancel", status_code=200)
async def checkout_cancel(request: Request[Any, Any, Any]) -> Response[str] | Redirect:
    """Cancel: the hold is released and nothing is charged."""
    token = request.path_params["token"]
    services = _services(request)
    hold = await cancel_checkout(services.db, services.settings, token, services.clock.now_ms())
    if hold is None:
        return _not_found()
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
    found = await pass_of(services.db, services.keyring, request.path_params["ticket_id"], key)
    return None if found is None else (services, *found)


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

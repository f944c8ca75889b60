"""HTTP outside XRPC: the payment broker's webhooks, the built-in dev checkout, and pass pages."""

from __future__ import annotations

import html
import secrets
from typing import Any, TypeGuard

import segno
from litestar import Request, Response, get, post
from litestar.response import Redirect
from sqlalchemy import select

from server.db.models import Event, Hold, HoldItem, Ticket, Tier
from server.domain.common import format_datetime
from server.domain.exports.rows import price
from server.domain.holds.rules import redirect_problem
from server.domain.holds.service import effective_status, end_hold
from server.domain.issuance.keys import pass_access_key
from server.domain.issuance.queries import in_context
from server.domain.payments.devpay import pay, serves_checkout
from server.domain.payments.inbound import receive
from server.xrpc.framework import Services


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def _money(amount: int, currency: str) -> str:
    return f"{price(amount, currency)} {currency.upper()}"


def _page(title: str, body: str, status: int = 200) -> Response[str]:
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#111}}
.card{{border:1px solid #ccc;border-radius:.75rem;padding:1rem 1.25rem;margin:1rem 0}}
button{{font-size:1.1rem;padding:.6rem 1.4rem;margin-right:.5rem;border-radius:.5rem;border:1px solid #333}}
.pay{{background:#0a7d32;color:#fff}} .muted{{color:#666}} svg{{width:100%;height:auto}}</style></head>
<body>{body}</body></html>"""
    return Response(document, status_code=status, media_type="text/html")


def _not_found() -> Response[str]:
    """The dev checkout of an unknown hold, of a live one, or with a broker configured."""
    return _page("Checkout not found", "<h1>Checkout not found</h1>", 404)


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
        f"<li>{item.quantity} x {html.escape(tier.title)}: {_money(item.unit_amount * item.quantity, cur)}"
        "</li>"
        for item, tier in lines
    )
    actions = (
        f"""<form method="post" action="/checkout/{html.escape(token)}/pay" style="display:inline">
<button class="pay" type="submit">Pay {_money(hold.amount, hold.currency)}</button></form>
<form method="post" action="/checkout/{html.escape(token)}/cancel" style="display:inline">
<button type="submit">Cancel</button></form>"""
        if status == "held"
        else f"<p>This checkout is <strong>{html.escape(status)}</strong>.</p>"
    )
    body = f"""<h1>{html.escape(event.title)}</h1><p class="muted">Development payments: no money moves.</p>
<div class="card"><ul>{items}</ul><p><strong>Total {_money(hold.amount, hold.currency)}</strong></p>
<p class="muted">Reserved until {format_datetime(hold.expires_ms)}</p></div>{actions}"""
    return _page(f"Checkout — {event.title}", body)


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
        return _page("Payment not completed", f"<h1>Payment not completed</h1><p>{reason}</p>", 409)
    if _may_redirect(hold.return_url, hold):
        return Redirect(hold.return_url)
    async with services.db.read() as session:
        tickets = list(
            await session.scalars(select(Ticket).where(Ticket.hold_id == hold.id).order_by(Ticket.id))
        )
        items = await in_context(session, services.keyring, tickets)
    base = services.settings.public_url.rstrip("/")
    links = "".join(
        f'<li><a href="{base}/passes/{i.ticket.id}?k={i.access_key}">{html.escape(i.tier.title)} — '
        f"{html.escape(i.ticket.ticket_number)}</a></li>"
        for i in items
    )
    return _page("Paid", f"<h1>Paid — thank you</h1><div class='card'><ul>{links}</ul></div>")


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
    return _page("Cancelled", "<h1>Checkout cancelled</h1><p>Nothing was charged.</p>")


@get("/dev-payments")
async def dev_payments_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Where the dev payments send an organizer to manage payments: there is nothing to set up."""
    if _services(request).settings.broker_url:
        return _page("Not found", "<h1>Not found</h1>", 404)
    body = """<h1>Development payments</h1><div class="card"><p>Every organizer is approved and payable
at once. No money moves.</p></div>"""
    return _page("Development payments", body)


@get("/passes/{ticket_id:str}")
async def pass_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The hosted pass: the QR code a door scanner reads, while the ticket is active."""
    ticket_id = request.path_params["ticket_id"]
    services = _services(request)
    # Compared as bytes: compare_digest raises on a str with non-ASCII characters.
    key = request.query_params.get("k", "").encode("utf-8", "surrogatepass")
    async with services.db.read() as session:
        ticket = await session.get(Ticket, ticket_id)
        expected = b"" if ticket is None else pass_access_key(services.keyring, ticket).encode()
        if ticket is None or not secrets.compare_digest(key, expected):
            return _page("Pass not found", "<h1>Pass not found</h1>", 404)
        (item,) = await in_context(session, services.keyring, [ticket])
    if ticket.status != "active":
        return _page("Pass no longer valid", f"<h1>This ticket was {html.escape(ticket.status)}</h1>", 410)
    if item.pass_token is None:
        return _page("No door list", "<h1>No check-in list admits this ticket yet</h1>", 409)
    qr = segno.make(item.pass_token, error="m", micro=False)
    svg = qr.svg_inline(scale=6, border=4, dark="#000", light="#fff")
    attendee = f"<p>{html.escape(ticket.attendee_name)}</p>" if ticket.attendee_name else ""
    starts = f"<p class='muted'>{format_datetime(item.event.starts_ms)}</p>" if item.event.starts_ms else ""
    body = f"""<h1>{html.escape(item.event.title)}</h1>{starts}<div class="card">{svg}
<p><strong>{html.escape(item.tier.title)}</strong> · {html.escape(ticket.ticket_number)}</p>{attendee}</div>
<p class="muted">Show this code at the door. Screenshots work offline.</p>"""
    return _page(f"Pass — {item.event.title}", body)


ROUTES = [atm_webhook, checkout_page, checkout_pay, checkout_cancel, dev_payments_page, pass_page]

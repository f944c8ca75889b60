"""The hosted event page ``/p/<organizerDid>/e/<rkey>``: an event's public tiers, an order priced by
the very function of ``previewTicketOrder``, "Buy" taking a hold and sending the buyer to checkout,
and the outcome shown when the checkout sends the buyer back here."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote as url_quote

from litestar import Request, Response, get, post
from litestar.response import Redirect

from server.domain.caller import Caller
from server.domain.catalog.rules import SaleState
from server.domain.eventimage import EventImages, version
from server.domain.holds import service as holds
from server.domain.holds.rules import check_redirect
from server.domain.holds.service import HoldRequest
from server.domain.issuance.queries import TicketInContext, pass_page_url
from server.domain.offers import limits
from server.domain.offers.pricing import Quote
from server.domain.payments.devpay import check_payments_ready, checkout_url
from server.domain.storefront.rules import local_time, ordered_items
from server.domain.storefront.service import TierOffer, buy, checkout_outcome, listed, page_event
from server.errors import DomainError, InvalidRequest
from server.settings import Settings
from server.web.pages import money, not_found, page
from server.xrpc.codes import code_limits
from server.xrpc.framework import Services
from server.xrpc.ratelimits import client_ip

if TYPE_CHECKING:
    from server.db.models import Event

T = TypeVar("T")
EVENT_PATH = "/p/{organizer_did:str}/e/{rkey:str}"
# Seconds between reloads of a page waiting for a payment to complete.
PENDING_REFRESH_SECONDS = 3
MAX_EMAIL = 320
# What the page says of a checkout that did not end in tickets, by the hold's status.
OUTCOMES = {
    "held": ("pending", "Waiting for your payment to complete…"),
    "expired": ("expired", "This checkout expired before it was paid. Nothing was charged."),
    "released": ("cancelled", "The checkout was cancelled. Nothing was charged."),
    "failed": ("failed", "The payment failed. Nothing was charged."),
}
_FRIENDLY = {
    "InsufficientAvailability": "Not enough tickets are left for this order.",
    "TicketHoldUnavailable": "These tickets are not on sale right now.",
    "OrderLimitExceeded": "That is more tickets than one order may take.",
    "InvalidOfferCode": "This code cannot be used for this order.",
    "RateLimitExceeded": "Too many wrong codes: try again later.",
    "PaymentSetupIncomplete": "This event cannot take payments yet.",
}


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def _images(request: Request[Any, Any, Any]) -> EventImages:
    images: EventImages = request.app.state.event_images
    return images


def pass_url(settings: Settings, item: TicketInContext) -> str:
    return pass_page_url(settings.public_url, item)


def pass_links(settings: Settings, items: list[TicketInContext]) -> str:
    return "".join(
        f'<li><a href="{html.escape(pass_url(settings, i))}">{html.escape(i.tier.title)} — '
        f"{html.escape(i.ticket.ticket_number)}</a></li>"
        for i in items
    )


def page_path(event: Event) -> str:
    """The event page's path, from the event's calendar record URI."""
    rkey = event.uri.rsplit("/", 1)[-1]
    return f"/p/{url_quote(event.organizer_did, safe=':')}/e/{url_quote(rkey, safe='')}"


def _friendly(exc: DomainError) -> str:
    return _FRIENDLY.get(exc.code, str(exc))


# --- reading the page's facts ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class View:
    event: Event
    caller: Caller
    tiers: list[TierOffer]
    code: str | None
    problem: str | None = None


def _ip(request: Request[Any, Any, Any], settings: Settings) -> str:
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get(settings.client_ip_header), settings.trusted_proxy_count)


async def _guarding_code(
    services: Services, caller: Caller, ip: str, code: str | None, work: Callable[[], Awaitable[T]]
) -> T:
    """Wrong codes typed on the page count like an app's, per app and per client address."""
    policy = code_limits(services.settings)
    return await limits.guarding_codes(
        services.db, caller, code, f"ip:{ip}", policy, services.clock.now_ms(), work
    )


async def _view(services: Services, request: Request[Any, Any, Any], code: str | None) -> View:
    """The event and the tiers a buyer sees; a code that cannot be used is said, not fatal."""
    now_ms = services.clock.now_ms()
    event, caller = await page_event(
        services.db, request.path_params["organizer_did"], request.path_params["rkey"]
    )
    try:
        tiers, code = await _guarding_code(
            services,
            caller,
            _ip(request, services.settings),
            code,
            partial(listed, services.db, event, code, now_ms),
        )
    except DomainError as exc:
        tiers, _ = await listed(services.db, event, None, now_ms)
        return View(event, caller, tiers, None, _friendly(exc))
    return View(event, caller, tiers, code)


# --- rendering ----------------------------------------------------------------------------------


def tier_label(tier: TierOffer, event: Event, now_ms: int) -> tuple[str, str]:
    """What the page says of a tier's sale now, and its style."""
    t = tier.state.tier
    if tier.sale == SaleState.AVAILABLE:
        return f"On sale · {tier.state.available} left", "on-sale"
    if tier.sale == SaleState.SOLD_OUT:
        return "Sold out", "sold-out"
    if t.sale_starts_ms is not None and t.sale_starts_ms > now_ms:
        return f"On sale from {local_time(t.sale_starts_ms, event.timezone)}", "soon"
    if t.sale_ends_ms is not None and t.sale_ends_ms <= now_ms:
        return "Sale ended", "ended"
    return "Not on sale", "ended"


def _tier_row(tier: TierOffer, view: View, chosen: Mapping[str, str], now_ms: int) -> str:
    t = tier.state.tier
    label, style = tier_label(tier, view.event, now_ms)
    description = f'<p class="muted">{html.escape(t.description)}</p>' if t.description else ""
    if tier.free:
        price_text = "Free"
        picker = '<p class="muted">Free: claim it in the event\'s app while signed in.</p>'
    else:
        price_text = money(t.unit_amount, t.currency)
        if tier.code_price is not None:
            price_text += f" → {money(tier.code_price, t.currency)} with your code"
        field = f"qty-{t.id}"
        current = chosen.get(field, "0")
        options = "".join(
            f'<option value="{n}"{" selected" if str(n) == current else ""}>{n}</option>'
            for n in range(tier.most + 1)
        )
        picker = (
            f'<label for="{html.escape(field)}">Quantity</label> '
            f'<select id="{html.escape(field)}" name="{html.escape(field)}" '
            f'data-tier-quantity="{html.escape(t.id)}"{"" if tier.most else " disabled"}>{options}</select>'
        )
    return f"""<div class="tier"><div class="what"><h3>{html.escape(t.title)}</h3>
<p><strong>{html.escape(price_text)}</strong> · <span class="state {style}" data-tier-state="{
        html.escape(t.id)
    }">{html.escape(label)}</span></p>{description}</div><div>{picker}</div></div>"""


def _quote_block(quote: Quote, currency: str) -> str:
    parts = [f"<p>Subtotal {money(quote.subtotal, currency)}</p>"]
    if quote.discount:
        parts.append(f"<p>Discount -{money(quote.discount, currency)}</p>")
    if quote.buyer_fee:
        parts.append(f"<p>Fees {money(quote.buyer_fee, currency)}</p>")
    parts.append(
        f'<p class="total"><strong>Total <span data-total="{quote.total}">'
        f"{money(quote.total, currency)}</span></strong></p>"
    )
    return '<div class="card" aria-live="polite">' + "".join(parts) + "</div>"


def event_image(event: Event, images: EventImages | None) -> str:
    """The event's image, served from this origin, when it has one that may be shown."""
    if images is None or not event.image_url or not images.showable(event.image_url):
        return ""
    src = f"{page_path(event)}/image?v={version(event.image_url)}"
    return f'<img class="event-image" src="{html.escape(src)}" alt="{html.escape(event.title)}">'


def render_event(
    settings: Settings,
    view: View,
    now_ms: int,
    *,
    images: EventImages | None = None,
    chosen: Mapping[str, str] | None = None,
    quote: tuple[Quote, str] | None = None,
    outcome: str = "",
    status: int = 200,
    refresh: bool = False,
) -> Response[str]:
    event, chosen = view.event, chosen or {}
    path = page_path(event)
    when = f"<p>{html.escape(local_time(event.starts_ms, event.timezone))}</p>" if event.starts_ms else ""
    where = f'<p class="place">{html.escape(event.place)}</p>' if event.place else ""
    link = (
        f'<p><a href="{html.escape(event.url)}">About this event</a></p>'
        if event.url and event.url.startswith("https://")
        else ""
    )
    problem = f'<p class="problem" role="alert">{html.escape(view.problem)}</p>' if view.problem else ""
    rows = "".join(_tier_row(t, view, chosen, now_ms) for t in view.tiers) or "<p>No tickets are listed.</p>"
    buyable = any(t.most for t in view.tiers)
    code = html.escape(view.code or "")
    total = _quote_block(*quote) if quote else ""
    email = html.escape(chosen.get("email", ""))
    buy = (
        f"""<div class="field"><label for="email">E-mail address (your tickets are sent there)</label>
<input id="email" name="email" type="email" autocomplete="email" maxlength="{MAX_EMAIL}"
 value="{email}"></div>
{total}<button type="submit" name="action" value="quote">Show total</button>
<button class="buy" type="submit" name="action" value="buy">Buy</button>"""
        if buyable
        else ""
    )
    image = event_image(event, images)
    body = f"""<h1>{html.escape(event.title)}</h1>{image}{when}{where}{link}{outcome}{problem}
<form method="get" action="{path}" class="card no-print">
<div class="field"><label for="code">Offer code</label>
<input id="code" name="code" type="text" autocomplete="off" maxlength="100" value="{code}"></div>
<button type="submit">Apply code</button></form>
<form method="post" action="{path}" data-availability="{path}/availability">
<input type="hidden" name="code" value="{code}"><h2>Tickets</h2><div class="card">{rows}</div>{buy}</form>"""
    return page(
        f"Tickets — {event.title}",
        body,
        status,
        scripts=["event.js"],
        refresh_seconds=PENDING_REFRESH_SECONDS if refresh else None,
        form_targets=[settings.broker_url],
    )


# --- the outcome of a checkout the buyer comes back from ---------------------------------------


async def _outcome(services: Services, event: Event, token: str) -> tuple[str, bool]:
    """What became of the checkout ``token`` of this event, and whether it is still pending."""
    found = await checkout_outcome(services.db, services.keyring, event, token, services.clock.now_ms())
    if found is None:
        return (
            '<p class="problem" role="status" data-outcome="unknown">This checkout is unknown.</p>',
            False,
        )
    status = found.status
    if status == "completed":
        sent = " A copy is sent to your e-mail address." if found.hold.customer_email else ""
        block = (
            f'<div class="notice" role="status" data-outcome="issued"><p><strong>Paid — your tickets are '
            f"issued.</strong>{sent}</p><ul>{pass_links(services.settings, found.tickets)}</ul></div>"
        )
        return block, False
    outcome, text = OUTCOMES.get(status, ("failed", "The payment did not complete."))
    style = "notice" if outcome == "pending" else "problem"
    return (
        f'<p class="{style}" role="status" data-outcome="{outcome}">{html.escape(text)}</p>',
        outcome == "pending",
    )


# --- routes -------------------------------------------------------------------------------------


@get(EVENT_PATH)
async def event_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The event's public ticket page; ``?code=`` applies an offer code, ``?checkout=`` shows what
    became of the buyer's checkout."""
    services = _services(request)
    try:
        view = await _view(services, request, request.query_params.get("code") or None)
    except DomainError:
        return not_found("Event")
    token = request.query_params.get("checkout")
    outcome, pending = await _outcome(services, view.event, token) if token else ("", False)
    return render_event(
        services.settings,
        view,
        services.clock.now_ms(),
        images=_images(request),
        outcome=outcome,
        refresh=pending,
    )


@get(EVENT_PATH + "/image")
async def event_image_file(request: Request[Any, Any, Any]) -> Response[Any]:
    """The event's image from this origin (its ``imageUrl`` fetched, checked and cached); 404 when
    it has none or it cannot be fetched as a PNG, JPEG, WebP or GIF image."""
    services = _services(request)
    try:
        event, _ = await page_event(
            services.db, request.path_params["organizer_did"], request.path_params["rkey"]
        )
    except DomainError:
        return not_found("Image")
    image = await _images(request).get(event.image_url)
    if image is None:
        return not_found("Image")
    return Response(
        image.content,
        media_type=image.media_type,
        headers={
            "cache-control": "public, max-age=86400",
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
            "content-disposition": "inline",
            "referrer-policy": "no-referrer",
        },
    )


@get(EVENT_PATH + "/availability")
async def event_availability(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The public tiers' state now, for the page's script."""
    services = _services(request)
    try:
        view = await _view(services, request, None)
    except DomainError:
        return Response(
            {"error": "EventNotFound", "message": "this event is not ticketed here"}, status_code=404
        )
    now_ms = services.clock.now_ms()
    tiers = [
        {"id": t.state.tier.id, "label": tier_label(t, view.event, now_ms)[0], "most": t.most}
        for t in view.tiers
    ]
    return Response({"tiers": tiers}, headers={"cache-control": "no-store"})


def _email(form: Mapping[str, str]) -> str:
    email = form.get("email", "").strip()
    name, at, domain = email.rpartition("@")
    if not at or not name or "." not in domain or len(email) > MAX_EMAIL or any(c.isspace() for c in email):
        raise InvalidRequest("an e-mail address is needed to send the tickets")
    return email


async def _buy(services: Services, view: View, request: HoldRequest) -> str:
    """Take the hold as the event's app and answer where the buyer pays."""
    settings, now_ms = services.settings, services.clock.now_ms()
    check_payments_ready(settings, view.caller.environment)
    back = settings.public_url.rstrip("/") + page_path(view.event) + "?checkout="
    check_redirect(back + "x", "the service's public URL", view.caller.environment)
    hold = await buy(services.db, view.caller, request, now_ms, settings.hold_ttl_seconds * 1000, back)
    return checkout_url(settings, hold.token)


@post(EVENT_PATH, status_code=200)
async def event_order(request: Request[Any, Any, Any]) -> Response[str] | Redirect:
    """ "Show total" prices the chosen tickets; "Buy" takes the hold and sends the buyer to pay."""
    services = _services(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        view = await _view(services, request, form.get("code", "").strip() or None)
    except DomainError:
        return not_found("Event")
    now_ms = services.clock.now_ms()
    if view.problem:
        return render_event(services.settings, view, now_ms, images=_images(request), chosen=form, status=400)
    try:
        items = ordered_items(form, view.tiers)
        buying = form.get("action") == "buy"
        order = HoldRequest(
            items=items,
            event_id=view.event.id,
            customer_email=_email(form) if buying else None,
            offer_code=view.code,
        )

        async def work() -> str | tuple[Quote, str]:
            if buying:
                return await _buy(services, view, order)
            priced = await holds.preview_order(services.db, view.caller, order, now_ms)
            return priced.quote, priced.tiers[next(iter(items))].currency

        ip = _ip(request, services.settings)
        answer = await _guarding_code(services, view.caller, ip, view.code, work)
    except DomainError as exc:
        failed = View(view.event, view.caller, view.tiers, view.code, _friendly(exc))
        return render_event(
            services.settings, failed, now_ms, images=_images(request), chosen=form, status=exc.status
        )
    if isinstance(answer, str):
        return Redirect(answer, status_code=303)
    return render_event(services.settings, view, now_ms, images=_images(request), chosen=form, quote=answer)


ROUTES = [event_page, event_availability, event_image_file, event_order]

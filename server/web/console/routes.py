"""The console's pages. Every page needs a live session (its cookie); every form carries the
session's CSRF token; every change goes through :mod:`server.domain.organizer` with the session's
actor, so the ledger says who made it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage

from server.atproto.datetimes import format_datetime
from server.domain.devices.service import enrollment_text
from server.domain.exports.rules import DOOR_LIST_FORMATS
from server.domain.organizer import service as organizer
from server.domain.organizer import signin
from server.domain.organizer.access import Viewer, console_viewer, viewed_events
from server.errors import DomainError
from server.web.console.charts import bars
from server.xrpc import views
from server.xrpc.framework import Services

if TYPE_CHECKING:
    from server.db.engine import Database
    from server.db.models import ConsoleSession

log = logging.getLogger("tickets.console")
COOKIE = "tickets_console"
PREFIX = "/console"
BUCKET_MS = 15 * 60 * 1000
LIVE_INTERVAL_S = 1.0
# A stream ends after this long (the browser's EventSource reconnects), so none outlives a restart.
LIVE_ROUNDS = 600
SEARCH_LIMIT = 50
# What the ticket page says after "Resend pass" (``?done=``): a fixed text per outcome, never text
# from the request.
RESEND_RESULTS = {
    "resent": ("ok", "Pass sent again: it is queued for the buyer's e-mail address."),
    "no-email": ("bad", "Not sent: no e-mail address was given for this ticket (order or holder)."),
    "not-active": ("bad", "Not sent: the ticket is no longer active, so it has no pass to send."),
}
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class Refused(Exception):
    """A console request refused with a page: not signed in (401), a form without its token (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def _render(template: str, status: int = 200, **context: Any) -> Response[str]:
    page = TEMPLATES.get_template(template).render(prefix=PREFIX, **context)
    headers = {"cache-control": "no-store", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}
    return Response(page, status_code=status, media_type="text/html", headers=headers)


def _refused_page(_: Request[Any, Any, Any], exc: Refused) -> Response[str]:
    return _render("error.html", exc.status, message=str(exc), console=None)


def _domain_page(_: Request[Any, Any, Any], exc: DomainError) -> Response[str]:
    return _render("error.html", exc.status, message=exc.message, console=None)


async def _signed_in(request: Request[Any, Any, Any]) -> ConsoleSession:
    services = _services(request)
    console = await signin.live_session(services.db, request.cookies.get(COOKIE), services.clock.now_ms())
    if console is None:
        raise Refused(401, "Sign in with a link from your operator (tickets console link).")
    return console


async def _form(request: Request[Any, Any, Any]) -> tuple[ConsoleSession, dict[str, str]]:
    """A change: a live session and its CSRF token in the form."""
    console = await _signed_in(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not signin.csrf_matches(console, form.get("csrf")):
        raise Refused(403, "This form has expired or did not come from the console: reload the page.")
    return console, form


def _viewer(console: ConsoleSession) -> Viewer:
    return console_viewer(console.organizer_did)


def _changed(event_id: str, action: str, where: str | None = None) -> Response[Any]:
    """After a form's change to the event (logged in the ledger under the session's actor): back to
    ``where``, or the page the change answers."""
    log.info("console change %s on event %s (who: see the ledger)", action, event_id)
    page = action.split(".", maxsplit=1)[0]
    return Redirect(where or f"{PREFIX}/events/{event_id}/{page}", status_code=303)


async def _act_on(
    request: Request[Any, Any, Any],
    event_id: str,
    item_id: str,
    act: Callable[[Database, Viewer, str, str, int], Awaitable[object]],
    action: str,
) -> Response[Any]:
    """A form's ``act`` on one item of the event (a desk to revoke, a delivery to redrive)."""
    console, _ = await _form(request)
    services = _services(request)
    await act(services.db, _viewer(console), event_id, item_id, services.clock.now_ms())
    return _changed(event_id, action)


# --- sign-in -------------------------------------------------------------------------------------


@get("/signin/{secret:str}")
async def signin_page(secret: FromPath[str]) -> Response[str]:
    """A button, not an automatic sign-in: link previews must not spend the link."""
    return _render("signin.html", console=None, secret=secret)


@post("/signin/{secret:str}")
async def signin_post(request: Request[Any, Any, Any], secret: FromPath[str]) -> Response[Any]:
    services = _services(request)
    started = await signin.sign_in(services.db, secret, services.clock.now_ms())
    if started is None:
        raise Refused(403, "This sign-in link is unknown, expired or already used: ask for a new one.")
    cookie, console = started
    log.info("console sign-in: %s session", "operator" if console.organizer_did is None else "organizer")
    secure = services.settings.public_url.startswith("https://")
    return Redirect(
        PREFIX,
        status_code=303,
        cookies=[
            Cookie(
                key=COOKIE,
                value=cookie,
                path=PREFIX,
                max_age=signin.SESSION_MS // 1000,
                httponly=True,
                secure=secure,
                samesite="strict",
            )
        ],
    )


@post("/signout")
async def signout(request: Request[Any, Any, Any]) -> Response[Any]:
    await _form(request)
    services = _services(request)
    await signin.sign_out(services.db, request.cookies[COOKIE], services.clock.now_ms())
    return Redirect(
        f"{PREFIX}/signed-out",
        status_code=303,
        cookies=[Cookie(key=COOKIE, value="", path=PREFIX, max_age=0)],
    )


@get("/signed-out")
async def signed_out() -> Response[str]:
    return _render("error.html", 200, message="Signed out.", console=None)


# --- pages ---------------------------------------------------------------------------------------


@get("/")
async def events(request: Request[Any, Any, Any]) -> Response[str]:
    console = await _signed_in(request)
    found = await viewed_events(_services(request).db, _viewer(console))
    return _render("events.html", console=console, events=found)


@get("/events/{event_id:str}")
async def dashboard(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    console, services = await _signed_in(request), _services(request)
    viewed = await organizer.dashboard_of(
        services.db, _viewer(console), event_id, services.clock.now_ms(), BUCKET_MS
    )
    summary, over_time = views.summary_view(viewed.value.summary), viewed.value.entries_over_time
    gates: dict[str, int] = {}
    for checklist in summary["checkInLists"]:
        for gate in checklist["byGate"]:
            gates[gate["name"] or "-"] = gates.get(gate["name"] or "-", 0) + gate["admitted"]
    return _render(
        "dashboard.html",
        console=console,
        event=viewed.event,
        summary=summary,
        inside=sum(c["inside"] for c in summary["checkInLists"]),
        sales_chart=bars("Tickets sold by tier", [(t["title"], t["sold"]) for t in summary["tiers"]]),
        time_chart=bars(
            "Entries per 15 minutes", [(format_datetime(at)[11:16] + " UTC", n) for at, n in over_time]
        ),
        gate_chart=bars("Entries by gate", sorted(gates.items())),
    )


@get("/events/{event_id:str}/live")
async def live(request: Request[Any, Any, Any], event_id: FromPath[str]) -> ServerSentEvent:
    """Server-sent events: ``inside`` (guests inside now) whenever it changes, checked each second
    for ten minutes and while the session lives; the browser reconnects."""
    console = await _signed_in(request)
    services = _services(request)
    event = await organizer.event_of(services.db, _viewer(console), event_id)

    async def updates() -> Any:
        last: int | None = None
        for _ in range(LIVE_ROUNDS):
            still = await signin.live_session(
                services.db, request.cookies.get(COOKIE), services.clock.now_ms()
            )
            inside = await organizer.inside_of(services.db, event)
            if still is None:
                return
            if inside != last:
                last = inside
                yield ServerSentEventMessage(data=str(inside), event="inside")
            await asyncio.sleep(LIVE_INTERVAL_S)

    return ServerSentEvent(updates(), retry_duration=1000, headers={"cache-control": "no-store"})


@get("/events/{event_id:str}/conflicts")
async def conflicts(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    console, db = await _signed_in(request), _services(request).db
    found = await organizer.conflicts_of(db, _viewer(console), event_id, "all")
    listed = [views.conflict_history_view(c) for c in found.value]
    numbers = await organizer.ticket_numbers(db, [c.get("ticketId") for c in listed])
    return _render("conflicts.html", console=console, event=found.event, conflicts=listed, tickets=numbers)


@post("/events/{event_id:str}/conflicts/{conflict_id:str}/resolve")
async def resolve(
    request: Request[Any, Any, Any], event_id: FromPath[str], conflict_id: FromPath[str]
) -> Response[Any]:
    console, form = await _form(request)
    services = _services(request)
    await organizer.resolve_event_conflict(
        services.db,
        _viewer(console),
        event_id,
        conflict_id,
        form.get("outcome", ""),
        form.get("reason", ""),
        services.clock.now_ms(),
    )
    return _changed(event_id, "conflicts.resolve")


@get("/events/{event_id:str}/payments")
async def payments(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    console = await _signed_in(request)
    found = await organizer.payment_issues_of(_services(request).db, _viewer(console), event_id)
    issues = [views.payment_issue_view(p) for p in found.value]
    return _render("payments.html", console=console, event=found.event, payments=issues)


@get("/events/{event_id:str}/tickets")
async def tickets(
    request: Request[Any, Any, Any], event_id: FromPath[str], q: FromQuery[str] = ""
) -> Response[str]:
    console = await _signed_in(request)
    found = await organizer.found_tickets(_services(request).db, _viewer(console), event_id, q, SEARCH_LIMIT)
    return _render("tickets.html", console=console, event=found.event, q=q, found=found.value)


@get("/events/{event_id:str}/tickets/{ticket_id:str}")
async def ticket(
    request: Request[Any, Any, Any],
    event_id: FromPath[str],
    ticket_id: FromPath[str],
    done: FromQuery[str] = "",
) -> Response[str]:
    console = await _signed_in(request)
    found = await organizer.history_of(_services(request).db, _viewer(console), event_id, ticket_id)
    return _render(
        "ticket.html",
        console=console,
        event=found.event,
        ticket=found.value.ticket,
        history=views.ticket_history_view(found.value),
        result=RESEND_RESULTS.get(done),
    )


@post("/events/{event_id:str}/tickets/{ticket_id:str}/{action:str}")
async def ticket_action(
    request: Request[Any, Any, Any], event_id: FromPath[str], ticket_id: FromPath[str], action: FromPath[str]
) -> Response[Any]:
    """Void, refund, transfer a ticket or resend its pass (``action``), as the console's actor."""
    if action not in {"void", "refund", "transfer", "resend"}:
        raise Refused(404, "No such action.")
    console, form = await _form(request)
    services = _services(request)
    resent = await organizer.change_event_ticket(
        services.db,
        _viewer(console),
        event_id,
        ticket_id,
        action,
        reason=form.get("reason") or None,
        attendee_name=form.get("attendeeName") or None,
        attendee_email=form.get("attendeeEmail") or None,
        now_ms=services.clock.now_ms(),
    )
    here = f"{PREFIX}/events/{event_id}/tickets/{ticket_id}"
    # A resend refused says why on the ticket's page instead of an error page.
    return _changed(event_id, f"tickets.{action}", here if resent is None else f"{here}?done={resent}")


@get("/events/{event_id:str}/devices")
async def devices_page(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    console = await _signed_in(request)
    found = await organizer.devices_of(_services(request).db, _viewer(console), event_id)
    return _render(
        "devices.html",
        console=console,
        event=found.event,
        devices=[views.device_view(d) for d in found.value],
    )


@post("/events/{event_id:str}/devices/enroll")
async def enroll(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    """A new desk's one-time code, on screen with its QR code (shown once: not a redirect)."""
    console, form = await _form(request)
    services = _services(request)
    made = await organizer.enroll_event_desk(
        services.db, _viewer(console), event_id, form.get("name", "")[:200], services.clock.now_ms()
    )
    log.info("console change devices.enroll on event %s (who: see the ledger)", event_id)
    qr = segno.make(enrollment_text(made.value.code, services.settings.public_url), error="m")
    return _render(
        "enrolled.html",
        console=console,
        event=made.event,
        device=made.value.device,
        code=made.value.code,
        server=services.settings.public_url,
        qr=qr.svg_inline(scale=5, dark="#111", light="#fff"),
    )


@post("/events/{event_id:str}/devices/{device_id:str}/revoke")
async def revoke(
    request: Request[Any, Any, Any], event_id: FromPath[str], device_id: FromPath[str]
) -> Response[Any]:
    return await _act_on(request, event_id, device_id, organizer.revoke_event_device, "devices.revoke")


@get("/events/{event_id:str}/exports")
async def exports(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    console = await _signed_in(request)
    found = await organizer.lists_of(_services(request).db, _viewer(console), event_id)
    return _render(
        "exports.html", console=console, event=found.event, lists=found.value, formats=DOOR_LIST_FORMATS
    )


@get("/events/{event_id:str}/exports/{list_id:str}/{fmt:str}")
async def download(
    request: Request[Any, Any, Any], event_id: FromPath[str], list_id: FromPath[str], fmt: FromPath[str]
) -> Response[bytes]:
    console = await _signed_in(request)
    services = _services(request)
    body, media_type, filename = await organizer.export_event_list(
        services.db, _viewer(console), event_id, list_id, fmt, services.clock.now_ms()
    )
    disposition = f'attachment; filename="{filename}"'
    return Response(
        body, media_type=media_type, headers={"content-disposition": disposition, "cache-control": "no-store"}
    )


@get("/events/{event_id:str}/deliveries")
async def deliveries(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    console = await _signed_in(request)
    found = await organizer.deliveries_of(_services(request).db, _viewer(console), event_id, 100)
    sent = [views.delivery_view(d) for d in found.value]
    return _render("deliveries.html", console=console, event=found.event, deliveries=sent)


@post("/events/{event_id:str}/deliveries/{delivery_id:str}/redrive")
async def redrive(
    request: Request[Any, Any, Any], event_id: FromPath[str], delivery_id: FromPath[str]
) -> Response[Any]:
    return await _act_on(
        request, event_id, delivery_id, organizer.redrive_event_delivery, "deliveries.redrive"
    )


CONSOLE = Router(
    path=PREFIX,
    route_handlers=[
        signin_page,
        signin_post,
        signout,
        signed_out,
        events,
        dashboard,
        live,
        conflicts,
        resolve,
        payments,
        tickets,
        ticket,
        ticket_action,
        devices_page,
        enroll,
        revoke,
        exports,
        download,
        deliveries,
        redrive,
    ],
    exception_handlers={Refused: _refused_page, DomainError: _domain_page},
)

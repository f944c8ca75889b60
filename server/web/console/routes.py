"""The console's pages. Every page needs a live session (its cookie); every form carries the
session's CSRF token; every change goes through :mod:`server.domain.organizer` with the session's
actor, so the ledger says who made it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.datetimes import format_datetime
from server.db.models import CheckInList, ConsoleSession, Event, Ticket
from server.domain.devices.service import enrollment_text
from server.domain.exports.service import DOOR_LIST_FORMATS, export_list
from server.domain.issuance import service as issuance
from server.domain.organizer import service as organizer
from server.domain.organizer import signin
from server.domain.organizer.access import Viewer, console_viewer, viewed_event, viewed_events
from server.errors import CustomerEmailMissing, DomainError, TicketNotActive
from server.web.console.charts import bars
from server.xrpc.framework import Services

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
    async with services.db.read() as session:
        console = await signin.find_session(session, request.cookies.get(COOKIE), services.clock.now_ms())
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


Page = Callable[[AsyncSession, Viewer, Event], Awaitable[dict[str, Any]]]


async def _event_page(
    request: Request[Any, Any, Any], event_id: FromPath[str], template: str, page: Page
) -> Response[str]:
    console = await _signed_in(request)
    viewer = console_viewer(console.organizer_did)
    async with _services(request).db.read() as session:
        event = await viewed_event(session, viewer, event_id)
        context = await page(session, viewer, event)
    return _render(template, console=console, event=event, **context)


Change = Callable[[AsyncSession, Viewer, Event, dict[str, str], int], Awaitable[str | None]]


async def _change(
    request: Request[Any, Any, Any], event_id: FromPath[str], action: FromPath[str], change: Change
) -> Response[Any]:
    """Apply a form's change to the event, log who made it, and go back to ``where`` (or the page
    the change answers)."""
    console, form = await _form(request)
    viewer = console_viewer(console.organizer_did)
    services = _services(request)
    async with services.db.write() as session:
        event = await viewed_event(session, viewer, event_id)
        where = await change(session, viewer, event, form, services.clock.now_ms())
    log.info("console change %s on event %s (who: see the ledger)", action, event_id)
    page = action.split(".", maxsplit=1)[0]
    return Redirect(where or f"{PREFIX}/events/{event_id}/{page}", status_code=303)


# --- sign-in -------------------------------------------------------------------------------------


@get("/signin/{secret:str}")
async def signin_page(secret: FromPath[str]) -> Response[str]:
    """A button, not an automatic sign-in: link previews must not spend the link."""
    return _render("signin.html", console=None, secret=secret)


@post("/signin/{secret:str}")
async def signin_post(request: Request[Any, Any, Any], secret: FromPath[str]) -> Response[Any]:
    services = _services(request)
    async with services.db.write() as session:
        started = await signin.redeem_link(session, secret, services.clock.now_ms())
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
    async with services.db.write() as session:
        await signin.end_session(session, request.cookies[COOKIE], services.clock.now_ms())
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
    async with _services(request).db.read() as session:
        found = await viewed_events(session, console_viewer(console.organizer_did))
    return _render("events.html", console=console, events=found)


@get("/events/{event_id:str}")
async def dashboard(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    now_ms = _services(request).clock.now_ms()

    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        summary = await organizer.event_summary(session, event, now_ms)
        over_time = await organizer.entries_over_time(session, event, BUCKET_MS)
        gates: dict[str, int] = {}
        for checklist in summary["checkInLists"]:
            for gate in checklist["byGate"]:
                gates[gate["name"] or "-"] = gates.get(gate["name"] or "-", 0) + gate["admitted"]
        return {
            "summary": summary,
            "inside": sum(c["inside"] for c in summary["checkInLists"]),
            "sales_chart": bars("Tickets sold by tier", [(t["title"], t["sold"]) for t in summary["tiers"]]),
            "time_chart": bars(
                "Entries per 15 minutes", [(format_datetime(at)[11:16] + " UTC", n) for at, n in over_time]
            ),
            "gate_chart": bars("Entries by gate", sorted(gates.items())),
        }

    return await _event_page(request, event_id, "dashboard.html", page)


@get("/events/{event_id:str}/live")
async def live(request: Request[Any, Any, Any], event_id: FromPath[str]) -> ServerSentEvent:
    """Server-sent events: ``inside`` (guests inside now) whenever it changes, checked each second
    for ten minutes and while the session lives; the browser reconnects."""
    console = await _signed_in(request)
    viewer = console_viewer(console.organizer_did)
    services = _services(request)
    async with services.db.read() as session:
        event = await viewed_event(session, viewer, event_id)

    async def updates() -> Any:
        last: int | None = None
        for _ in range(LIVE_ROUNDS):
            async with services.db.read() as session:
                still = await signin.find_session(
                    session, request.cookies.get(COOKIE), services.clock.now_ms()
                )
                inside = await organizer.inside_now(session, event)
            if still is None:
                return
            if inside != last:
                last = inside
                yield ServerSentEventMessage(data=str(inside), event="inside")
            await asyncio.sleep(LIVE_INTERVAL_S)

    return ServerSentEvent(updates(), retry_duration=1000, headers={"cache-control": "no-store"})


@get("/events/{event_id:str}/conflicts")
async def conflicts(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        found = await organizer.list_conflicts(session, event, "all")
        return {
            "conflicts": found,
            "tickets": await _ticket_numbers(session, [c.get("ticketId") for c in found]),
        }

    return await _event_page(request, event_id, "conflicts.html", page)


async def _ticket_numbers(session: AsyncSession, ids: list[str | None]) -> dict[str, str]:
    wanted = [i for i in ids if i]
    rows = await session.execute(select(Ticket.id, Ticket.ticket_number).where(Ticket.id.in_(wanted)))
    return {row.id: row.ticket_number for row in rows}


@post("/events/{event_id:str}/conflicts/{conflict_id:str}/resolve")
async def resolve(
    request: Request[Any, Any, Any], event_id: FromPath[str], conflict_id: FromPath[str]
) -> Response[Any]:
    async def change(
        session: AsyncSession, viewer: Viewer, event: Event, form: dict[str, str], now: int
    ) -> None:
        await organizer.resolve_conflict(
            session, viewer, event, conflict_id, form.get("outcome", ""), form.get("reason", ""), now
        )

    return await _change(request, event_id, "conflicts.resolve", change)


@get("/events/{event_id:str}/payments")
async def payments(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {"payments": await organizer.payment_issues(session, event)}

    return await _event_page(request, event_id, "payments.html", page)


@get("/events/{event_id:str}/tickets")
async def tickets(
    request: Request[Any, Any, Any], event_id: FromPath[str], q: FromQuery[str] = ""
) -> Response[str]:
    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        found = await organizer.search_tickets(session, event, q, SEARCH_LIMIT) if q.strip() else []
        return {"q": q, "found": found}

    return await _event_page(request, event_id, "tickets.html", page)


@get("/events/{event_id:str}/tickets/{ticket_id:str}")
async def ticket(
    request: Request[Any, Any, Any],
    event_id: FromPath[str],
    ticket_id: FromPath[str],
    done: FromQuery[str] = "",
) -> Response[str]:
    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {
            "ticket": await organizer.event_ticket(session, event, ticket_id),
            "history": await organizer.ticket_history(session, event, ticket_id),
            "result": RESEND_RESULTS.get(done),
        }

    return await _event_page(request, event_id, "ticket.html", page)


@post("/events/{event_id:str}/tickets/{ticket_id:str}/{action:str}")
async def ticket_action(
    request: Request[Any, Any, Any], event_id: FromPath[str], ticket_id: FromPath[str], action: FromPath[str]
) -> Response[Any]:
    """Void, refund, transfer a ticket or resend its pass (``action``), as the console's actor."""
    if action not in {"void", "refund", "transfer", "resend"}:
        raise Refused(404, "No such action.")

    async def change(
        session: AsyncSession, viewer: Viewer, event: Event, form: dict[str, str], now: int
    ) -> str:
        found = await organizer.event_ticket(session, event, ticket_id)
        locked = await issuance.find_ticket(session, event.environment, found.id, lock=True)
        here = f"{PREFIX}/events/{event_id}/tickets/{ticket_id}"
        reason = form.get("reason") or None
        if action == "resend":
            # Refused before it writes anything: the page says why instead of an error page.
            try:
                await issuance.resend_pass(session, locked, now, actor=viewer.actor)
            except TicketNotActive:
                return f"{here}?done=not-active"
            except CustomerEmailMissing:
                return f"{here}?done=no-email"
            return f"{here}?done=resent"
        if action == "transfer":
            await issuance.transfer_ticket(
                session,
                locked,
                buyer_did=None,
                attendee_name=form.get("attendeeName") or None,
                attendee_email=form.get("attendeeEmail") or None,
                actor=viewer.actor,
                reason=reason,
                now_ms=now,
            )
        else:
            status = "voided" if action == "void" else "refunded"
            await issuance.end_ticket(session, locked, status, viewer.actor, reason, now)
        return here

    return await _change(request, event_id, f"tickets.{action}", change)


@get("/events/{event_id:str}/devices")
async def devices_page(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {"devices": [organizer.device_view(d) for d in await organizer.event_devices(session, event)]}

    return await _event_page(request, event_id, "devices.html", page)


@post("/events/{event_id:str}/devices/enroll")
async def enroll(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    """A new desk's one-time code, on screen with its QR code (shown once: not a redirect)."""
    console, form = await _form(request)
    viewer = console_viewer(console.organizer_did)
    services = _services(request)
    async with services.db.write() as session:
        event = await viewed_event(session, viewer, event_id)
        made = await organizer.enroll_desk(
            session, viewer, event, form.get("name", "")[:200], services.clock.now_ms()
        )
    log.info("console change devices.enroll on event %s (who: see the ledger)", event_id)
    qr = segno.make(enrollment_text(made.code, services.settings.public_url), error="m")
    return _render(
        "enrolled.html",
        console=console,
        event=event,
        device=made.device,
        code=made.code,
        server=services.settings.public_url,
        qr=qr.svg_inline(scale=5, dark="#111", light="#fff"),
    )


@post("/events/{event_id:str}/devices/{device_id:str}/revoke")
async def revoke(
    request: Request[Any, Any, Any], event_id: FromPath[str], device_id: FromPath[str]
) -> Response[Any]:
    async def change(
        session: AsyncSession, viewer: Viewer, event: Event, _: dict[str, str], now: int
    ) -> None:
        await organizer.revoke_device(session, viewer, event, device_id, now)

    return await _change(request, event_id, "devices.revoke", change)


@get("/events/{event_id:str}/exports")
async def exports(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        lists = await session.scalars(
            select(CheckInList).where(CheckInList.event_id == event.id).order_by(CheckInList.id)
        )
        return {"lists": list(lists), "formats": DOOR_LIST_FORMATS}

    return await _event_page(request, event_id, "exports.html", page)


@get("/events/{event_id:str}/exports/{list_id:str}/{fmt:str}")
async def download(
    request: Request[Any, Any, Any], event_id: FromPath[str], list_id: FromPath[str], fmt: FromPath[str]
) -> Response[bytes]:
    console = await _signed_in(request)
    services = _services(request)
    async with services.db.read() as session:
        event = await viewed_event(session, console_viewer(console.organizer_did), event_id)
        checklist = await session.get(CheckInList, list_id)
        if checklist is None or checklist.event_id != event.id:
            raise Refused(404, "No such check-in list in this event.")
        body, media_type, filename = await export_list(
            session, event.environment, checklist.id, fmt, now_ms=services.clock.now_ms()
        )
    disposition = f'attachment; filename="{filename}"'
    return Response(
        body, media_type=media_type, headers={"content-disposition": disposition, "cache-control": "no-store"}
    )


@get("/events/{event_id:str}/deliveries")
async def deliveries(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[str]:
    async def page(session: AsyncSession, _: Viewer, event: Event) -> dict[str, Any]:
        return {"deliveries": await organizer.deliveries(session, event, 100)}

    return await _event_page(request, event_id, "deliveries.html", page)


@post("/events/{event_id:str}/deliveries/{delivery_id:str}/redrive")
async def redrive(
    request: Request[Any, Any, Any], event_id: FromPath[str], delivery_id: FromPath[str]
) -> Response[Any]:
    async def change(
        session: AsyncSession, viewer: Viewer, event: Event, _: dict[str, str], now: int
    ) -> None:
        await organizer.redrive_delivery(session, viewer, event, delivery_id, now)

    return await _change(request, event_id, "deliveries.redrive", change)


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

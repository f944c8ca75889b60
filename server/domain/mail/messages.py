"""The e-mails themselves: plain text and HTML, each pass's QR code inline, the pass page's link, the
event's details and a calendar entry (ICS) attached."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import segno

from server.domain.issuance.queries import TicketInContext, pass_page_url
from server.domain.storefront.rules import calendar_entry, local_time

SUBJECTS = {
    "issued": "Your tickets: {title}",
    "resent": "Your tickets (sent again): {title}",
    "voided": "Your ticket was voided: {title}",
    "refunded": "Your ticket was refunded: {title}",
    "transferred": "Your ticket was transferred: {title}",
}
NOTICES = {
    "voided": "This ticket was voided: it no longer admits anyone.",
    "refunded": "This ticket was refunded: it no longer admits anyone.",
    "transferred": "This ticket was transferred to someone else: its old pass no longer admits anyone.",
}


def qr_png(token: str) -> bytes:
    out = io.BytesIO()
    segno.make(token, error="m", micro=False).save(out, kind="png", scale=8, border=4)
    return out.getvalue()


def _ticket_lines(item: TicketInContext) -> list[str]:
    t = item.ticket
    holder = [f"Holder: {t.attendee_name}"] if t.attendee_name else []
    return [f"{item.tier.title}", *holder, f"Ticket number: {t.ticket_number}"]


def compose(
    kind: str,
    recipient: str,
    sender: str,
    items: Sequence[TicketInContext],
    public_url: str,
    now_ms: int,
) -> EmailMessage:
    """The message of ``kind`` about ``items`` (tickets of one event)."""
    event = items[0].event
    when = local_time(event.starts_ms, event.timezone) if event.starts_ms else ""
    passes = kind in ("issued", "resent")
    message = EmailMessage()
    message["Subject"] = SUBJECTS[kind].format(title=event.title)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(now_ms / 1000, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")

    text = [event.title, *([when] if when else []), ""]
    parts = [f"<h1>{html.escape(event.title)}</h1>", f"<p>{html.escape(when)}</p>" if when else ""]
    images: list[tuple[str, bytes]] = []
    for item in items:
        link = pass_page_url(public_url, item)
        lines = _ticket_lines(item)
        text += lines
        block = "<br>".join(html.escape(line) for line in lines)
        if passes and item.pass_token is not None:
            cid = make_msgid(domain="tickets")
            images.append((cid, qr_png(item.pass_token)))
            text += [f"Your pass: {link}", ""]
            parts.append(
                f'<p>{block}</p><p><img src="cid:{cid[1:-1]}" alt="QR code of ticket '
                f'{html.escape(item.ticket.ticket_number)}" width="320" height="320"></p>'
                f'<p><a href="{html.escape(link)}">Open your pass</a></p>'
            )
        else:
            notice = NOTICES.get(kind, "")
            text += [notice, ""]
            parts.append(f"<p>{block}</p><p><strong>{html.escape(notice)}</strong></p>")
    if passes:
        text.append("Show the code at the door, on your phone at full brightness or printed.")
        parts.append("<p>Show the code at the door, on your phone at full brightness or printed.</p>")
    message.set_content("\n".join(text) + "\n")
    message.add_alternative(
        '<!doctype html><html lang="en"><body>' + "".join(parts) + "</body></html>", subtype="html"
    )
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    for cid, png in images:
        html_part.add_related(png, maintype="image", subtype="png", cid=cid, filename="ticket-qr.png")
    if passes and event.starts_ms is not None:
        entry = calendar_entry(
            event, f"{items[0].ticket.hold_id}@tickets", pass_page_url(public_url, items[0]), now_ms
        )
        message.add_attachment(entry.encode(), maintype="text", subtype="calendar", filename="event.ics")
    return message

"""The mail worker: every server process claims due messages (``FOR UPDATE SKIP LOCKED``, moving
``next_attempt_ms`` forward by a lease, as the webhook worker does), composes each from the tickets
as they are now, and sends it by SMTP, or without SMTP settings writes it as an .eml file to the
data folder's ``mail/``. A failed send is retried with exponential backoff up to
``mail_max_attempts``; logs name the message id, never the address."""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select, update

from server.db.engine import Database
from server.db.lease import lease_rows
from server.db.models import MailMessage, Ticket
from server.domain.common import Clock
from server.domain.issuance.list_keys import Keyring
from server.domain.issuance.queries import in_context
from server.domain.mail.messages import compose
from server.domain.mail.rules import NO_SUCH_TICKETS, given_up, retry_delay_ms
from server.settings import Settings

log = logging.getLogger("tickets.mail")
BATCH = 20
LEASE_MARGIN_MS = 30_000


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    id: int
    kind: str
    recipient: str
    ticket_ids: list[str]
    attempts: int


async def claim_due(db: Database, now_ms: int, lease_ms: int, limit: int = BATCH) -> list[ClaimedMail]:
    async with db.write() as session:
        rows = list(
            await session.scalars(
                select(MailMessage)
                .where(MailMessage.state == "pending", MailMessage.next_attempt_ms <= now_ms)
                .order_by(MailMessage.next_attempt_ms, MailMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        claimed = [ClaimedMail(m.id, m.kind, m.recipient, list(m.ticket_ids), m.attempts) for m in rows]
        await lease_rows(session, MailMessage.id, [m.id for m in rows], now_ms + lease_ms)
    return claimed


def send_smtp(settings: Settings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


def write_eml(folder: Path, message_id: int, kind: str, message: EmailMessage) -> Path:
    """The message as a file only this user may read (it carries passes). It appears whole: it is
    written under a hidden name and then renamed, so whatever picks up ``*.eml`` never reads a
    message half written."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{message_id:08d}-{kind}.eml"
    partial = folder / f".{path.name}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(message.as_bytes())
    os.replace(partial, path)
    return path


def _reason(exc: Exception) -> str:
    """What went wrong, without the server's answer text (it may quote the address)."""
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}" + (f" {code}" if code else "")


async def _compose(
    db: Database, keyring: Keyring, settings: Settings, job: ClaimedMail, now_ms: int
) -> EmailMessage | None:
    async with db.read() as session:
        tickets = list(
            await session.scalars(select(Ticket).where(Ticket.id.in_(job.ticket_ids)).order_by(Ticket.id))
        )
        if not tickets:
            return None
        items = await in_context(session, keyring, tickets)
    return compose(job.kind, job.recipient, settings.smtp_from, items, settings.public_url, now_ms)


async def send_one(db: Database, keyring: Keyring, settings: Settings, job: ClaimedMail, now_ms: int) -> bool:
    """Compose and send one claimed message; record the outcome. Answers whether it went out."""
    error: str | None = None
    try:
        message = await _compose(db, keyring, settings, job, now_ms)
        if message is None:
            error = NO_SUCH_TICKETS
        elif settings.smtp_host:
            await asyncio.to_thread(send_smtp, settings, message)
        else:
            await asyncio.to_thread(write_eml, settings.mail_folder, job.id, job.kind, message)
    except Exception as exc:  # any failure of one message is retried, never fatal to the worker
        error = _reason(exc)
    attempts = job.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "last_error": error}
    if error is None:
        values |= {"state": "sent", "sent_ms": now_ms}
    elif given_up(attempts, settings.mail_max_attempts, error):
        values |= {"state": "dead"}
        log.warning("mail message %d given up after %d attempts: %s", job.id, attempts, error)
    else:
        delay_ms = retry_delay_ms(
            job.attempts, settings.mail_backoff_base_seconds, settings.mail_backoff_cap_seconds
        )
        values |= {"next_attempt_ms": now_ms + delay_ms}
        log.info("mail message %d not sent (attempt %d): %s", job.id, attempts, error)
    async with db.write() as session:
        await session.execute(update(MailMessage).where(MailMessage.id == job.id).values(**values))
    return error is None


async def deliver_due(db: Database, keyring: Keyring, settings: Settings, clock: Clock) -> int:
    """Send what is due now; answers how many were claimed."""
    now_ms = clock.now_ms()
    lease_ms = int(settings.smtp_timeout_seconds * 3 * 1000) + LEASE_MARGIN_MS
    jobs = await claim_due(db, now_ms, lease_ms)
    for job in jobs:
        await send_one(db, keyring, settings, job, clock.now_ms())
    return len(jobs)


def announce(settings: Settings) -> None:
    """Say where mail goes, once at startup."""
    if settings.smtp_host:
        log.info("e-mail to buyers goes through SMTP at %s:%d", settings.smtp_host, settings.smtp_port)
    else:
        log.warning(
            "no SMTP settings (TICKETS_SMTP_HOST): e-mail to buyers is written as .eml files to %s",
            settings.mail_folder,
        )


async def run_mail_worker(db: Database, keyring: Keyring, settings: Settings, clock: Clock) -> None:
    while True:
        try:
            claimed = await deliver_due(db, keyring, settings, clock)
        except Exception:
            log.exception("mail worker pass failed; retrying")
            claimed = 0
        if claimed < BATCH:
            await asyncio.sleep(settings.mail_poll_interval_seconds)

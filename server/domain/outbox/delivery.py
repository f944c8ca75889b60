"""Delivering the outbox: claim due messages, POST them signed, record each attempt.

An app receives them as HMAC-signed webhooks at its webhook URL, or as XRPC calls to the receiver
its DID document names, authorized by a service-auth JWT (:mod:`server.domain.outbox.receivers`);
both go through the same claims, retries, delivery log and redrive.

Any number of workers (one per server process) can run at once. A claim pushes the message's
``next_attempt_ms`` forward by a lease inside one short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite's single writer serializes claims), so no two workers send the same message
concurrently, and a crashed worker's messages come back once the lease runs out; a worker that is
stopped (a graceful shutdown) gives its unfinished claims back at once. The body and the delivery
id are stored, so every retry sends the same bytes under the same id, with the ``X-Request-Id`` of
the request that caused the event.

The HTTP client is the service's :func:`~server.outbound.outbound_client`: a webhook URL naming a
loopback, private or otherwise non-public address is never contacted. Every transport failure and
timeout is recorded as the same error, which tells neither the address nor whether a port was open.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select, update

from server.auth.did import DidResolutionError
from server.db.engine import Database
from server.db.lease import lease_rows
from server.db.models import App, OutboxMessage, WebhookAttempt
from server.domain import webhook_format
from server.domain.common import Clock
from server.domain.outbox.receivers import XrpcReceivers
from server.domain.outbox.rules import given_up, retry_delay_ms
from server.observability import REQUEST_ID_HEADER
from server.outbound import UNREACHABLE
from server.settings import Settings

log = logging.getLogger("tickets.webhooks")

EXCERPT_CHARS = 500
RECEIVER_UNREACHABLE = f"the webhook receiver {UNREACHABLE}"
# A claim outlives the request timeout by this much, so recording the outcome of a slow attempt
# (even while the database is busy) normally finishes before another worker may take the message.
LEASE_MARGIN_MS = 30_000


@dataclass(frozen=True)
class ClaimedDelivery:
    """A message taken for one delivery attempt, with where and how to send it."""

    id: int
    delivery_id: str
    event_type: str
    environment: str
    body: bytes
    attempts: int
    webhook_url: str | None
    webhook_secret: str | None
    app_did: str = ""
    delivery: str = "webhook"
    request_id: str | None = None
    # The claim's lease ends then (the message's ``next_attempt_ms`` while it is claimed); not part
    # of what the message is.
    lease_until_ms: int = field(default=0, compare=False)


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one POST: ``at_ms`` is when it started."""

    delivered: bool
    at_ms: int
    latency_ms: int
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None


def lease_ms(settings: Settings) -> int:
    return int(settings.webhook_timeout_seconds * 1000) + LEASE_MARGIN_MS


async def claim_due(db: Database, now_ms: int, limit: int, lease_ms: int) -> list[ClaimedDelivery]:
    """Take up to ``limit`` due pending messages, oldest due first, for ``lease_ms``."""
    async with db.write() as session:
        rows = (
            await session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.delivery_id,
                    OutboxMessage.event_type,
                    OutboxMessage.environment,
                    OutboxMessage.body,
                    OutboxMessage.attempts,
                    App.webhook_url,
                    App.webhook_secret,
                    App.did,
                    App.delivery,
                    OutboxMessage.request_id,
                )
                .join(App, App.id == OutboxMessage.app_id)
                .where(OutboxMessage.state == "pending", OutboxMessage.next_attempt_ms <= now_ms)
                .order_by(OutboxMessage.next_attempt_ms, OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=OutboxMessage)
            )
        ).all()
        await lease_rows(session, OutboxMessage.id, [row.id for row in rows], now_ms + lease_ms)
    return [
        ClaimedDelivery(
            id=row.id,
            delivery_id=row.delivery_id,
            event_type=row.event_type,
            environment=row.environment,
            body=row.body.encode(),
            attempts=row.attempts,
            webhook_url=row.webhook_url,
            webhook_secret=row.webhook_secret,
            app_did=row.did,
            delivery=row.delivery,
            request_id=row.request_id,
            lease_until_ms=now_ms + lease_ms,
        )
        for row in rows
    ]


async def give_back(db: Database, claims: list[ClaimedDelivery], now_ms: int) -> None:
    """Make claimed messages due again at once (a stopping worker's unfinished claims); a message
    recorded since, or claimed again by another worker, is left alone."""
    async with db.write() as session:
        for claimed in claims:
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == claimed.id,
                    OutboxMessage.state == "pending",
                    OutboxMessage.next_attempt_ms == claimed.lease_until_ms,
                )
                .values(next_attempt_ms=now_ms)
                .execution_options(synchronize_session=False)
            )


async def _excerpt(response: httpx.Response) -> str:
    """The first characters of the answer, without reading more of it than that."""
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks += chunk
        if len(chunks) >= EXCERPT_CHARS * 4:
            break
    return chunks.decode(errors="replace")[:EXCERPT_CHARS]


async def _destination(
    claimed: ClaimedDelivery, receivers: XrpcReceivers | None, now_ms: int
) -> tuple[str, dict[str, str]] | str:
    """Where to POST the message and with which headers; or why it cannot be sent now."""
    headers = webhook_format.delivery_headers(claimed.delivery_id, claimed.event_type, claimed.environment)
    if claimed.request_id:
        headers[REQUEST_ID_HEADER] = claimed.request_id
    if claimed.delivery == "xrpc":
        if receivers is None:
            return "XRPC delivery is not set up in this process"
        try:
            url = await receivers.endpoint(claimed.app_did)
        except DidResolutionError as exc:
            return f"no XRPC receiver: {exc}"
        return url, {**headers, "authorization": receivers.authorization(claimed.app_did, now_ms / 1000)}
    if not claimed.webhook_url or not claimed.webhook_secret:
        return "the app has no webhook URL or secret"
    signature = webhook_format.signature_header(
        [claimed.webhook_secret], now_ms // 1000, claimed.delivery_id, claimed.body
    )
    return claimed.webhook_url, {**headers, webhook_format.SIGNATURE_HEADER: signature}


async def deliver(
    claimed: ClaimedDelivery,
    http: httpx.AsyncClient,
    settings: Settings,
    now_ms: int,
    receivers: XrpcReceivers | None = None,
) -> AttemptResult:
    """POST the stored body, signed (or with a fresh service-auth JWT, to an XRPC receiver); a 2xx
    answer delivers it. Never raises for the receiver's failures: a non-2xx answer, a timeout (of
    the whole exchange), a connection error (the last two recorded as :data:`RECEIVER_UNREACHABLE`)
    or a receiver that cannot be found is a failed attempt."""
    destination = await _destination(claimed, receivers, now_ms)
    if isinstance(destination, str):
        return AttemptResult(False, now_ms, 0, error=destination)
    url, headers = destination
    timeout = settings.webhook_timeout_seconds
    started = time.monotonic()

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        async with (
            asyncio.timeout(timeout),
            http.stream("POST", url, content=claimed.body, headers=headers, timeout=timeout) as response,
        ):
            excerpt = await _excerpt(response)
    except (TimeoutError, httpx.HTTPError):
        return AttemptResult(False, now_ms, elapsed_ms(), error=RECEIVER_UNREACHABLE)
    delivered = response.is_success
    return AttemptResult(
        delivered,
        now_ms,
        elapsed_ms(),
        status_code=response.status_code,
        excerpt=excerpt,
        error=None if delivered else f"HTTP {response.status_code}",
    )


async def record(
    db: Database, claimed: ClaimedDelivery, result: AttemptResult, settings: Settings, rng: random.Random
) -> None:
    """Log the attempt and move the message on: delivered, due again after a backoff, or dead
    after ``webhook_max_attempts``. A failure reported for a message that is no longer pending
    (another worker delivered it after this claim's lease ran out) only goes to the log."""
    finished_ms = result.at_ms + result.latency_ms
    async with db.write() as session:
        message = (
            await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.id == claimed.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        session.add(
            WebhookAttempt(
                outbox_id=claimed.id,
                at_ms=result.at_ms,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                response_excerpt=result.excerpt,
                error=result.error,
            )
        )
        if not result.delivered and message.state != "pending":
            return
        message.last_status = result.status_code
        message.last_error = result.error
        if result.delivered:
            message.state = "delivered"
            message.delivered_ms = message.delivered_ms or finished_ms
        else:
            message.attempts += 1
            if given_up(message.attempts, settings.webhook_max_attempts):
                message.state = "dead"
            else:
                delay_ms = retry_delay_ms(
                    message.attempts - 1,
                    settings.webhook_backoff_base_seconds,
                    settings.webhook_backoff_cap_seconds,
                    rng.random(),
                )
                message.next_attempt_ms = finished_ms + delay_ms


async def _send(
    db: Database,
    claimed: ClaimedDelivery,
    http: httpx.AsyncClient,
    settings: Settings,
    clock: Clock,
    rng: random.Random,
    receivers: XrpcReceivers | None,
) -> bool:
    """One attempt, recorded; answers whether it delivered the message."""
    try:
        result = await deliver(claimed, http, settings, clock.now_ms(), receivers)
        await record(db, claimed, result, settings, rng)
    except Exception:
        log.exception("webhook %s: attempt not recorded; it is retried after its lease", claimed.delivery_id)
        return False
    return result.delivered


async def _report(batch: list[asyncio.Task[bool]]) -> None:
    """One log line per claimed batch, once its attempts are over."""
    delivered = sum(await asyncio.gather(*batch))
    log.info("webhooks: %d of %d delivered", delivered, len(batch))


async def run_delivery_worker(
    db: Database,
    settings: Settings,
    clock: Clock,
    http: httpx.AsyncClient,
    *,
    rng: random.Random | None = None,
    receivers: XrpcReceivers | None = None,
) -> None:
    """Deliver due messages forever, at most ``webhook_batch_size`` at once; poll every
    ``webhook_poll_interval_seconds`` when nothing is due. ``receivers``: how to reach the apps
    that take XRPC delivery. Cancelling stops it and its attempts (their messages come back after
    the lease) and gives their claims back."""
    rng = rng or random.Random()  # noqa: S311  (retry jitter, not a secret)
    lease = lease_ms(settings)
    in_flight: dict[asyncio.Task[bool], ClaimedDelivery] = {}
    reports: set[asyncio.Task[None]] = set()
    try:
        while True:
            free = settings.webhook_batch_size - len(in_flight)
            claimed: list[ClaimedDelivery] = []
            if free:
                try:
                    claimed = await claim_due(db, clock.now_ms(), free, lease)
                except Exception:
                    log.exception("claiming webhooks failed; retrying")
            batch = [
                asyncio.create_task(_send(db, message, http, settings, clock, rng, receivers))
                for message in claimed
            ]
            for task, message in zip(batch, claimed, strict=True):
                in_flight[task] = message
                task.add_done_callback(in_flight.pop)
            if batch:
                report = asyncio.create_task(_report(batch))
                reports.add(report)
                report.add_done_callback(reports.discard)
            if len(claimed) == free and in_flight:
                # Every slot is busy and more may be due: go on as soon as one frees up.
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(settings.webhook_poll_interval_seconds)
    finally:
        unfinished = list(in_flight.values())
        tasks: list[asyncio.Task[Any]] = [*in_flight, *reports]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if unfinished:
            try:
                await give_back(db, unfinished, clock.now_ms())
            except Exception:
                log.exception(
                    "giving back %d webhook claim(s) failed; they return after their lease", len(unfinished)
                )

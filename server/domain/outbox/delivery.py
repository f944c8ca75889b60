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
from server.db.models import OutboxMessage, WebhookAttempt
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


# The due pending messages, oldest due first, with where their app takes them; locked on PostgreSQL
# (a message another worker is claiming is skipped, not waited for). ``due`` orders the batch.
_DUE = (
    "SELECT m.id, m.next_attempt_ms AS due FROM webhook_outbox m "
    "WHERE m.state = 'pending' AND m.next_attempt_ms <= :now ORDER BY m.next_attempt_ms, m.id LIMIT :limit"
)
_CLAIMED = (
    "o.id, o.delivery_id, o.event_type, o.environment, o.body, o.attempts, a.webhook_url, "
    "a.webhook_secret, a.did, a.delivery, o.request_id"
)
# PostgreSQL: chosen, leased and read in one statement, which commits on its own (one round trip).
_CLAIM = (
    f"WITH c AS ({_DUE} FOR UPDATE OF m SKIP LOCKED), "  # noqa: S608 (constant names)
    "o AS (UPDATE webhook_outbox SET next_attempt_ms = :until FROM c WHERE webhook_outbox.id = c.id "
    "RETURNING webhook_outbox.*, c.due) "
    f"SELECT {_CLAIMED} FROM o JOIN apps a ON a.id = o.app_id ORDER BY o.due, o.id"
)
# SQLite (one writer at a time): chosen and read, then leased, in one write transaction.
_CHOSEN = (
    f"SELECT {_CLAIMED} FROM ({_DUE}) c JOIN webhook_outbox o ON o.id = c.id "  # noqa: S608 (constant names)
    "JOIN apps a ON a.id = o.app_id ORDER BY c.due, c.id"
)
_LEASE = "UPDATE webhook_outbox SET next_attempt_ms = :until WHERE id IN (:ids)"


async def claim_due(db: Database, now_ms: int, limit: int, lease_ms: int) -> list[ClaimedDelivery]:
    """Take up to ``limit`` due pending messages, oldest due first, for ``lease_ms``: on PostgreSQL
    in one statement that commits on its own, on SQLite in one write transaction, on the driver
    alone (a claim runs every poll, and once or more for every message sent)."""
    until_ms = now_ms + lease_ms
    keys = {"now": now_ms, "limit": limit, "until": until_ms}
    if db.is_sqlite:
        async with db.transaction() as unit:
            driver = await unit.driver()
            rows = await driver.fetch(_CHOSEN, {"now": now_ms, "limit": limit})
            if rows:
                await driver.execute(_LEASE, {"until": until_ms, "ids": [row[0] for row in rows]})
    else:
        rows = await db.autocommit(lambda driver: driver.fetch(_CLAIM, keys))
    return [
        ClaimedDelivery(
            id=id_,
            delivery_id=delivery_id,
            event_type=event_type,
            environment=environment,
            body=body.encode(),
            attempts=attempts,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            app_did=did,
            delivery=delivery,
            request_id=request_id,
            lease_until_ms=until_ms,
        )
        for (
            id_,
            delivery_id,
            event_type,
            environment,
            body,
            attempts,
            webhook_url,
            webhook_secret,
            did,
            delivery,
            request_id,
        ) in rows
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


_ATTEMPT = (
    "INSERT INTO webhook_attempts (outbox_id, at_ms, status_code, latency_ms, response_excerpt, error) "
    "VALUES (:id, :at, :status, :latency, :excerpt, NULL)"
)
_DELIVERED = (
    "UPDATE webhook_outbox SET state = 'delivered', last_status = :status, last_error = NULL, "
    "delivered_ms = COALESCE(delivered_ms, :finished) WHERE id = :id"
)
_ATTEMPT_DELIVERED = f"WITH attempt AS ({_ATTEMPT}) {_DELIVERED}"  # PostgreSQL: one statement


async def _delivered(db: Database, claimed: ClaimedDelivery, result: AttemptResult, finished_ms: int) -> None:
    """A delivery, the outcome of nearly every attempt, logged and recorded whatever the message's
    state (a late success still counts, and its first delivery time is kept): on PostgreSQL in one
    statement that commits on its own, on SQLite in one write transaction."""
    params = {
        "id": claimed.id,
        "at": result.at_ms,
        "status": result.status_code,
        "latency": result.latency_ms,
        "excerpt": result.excerpt,
        "finished": finished_ms,
    }
    if db.is_sqlite:
        async with db.transaction() as unit:
            driver = await unit.driver()
            await driver.execute(_ATTEMPT, params)
            await driver.execute(_DELIVERED, params)
    else:
        await db.autocommit(lambda driver: driver.execute(_ATTEMPT_DELIVERED, params))


async def record(
    db: Database, claimed: ClaimedDelivery, result: AttemptResult, settings: Settings, rng: random.Random
) -> None:
    """Log the attempt and move the message on: delivered, due again after a backoff, or dead
    after ``webhook_max_attempts``. A failure reported for a message that is no longer pending
    (another worker delivered it after this claim's lease ran out) only goes to the log."""
    finished_ms = result.at_ms + result.latency_ms
    if result.delivered:
        await _delivered(db, claimed, result, finished_ms)
        return
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
        if message.state != "pending":
            return
        message.last_status = result.status_code
        message.last_error = result.error
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

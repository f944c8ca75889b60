"""Receiving the payment broker's webhooks (``POST /webhooks/atm``): verify the signature over the raw
bytes, then handle each delivery id once, in one transaction with its dedupe record. The handling
locks the hold (or the tickets) it changes, so a duplicate delivered while the first is handled
waits for it and then answers its result."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.domain.errors import DomainError, IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidRequest
from server.domain.idempotency import run_once_atomically
from server.domain.issuance.keys import Keyring
from server.domain.payments.service import PaymentReport, payment_completed, payment_failed, payment_refunded
from server.domain.webhook_format import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from server.settings import Settings

HANDLED_TYPES = ("payment.completed", "payment.refunded", "payment.failed")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def broker_secrets(settings: Settings, keyring: Keyring) -> list[str]:
    """The current and previous broker secrets; without a broker, the dev payments' own secret."""
    if settings.broker_webhook_secret:
        return [s for s in (settings.broker_webhook_secret, settings.broker_webhook_previous_secret) if s]
    return [dev_broker_secret(keyring)]


def dev_broker_secret(keyring: Keyring) -> str:
    """Derived from the server key: stable across restarts and processes, never stored."""
    return hmac.new(keyring.server_key, b"dev-payments-webhook-secret", hashlib.sha256).hexdigest()


def _report(envelope: dict[str, Any]) -> PaymentReport:
    data = envelope.get("data")
    environment = envelope.get("environment")
    if not isinstance(data, dict) or environment not in ("test", "live"):
        raise InvalidRequest("the webhook needs data and an environment of test or live")
    payment_id = data.get("paymentId")
    if not isinstance(payment_id, str) or not 0 < len(payment_id) <= 300:
        raise InvalidRequest("data.paymentId is required")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    amount = data.get("amount")
    currency = data.get("currency")
    token = data.get("checkoutToken")
    hold_id = metadata.get("holdId") if metadata else None
    return PaymentReport(
        environment=environment,
        payment_id=payment_id,
        checkout_token=token if isinstance(token, str) else None,
        hold_id=hold_id if isinstance(hold_id, str) else None,
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=currency if isinstance(currency, str) and len(currency) == 3 else None,
    )


async def receive(
    db: Database, keyring: Keyring, settings: Settings, raw: bytes, headers: Mapping[str, str], now_ms: int
) -> Reply:
    """One delivery: refused unsigned; done once per delivery id; unknown types acknowledged."""
    delivery_id = headers.get(DELIVERY_HEADER)
    try:
        verify_signature(
            headers.get(SIGNATURE_HEADER), delivery_id, raw, broker_secrets(settings, keyring), now_ms // 1000
        )
        envelope = json.loads(raw)
        if not isinstance(envelope, dict):
            raise InvalidRequest("the webhook body must be a JSON object")
    except DomainError as exc:
        return Reply(exc.status, {"error": exc.code, "message": exc.message}, {})
    except ValueError:
        return Reply(400, {"error": "InvalidRequest", "message": "the webhook body is not JSON"}, {})
    assert delivery_id is not None
    event_type = envelope.get("type")
    if event_type not in HANDLED_TYPES:
        return Reply(200, {"status": "ignored", "type": str(event_type)[:100]}, {})
    try:
        report = _report(envelope)
    except DomainError as exc:
        return Reply(exc.status, {"error": exc.code, "message": exc.message}, {})

    async def work(session: AsyncSession) -> dict[str, Any]:
        if event_type == "payment.completed":
            outcome = await payment_completed(session, keyring, report, now_ms)
        elif event_type == "payment.refunded":
            reason = envelope["data"].get("reason")
            outcome = await payment_refunded(
                session, report, reason if isinstance(reason, str) else None, now_ms
            )
        else:
            outcome = await payment_failed(session, report, now_ms)
        return {"status": "processed", "outcome": outcome}

    digest = hashlib.sha256(raw).hexdigest()
    try:
        body, reused = await run_once_atomically(db, "atm-delivery", delivery_id, digest, now_ms, work)
    except IdempotencyKeyInFlight:  # claimed by an earlier version of the server, until its lease lapses
        return Reply(
            503,
            {"error": "DeliveryInFlight", "message": "this delivery is being processed"},
            {"retry-after": "1"},
        )
    except IdempotencyKeyReused:
        return Reply(
            409, {"error": "DeliveryIdReused", "message": "this delivery id came with another body"}, {}
        )
    return Reply(200, {**body, "duplicate": True} if reused else body, {})

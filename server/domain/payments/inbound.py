"""Receiving the payment broker's webhooks (``POST /webhooks/atm``): verify the signature over the raw
bytes, then handle each delivery id once, in one transaction with its dedupe record. The handling
locks the hold (or the tickets) it changes, so a duplicate delivered while the first is handled
waits for it and then answers its result."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database, Transaction
from server.domain.idempotency import run_once_atomically
from server.domain.issuance.list_keys import Keyring
from server.domain.payments.reports import COMPLETED, HANDLED_TYPES, REFUNDED, read_report
from server.domain.payments.service import payment_completed, payment_failed, payment_refunded
from server.domain.webhook_format import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from server.errors import DomainError, IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidRequest
from server.settings import Settings

# What the two headers may carry: printable ASCII (a delivery id fits its dedupe key's column).
_SIGNATURE_TEXT = re.compile(r"[\x20-\x7e]{1,2000}")
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,300}")


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


def _check_headers(headers: Mapping[str, str]) -> None:
    """Headers that are present but not printable ASCII, or too long, are malformed (400); missing
    ones are the signature check's to refuse (401)."""
    signature, delivery_id = headers.get(SIGNATURE_HEADER), headers.get(DELIVERY_HEADER)
    if signature and not _SIGNATURE_TEXT.fullmatch(signature):
        raise InvalidRequest(f"the {SIGNATURE_HEADER} header must be printable ASCII")
    if delivery_id and not _DELIVERY_ID.fullmatch(delivery_id):
        raise InvalidRequest(f"the {DELIVERY_HEADER} header must be 1 to 300 printable ASCII characters")


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidRequest("the webhook body is not JSON") from None


async def receive(
    db: Database, keyring: Keyring, settings: Settings, raw: bytes, headers: Mapping[str, str], now_ms: int
) -> Reply:
    """One delivery: refused unsigned; done once per delivery id; unknown types acknowledged."""
    delivery_id = headers.get(DELIVERY_HEADER)
    try:
        _check_headers(headers)
        verify_signature(
            headers.get(SIGNATURE_HEADER), delivery_id, raw, broker_secrets(settings, keyring), now_ms // 1000
        )
        envelope = _parse(raw)
        if not isinstance(envelope, dict):
            raise InvalidRequest("the webhook body must be a JSON object")
        event_type = envelope.get("type")
        if event_type not in HANDLED_TYPES:
            return Reply(200, {"status": "ignored", "type": str(event_type)[:100]}, {})
        report = read_report(event_type, envelope)
    except DomainError as exc:
        return Reply(exc.status, {"error": exc.code, "message": exc.message}, {})
    assert delivery_id is not None

    async def completed(unit: Transaction) -> dict[str, Any]:
        return {"status": "processed", "outcome": await payment_completed(unit, keyring, report, now_ms)}

    async def refunded_or_failed(session: AsyncSession) -> dict[str, Any]:
        if event_type == REFUNDED:
            outcome = await payment_refunded(session, report, now_ms)
        else:
            outcome = await payment_failed(session, report, now_ms)
        return {"status": "processed", "outcome": outcome}

    digest = hashlib.sha256(raw).hexdigest()
    once = partial(run_once_atomically, db, "atm-delivery", delivery_id, digest, now_ms)
    try:
        # A completion, the broker's busiest event, is written by the driver alone (ADR 0020); a
        # refund or a failure changes tickets and holds through the ORM.
        if event_type == COMPLETED:
            body, reused = await once(completed, db.transaction)
        else:
            body, reused = await once(refunded_or_failed, db.write)
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

"""The webhook wire format, the same in both directions (docs/webhooks.md): headers, the signed envelope and
the ``atm-signature`` scheme. Pure: no I/O."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import msgspec

from server.atproto.datetimes import format_datetime
from server.errors import WebhookSignatureInvalid

API_VERSION = "2026-07"
# ``data.$type`` of every webhook in both directions (broker → us, us → apps): ``<base>#<lowerCamel type>``.
BROKER_TYPE_BASE = "money.atmosphere.event.receive"
TOLERANCE_S = 300

SIGNATURE_HEADER = "atm-signature"
DELIVERY_HEADER = "atm-delivery-id"
EVENT_HEADER = "atm-event"
VERSION_HEADER = "atm-api-version"
ENVIRONMENT_HEADER = "atm-environment"


def signature(secret: str, timestamp: int, delivery_id: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``"<t>.<deliveryId>.<rawBody>"``."""
    message = f"{timestamp}.{delivery_id}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, delivery_id: str, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex>[,v1=<hex>…]``: one ``v1`` per secret (for rotation)."""
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, delivery_id, body)}" for s in secrets]
    return ",".join(parts)


def _parse_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureInvalid("malformed atm-signature header")
        if name == "t":
            if not value.isdigit() or timestamp is not None:
                raise WebhookSignatureInvalid("malformed atm-signature timestamp")
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value.lower())
    if timestamp is None or not candidates:
        raise WebhookSignatureInvalid("atm-signature needs t= and at least one v1=")
    return timestamp, candidates


def verify_signature(
    header: str | None,
    delivery_id: str | None,
    body: bytes,
    secrets: Iterable[str],
    now_s: int,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Refuse unless one ``v1`` matches one of ``secrets`` and ``t`` is within the tolerance.
    Checked on the raw bytes, before anything is parsed."""
    if not header or not delivery_id:
        raise WebhookSignatureInvalid("atm-signature and atm-delivery-id headers are required")
    timestamp, candidates = _parse_header(header)
    if abs(now_s - timestamp) > tolerance_s:
        raise WebhookSignatureInvalid("atm-signature timestamp is outside the tolerance")
    expected = [signature(s, timestamp, delivery_id, body) for s in secrets if s]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise WebhookSignatureInvalid("atm-signature does not match")


@functools.lru_cache(maxsize=64)
def camel_type(event_type: str) -> str:
    """``tickets.issued`` → ``ticketsIssued``; ``ticket.checked-in`` → ``ticketCheckedIn``."""
    words = event_type.replace("-", ".").split(".")
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])


def envelope(
    delivery_id: str, event_type: str, created_ms: int, environment: str, data: dict[str, Any], type_base: str
) -> bytes:
    """The webhook body: ``{id, type, createdAt, apiVersion, environment, data{…, $type}}``."""
    body = {
        "id": delivery_id,
        "type": event_type,
        "createdAt": format_datetime(created_ms),
        "apiVersion": API_VERSION,
        "environment": environment,
        "data": {**data, "$type": f"{type_base}#{camel_type(event_type)}"},
    }
    return msgspec.json.encode(body)  # compact, UTF-8 as is


def delivery_headers(delivery_id: str, event_type: str, environment: str) -> dict[str, str]:
    """What every delivery carries beside its body, however it is authenticated."""
    return {
        "content-type": "application/json",
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event_type,
        VERSION_HEADER: API_VERSION,
        ENVIRONMENT_HEADER: environment,
    }


def headers(delivery_id: str, event_type: str, environment: str, signature_value: str) -> dict[str, str]:
    return {**delivery_headers(delivery_id, event_type, environment), SIGNATURE_HEADER: signature_value}

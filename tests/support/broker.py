"""A stand-in for the payment broker that speaks its real wire format: signed webhook deliveries."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from server.domain.webhook_format import BROKER_TYPE_BASE, envelope, headers, signature_header

BROKER_SECRET = "whsec_broker_test_current"
BROKER_PREVIOUS_SECRET = "whsec_broker_test_previous"
_deliveries = itertools.count(1)
_payments = itertools.count(1)


def new_payment_id() -> str:
    return f"pay_test_{next(_payments):06d}"


@dataclass
class Delivery:
    delivery_id: str
    event_type: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeBroker:
    secrets: list[str] = field(default_factory=lambda: [BROKER_SECRET])

    def delivery(
        self,
        event_type: str,
        data: dict[str, Any],
        environment: str = "test",
        *,
        timestamp: int | None = None,
        delivery_id: str | None = None,
    ) -> Delivery:
        did = delivery_id or f"evt_test_{next(_deliveries):06d}"
        body = envelope(did, event_type, int(time.time() * 1000), environment, data, BROKER_TYPE_BASE)
        t = int(time.time()) if timestamp is None else timestamp
        return Delivery(
            did,
            event_type,
            body,
            headers(did, event_type, environment, signature_header(self.secrets, t, did, body)),
        )

    def paid(self, hold: dict[str, Any], payment_id: str | None = None, **extra: Any) -> Delivery:
        data = {
            "paymentId": payment_id or new_payment_id(),
            "paymentType": "ticket",
            "checkoutToken": hold["token"],
            "amount": hold["amountCents"],
            "currency": hold["currency"],
            "metadata": {"holdId": hold["holdId"]},
            **extra,
        }
        return self.delivery("payment.completed", data, hold.get("environment", "test"))

    def about(self, event_type: str, hold: dict[str, Any], payment_id: str, **extra: Any) -> Delivery:
        """Any ``payment.*`` event of ``payment_id``, naming ``hold`` by its checkout token."""
        data = {"paymentId": payment_id, "checkoutToken": hold["token"], **extra}
        return self.delivery(event_type, data, hold.get("environment", "test"))

    async def send(self, http: httpx.AsyncClient, base_url: str, delivery: Delivery) -> httpx.Response:
        return await http.post(f"{base_url}/webhooks/atm", content=delivery.body, headers=delivery.headers)

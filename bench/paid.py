"""Paid tickets for the workloads that need them: the payment broker's signed ``payment.completed``
webhook (the server is started with the broker secret below), bulk issuance through it, and the
issued tickets with their passes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench.xrpc import BenchApp, XrpcError
from server.domain.webhook_format import BROKER_TYPE_BASE, envelope, headers, signature_header

BROKER_SECRET = "whsec_bench_broker"
ENVIRONMENT = "test"
_deliveries = itertools.count(1)
_payments = itertools.count(1)


@contextlib.contextmanager
def server_environment(**extra: str) -> Iterator[None]:
    """Servers deployed inside accept the broker's webhooks (and get ``extra`` settings, as
    ``TICKETS_*`` variables); the environment is restored afterwards."""
    values = {"TICKETS_BROKER_WEBHOOK_SECRET": BROKER_SECRET} | {
        f"TICKETS_{name.upper()}": value for name, value in extra.items()
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def new_payment_id() -> str:
    return f"pay_bench_{os.getpid()}_{next(_payments):07d}"


def payment_completed(hold: dict[str, Any], payment_id: str) -> tuple[bytes, dict[str, str]]:
    """The broker's signed ``payment.completed`` delivery for ``hold``: body and headers."""
    delivery_id = f"evt_bench_{os.getpid()}_{next(_deliveries):07d}"
    data = {
        "paymentId": payment_id,
        "paymentType": "ticket",
        "checkoutToken": hold["token"],
        "amount": hold["amountCents"],
        "currency": hold["currency"],
        "metadata": {"holdId": hold["holdId"]},
    }
    body = envelope(
        delivery_id, "payment.completed", int(time.time() * 1000), ENVIRONMENT, data, BROKER_TYPE_BASE
    )
    signature = signature_header([BROKER_SECRET], int(time.time()), delivery_id, body)
    return body, headers(delivery_id, "payment.completed", ENVIRONMENT, signature)


async def pay(client: httpx.AsyncClient, hold: dict[str, Any], payment_id: str) -> httpx.Response:
    """POST the payment webhook for ``hold`` (``/webhooks/atm``)."""
    body, sent_headers = payment_completed(hold, payment_id)
    return await client.post("/webhooks/atm", content=body, headers=sent_headers)


def hold_body(tier_id: str, quantity: int) -> dict[str, Any]:
    return {
        "items": [{"tierId": tier_id, "quantity": quantity}],
        "attendees": [{"name": f"Guest {n}"} for n in range(quantity)],
    }


async def issue(
    app: BenchApp, client: httpx.AsyncClient, tier_id: str, tickets: int, concurrency: int = 8
) -> list[dict[str, Any]]:
    """``tickets`` paid tickets of ``tier_id`` (holds of up to 10, paid by webhook), each as
    ``listBuyerTickets`` shows it (with its ``passToken``). Set-up, not timed."""
    sizes = [min(10, tickets - start) for start in range(0, tickets, 10)]
    queue = iter(sizes)
    issued: list[dict[str, Any]] = []

    async def worker() -> None:
        for quantity in queue:
            hold = await app.ok(
                client, app.procedure(client, "createTicketHold", hold_body(tier_id, quantity))
            )
            payment_id = new_payment_id()
            response = await pay(client, hold, payment_id)
            if response.status_code != 200:
                raise XrpcError(f"payment webhook: HTTP {response.status_code} {response.text}")
            query = app.query(client, "listBuyerTickets", {"paymentId": payment_id})
            issued.extend((await app.ok(client, query))["tickets"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if len(issued) != tickets:
        raise XrpcError(f"{len(issued)} tickets issued of {tickets}")
    return issued


def size_of(document: dict[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode())

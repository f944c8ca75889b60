"""The built-in dev payments: what a real broker would send when a buyer pays, signed with the broker
secret and handed to the very same receiving code as ``POST /webhooks/atm``."""

from __future__ import annotations

import secrets

from server.db.engine import Database
from server.db.models import Hold
from server.domain.common import new_id
from server.domain.issuance.keys import Keyring
from server.domain.payments.inbound import Reply, broker_secrets, receive
from server.domain.webhook_format import BROKER_TYPE_BASE, envelope, headers, signature_header
from server.settings import Settings


async def pay(db: Database, keyring: Keyring, settings: Settings, hold: Hold, now_ms: int) -> Reply:
    """Pay ``hold`` in full, as the broker's ``payment.completed`` would report it."""
    delivery_id = new_id("evt", now_ms)
    data = {
        "paymentId": f"pay_dev_{secrets.token_hex(12)}",
        "paymentType": "ticket",
        "checkoutToken": hold.token,
        "amount": hold.amount,
        "currency": hold.currency,
        "metadata": {"holdId": hold.id},
    }
    raw = envelope(delivery_id, "payment.completed", now_ms, hold.environment, data, BROKER_TYPE_BASE)
    signed = signature_header(broker_secrets(settings, keyring), now_ms // 1000, delivery_id, raw)
    sent = headers(delivery_id, "payment.completed", hold.environment, signed)
    return await receive(db, keyring, settings, raw, sent, now_ms)

"""The payment-side methods apps call on the same base URL as the ticketing ones (the SDK has one
``brokerUrl``). The built-in dev payments answer them here; with a real broker configured
(``TICKETS_BROKER_URL``) they are the broker's, and every one answers ``PaymentMethodAtBroker``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.atproto.datetimes import format_datetime
from server.db.models import App
from server.domain.caller import Caller
from server.domain.common import compact
from server.domain.payments import checkout as payments
from server.xrpc.auth import authenticate
from server.xrpc.framework import Call, Services, xrpc_method
from server.xrpc.transport import PaymentMethodAtBroker

PAYMENT_STATUS = "network.attested.payment.status"
PAYOUT_STATUS = "money.atmosphere.actor.getPayoutStatus"
RECIPIENT_APPROVAL = "money.atmosphere.app.requestRecipientApproval"
APP_CONFIG = "money.atmosphere.app.getConfig"


async def dev_payments_auth(
    services: Services, nsid: str, authorization: str | None, params: dict[str, Any]
) -> Caller:
    """A registered app, as for every method, while the dev payments stand in for the broker. A
    checkout token names its environment: a status poll without one is in the token's."""
    broker = services.settings.broker_url
    if broker:
        raise PaymentMethodAtBroker(f"{nsid} is answered by the payment broker at {broker}, not here")
    if "environment" not in params and "token" in params:
        async with services.db.read() as session:
            environment = await payments.token_environment(session, params["token"])
        if environment is not None:
            params = {**params, "environment": environment}
    return await authenticate(services, nsid, authorization, params)


def dev_payments_url(call: Call) -> str:
    """Where an organizer would manage payments: the dev payments have nothing to set up."""
    return f"{call.settings.public_url.rstrip('/')}/dev-payments"


@xrpc_method(PAYMENT_STATUS, auth=dev_payments_auth)
async def payment_status(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    async with call.db.read() as session:
        found = await payments.checkout(session, call.caller, params["token"], call.now_ms)
    answer: dict[str, Any] = {"token": params["token"], "status": found.status}
    payment, hold = found.payment, found.hold
    if payment is not None:
        answer["payment"] = compact(
            {
                "id": payment.payment_id,
                "amount": payment.amount,
                "currency": payment.currency,
                "status": payment.status,
                "paymentType": "ticket",
                "payerDid": hold.buyer_did,
                "recipientDid": found.recipient_did,
                "appDid": call.caller.app_did,
                "createdAt": format_datetime(payment.created_ms),
            }
        )
    return answer


@xrpc_method(PAYOUT_STATUS, auth=dev_payments_auth)
async def payout_status(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Every organizer is payable with the dev payments: no money moves."""
    return {"actor": params["actor"], "payable": True, "status": "ready"}


@xrpc_method(RECIPIENT_APPROVAL, auth=dev_payments_auth)
async def request_recipient_approval(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The dev payments approve at once (a real broker asks the organizer)."""
    return {
        "id": payments.approval_id(call.caller, params["recipientDid"]),
        "status": "approved",
        "dashboardUrl": dev_payments_url(call),
        "onboardingUrl": dev_payments_url(call),
        "paymentTypes": params["paymentTypes"],
        "feeShareBps": params.get("feeShareBps", 0),
        "needsPaymentSetup": False,
    }


@xrpc_method(APP_CONFIG, auth=dev_payments_auth)
async def app_config(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The calling app's registration in the call's environment, without its webhook secret."""
    async with call.db.read() as session:
        app = (await session.scalars(select(App).where(App.id == call.caller.app_id))).one()
    configured = app.webhook_url is not None if app.delivery == "webhook" else True
    return {
        "appDid": app.did,
        "environment": app.environment,
        "status": app.status,
        "webhook": compact(
            {
                "configured": configured,
                "url": app.webhook_url if app.delivery == "webhook" else None,
                "paused": False,
                "delivery": app.delivery,
            }
        ),
        "appConfig": {
            "ticketFee": {"bps": app.fee_bps, "flatAmount": app.fee_flat, "passToBuyer": app.fee_to_buyer},
            "modules": {"tickets": app.status == "active"},
        },
    }

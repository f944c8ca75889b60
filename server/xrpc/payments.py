"""The payment-side methods apps call on the same base URL as the ticketing ones (the SDK has one
``brokerUrl``). The built-in dev payments answer them here; with a real broker configured
(``TICKETS_BROKER_URL``) they are the broker's, and every one answers ``PaymentMethodAtBroker``."""

from __future__ import annotations

from typing import Any

from server.domain.caller import Caller
from server.domain.payments import checkout as payments
from server.xrpc.auth import authenticate
from server.xrpc.framework import Call, Services, xrpc_method
from server.xrpc.transport import PaymentMethodAtBroker
from server.xrpc.views import app_config_view, payment_status_view, recipient_approval_view

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
        environment = await payments.token_environment(services.db, params["token"])
        if environment is not None:
            params = {**params, "environment": environment}
    return await authenticate(services, nsid, authorization, params)


def dev_payments_url(call: Call) -> str:
    """Where an organizer would manage payments: the dev payments have nothing to set up."""
    return f"{call.settings.public_url.rstrip('/')}/dev-payments"


@xrpc_method(PAYMENT_STATUS, auth=dev_payments_auth)
async def payment_status(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    found = await payments.checkout(call.db, call.caller, params["token"], call.now_ms)
    return payment_status_view(params["token"], found, call.caller.app_did)


@xrpc_method(PAYOUT_STATUS, auth=dev_payments_auth)
async def payout_status(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """Every organizer is payable with the dev payments: no money moves."""
    return {"actor": params["actor"], "payable": True, "status": "ready"}


@xrpc_method(RECIPIENT_APPROVAL, auth=dev_payments_auth)
async def request_recipient_approval(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The dev payments approve at once (a real broker asks the organizer)."""
    return recipient_approval_view(
        payments.approval_id(call.caller, params["recipientDid"]),
        dev_payments_url(call),
        params["paymentTypes"],
        params.get("feeShareBps", 0),
    )


@xrpc_method(APP_CONFIG, auth=dev_payments_auth)
async def app_config(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The calling app's registration in the call's environment, without its webhook secret."""
    return app_config_view(await payments.caller_registration(call.db, call.caller))

"""The guard on every method that takes an offer code: it limits guessing codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from server.domain import ratelimit
from server.domain.offers import limits
from server.domain.offers.service import buyer_key
from server.errors import InvalidOfferCode
from server.settings import Settings
from server.xrpc.framework import Call

T = TypeVar("T")


def code_limits(settings: Settings) -> limits.CodeLimits:
    return limits.CodeLimits(
        window_ms=settings.offer_code_window_seconds * 1000,
        per_app=settings.offer_code_failures_per_app,
        per_buyer=settings.offer_code_failures_per_buyer,
    )


async def guarding_codes(call: Call, params: dict[str, Any], work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; when the call carries an offer code, first refuse a caller (app, and buyer when
    named) that has sent too many wrong codes lately, and count a wrong one afterwards."""
    if params.get("offerCode") is None:
        return await work()
    policy = code_limits(call.settings)
    buyer = buyer_key(params.get("buyerDid"), params.get("customerEmail"))
    return await ratelimit.guarding(
        call.db,
        limits.code_scopes(call.caller, buyer, policy),
        ratelimit.Window(call.now_ms, policy.window_ms),
        "too many wrong offer codes",
        InvalidOfferCode,
        work,
    )

"""Limits on guessing offer codes: wrong codes are counted per app and per buyer
(:mod:`server.domain.ratelimit`, shared by every server process); a scope that reached its limit is
refused, right or wrong code, until its sliding window has room again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from server.db.engine import Database
from server.domain.caller import Caller
from server.domain.ratelimit import guarding
from server.domain.ratewindows import Scope, Window
from server.errors import InvalidOfferCode

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CodeLimits:
    window_ms: int
    per_app: int
    per_buyer: int


def code_scopes(caller: Caller, buyer: str | None, limits: CodeLimits) -> list[Scope]:
    """Wrong codes count against the calling app, and against the buyer when the call names one."""
    scopes = [Scope(f"offer-code:{caller.app_id}", limits.per_app)]
    if buyer is not None:
        scopes.append(Scope(f"offer-code:{caller.app_id}:{buyer}", limits.per_buyer))
    return scopes


async def guarding_codes(
    db: Database,
    caller: Caller,
    code: str | None,
    buyer: str | None,
    limits: CodeLimits,
    now_ms: int,
    work: Callable[[], Awaitable[T]],
) -> T:
    """Run ``work``; when the call carries an offer ``code``, first refuse a caller (app, and
    ``buyer`` when named) that has sent too many wrong codes lately, and count a wrong one
    afterwards."""
    if code is None:
        return await work()
    return await guarding(
        db,
        code_scopes(caller, buyer, limits),
        Window(now_ms, limits.window_ms),
        "too many wrong offer codes",
        InvalidOfferCode,
        work,
    )

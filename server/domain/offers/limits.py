"""Limits on guessing offer codes: wrong codes are counted per app and per buyer
(:mod:`server.domain.ratelimit`, shared by every server process); a scope that reached its limit is
refused, right or wrong code, until its sliding window has room again."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.caller import Caller
from server.domain.ratewindows import Scope


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

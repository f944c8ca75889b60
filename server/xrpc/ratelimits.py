"""The rate limits of XRPC calls (:mod:`server.domain.ratelimit` counts them): every call per client
IP and method before it is authenticated, and per caller (app or desk) and method once it is,
applied in one place (:func:`server.xrpc.framework.dispatch`); and wrong enrollment codes per client
IP and in total. Client addresses are counted under a keyed hash, never stored as they are.

A method's calls are limited by the general limits (``TICKETS_RATE_LIMIT_PER_IP`` and
``TICKETS_RATE_LIMIT_PER_CALLER`` in ``TICKETS_RATE_LIMIT_WINDOW_SECONDS``) unless the method has
limits of its own, each in its own window: the operator's (``TICKETS_RATE_LIMIT_METHODS``), else the
built-in ones of :data:`METHOD_LIMITS`."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.domain.caller import Caller
from server.domain.ratelimit import take
from server.domain.ratewindows import Scope, Window
from server.settings import MethodRateLimits, RateLimit, Settings

if TYPE_CHECKING:
    from server.db.engine import Database

# A desk's manual search, and the check-in of a guest it found, at a person's pace: a search answers
# guests' names, so whoever holds a stolen desk credential collects a guest list only slowly.
MANUAL_SEARCH = RateLimit(calls=30, window_seconds=300)
METHOD_LIMITS: dict[str, MethodRateLimits] = {
    # Anyone may call it, without a token: the public service's limit, per client address.
    "tickets.atmosphere.listPublicConfig": MethodRateLimits(per_ip=RateLimit(calls=30, window_seconds=60)),
    "tickets.atmosphere.searchTickets": MethodRateLimits(per_caller=MANUAL_SEARCH),
    "tickets.atmosphere.checkInSearchedTicket": MethodRateLimits(per_caller=MANUAL_SEARCH),
}
GENERAL = MethodRateLimits()


@dataclass(frozen=True, slots=True)
class MethodLimits:
    """The limits of one method's calls: per client IP, and per caller."""

    per_ip: RateLimit
    per_caller: RateLimit


def method_limits(settings: Settings, nsid: str) -> MethodLimits:
    """``nsid``'s limits: the operator's for the method, else its built-in ones, else the general
    ones; per client IP and per caller separately."""
    configured = settings.rate_limit_methods.get(nsid, GENERAL)
    built_in = METHOD_LIMITS.get(nsid, GENERAL)
    window = settings.rate_limit_window_seconds
    return MethodLimits(
        per_ip=configured.per_ip
        or built_in.per_ip
        or RateLimit(calls=settings.rate_limit_per_ip, window_seconds=window),
        per_caller=configured.per_caller
        or built_in.per_caller
        or RateLimit(calls=settings.rate_limit_per_caller, window_seconds=window),
    )


def check_methods(settings: Settings, served: Collection[str]) -> None:
    """Refuse limits configured for a method this service does not serve: a misspelt name would
    limit nothing."""
    unknown = sorted(set(settings.rate_limit_methods) - set(served))
    if unknown:
        raise ValueError(f"TICKETS_RATE_LIMIT_METHODS names methods not served here: {', '.join(unknown)}")


def longest_window_seconds(settings: Settings) -> int:
    """The longest window any limit counts in (older counts can be forgotten)."""
    methods = [*METHOD_LIMITS.values(), *settings.rate_limit_methods.values()]
    windows = [limit.window_seconds for m in methods for limit in (m.per_ip, m.per_caller) if limit]
    return max(
        settings.rate_limit_window_seconds,
        settings.offer_code_window_seconds,
        settings.enroll_window_seconds,
        *windows,
    )


def client_ip(peer: str | None, forwarded: str | None, trusted_proxies: int) -> str:
    """The caller's address: the socket peer; behind ``trusted_proxies`` reverse proxies, the
    address the outermost of them saw (that many entries from the right of the forwarding header;
    entries further left are whatever the client sent). A request whose header is too short did not
    come through them all: its peer is all that is known."""
    if trusted_proxies:
        hops = [hop.strip() for hop in (forwarded or "").split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return peer or "unknown"


def address_key(server_key: bytes, address: str) -> str:
    """The scope name of a client address: a keyed hash, so the table holds no addresses."""
    return hmac.new(server_key, f"client-ip:{address}".encode(), hashlib.sha256).hexdigest()[:32]


async def _take(db: Database, key: str, limit: RateLimit, now_ms: int, what: str) -> None:
    window = Window(now_ms, limit.window_seconds * 1000)
    await take(db, [Scope(key, limit.calls)], window, what)


async def limit_address(db: Database, settings: Settings, address: str, nsid: str, now_ms: int) -> None:
    """Count a call of ``nsid`` from the client ``address`` (its key); 429 beyond the limit."""
    limit = method_limits(settings, nsid).per_ip
    await _take(db, f"ip:{address}:{nsid}", limit, now_ms, f"too many calls of {nsid} from this address")


async def limit_caller(db: Database, settings: Settings, caller: Caller, nsid: str, now_ms: int) -> None:
    """Count a call of ``nsid`` by the authenticated app or desk; 429 beyond the limit. Callers
    without an identity (an enrollment code, public methods) are limited by address alone."""
    who = caller.device_id or caller.app_id
    if not who:
        return
    limit = method_limits(settings, nsid).per_caller
    await _take(db, f"caller:{who}:{nsid}", limit, now_ms, f"too many calls of {nsid} by this caller")


def enrollment_scopes(settings: Settings, address: str) -> list[Scope]:
    """Wrong enrollment codes count against the client address and against everyone together."""
    return [
        Scope(f"enroll:{address}", settings.enroll_failures_per_ip),
        Scope("enroll:*", settings.enroll_failures_total),
    ]

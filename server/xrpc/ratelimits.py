"""The rate limits of XRPC calls (:mod:`server.domain.ratelimit` counts them): every call per client
IP and method before it is authenticated, and per caller (app or desk) and method once it is,
applied in one place (:func:`server.xrpc.framework.dispatch`); and wrong enrollment codes per client
IP and in total. Client addresses are counted under a keyed hash, never stored as they are."""

from __future__ import annotations

import hashlib
import hmac

from server.db.engine import Database
from server.domain.caller import Caller
from server.domain.ratelimit import Scope, Window, take
from server.settings import Settings


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


def _window(settings: Settings, now_ms: int) -> Window:
    return Window(now_ms, settings.rate_limit_window_seconds * 1000)


async def limit_address(db: Database, settings: Settings, address: str, nsid: str, now_ms: int) -> None:
    """Count a call of ``nsid`` from the client ``address`` (its key); 429 beyond the limit."""
    scope = Scope(f"ip:{address}:{nsid}", settings.rate_limit_per_ip)
    await take(db, [scope], _window(settings, now_ms), f"too many calls of {nsid} from this address")


async def limit_caller(db: Database, settings: Settings, caller: Caller, nsid: str, now_ms: int) -> None:
    """Count a call of ``nsid`` by the authenticated app or desk; 429 beyond the limit. Callers
    without an identity (an enrollment code) are limited by address alone."""
    who = caller.device_id or caller.app_id
    if not who:
        return
    scope = Scope(f"caller:{who}:{nsid}", settings.rate_limit_per_caller)
    await take(db, [scope], _window(settings, now_ms), f"too many calls of {nsid} by this caller")


def enrollment_scopes(settings: Settings, address: str) -> list[Scope]:
    """Wrong enrollment codes count against the client address and against everyone together."""
    return [
        Scope(f"enroll:{address}", settings.enroll_failures_per_ip),
        Scope("enroll:*", settings.enroll_failures_total),
    ]

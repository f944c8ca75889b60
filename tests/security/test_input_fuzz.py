"""Attack: hostile input anywhere on the HTTP surface. Every method's lexicon input, generated from
the lexicon files (valid-ish, then bent: fields dropped or retyped, NUL, integers past any column,
deep nesting, odd text) and raw mutations of the bytes (bodies, query strings, headers) — plus
the broker webhook, pass pages and checkout pages — sent over real HTTP with real credentials, on
SQLite and PostgreSQL. No answer may be a 5xx; every XRPC answer is JSON and every refusal is
``{error, message}``; a NUL or a body nested too deep is refused with 400 before anything else;
a refusal writes nothing (row counts of every table before and after).

The run cannot pass by accident: it must reach every method, get successful answers from most of
them and apply every mutation; and the same run against a server whose nesting limit is lifted
fails (msgspec's recursion limit, a known 500)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import Harness, start_harness
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support.catalog import ORGANIZER
from support.databases import sqlite_copy
from support.hostile import (
    DEPTHS,
    HOSTILE_TEXT,
    RAW_MUTATIONS,
    VALUE_MUTATIONS,
    RawRequest,
    RowCounts,
    Seeded,
    encode_body,
    encode_query,
    mutated,
    raw_mutated,
    seed,
    send,
    served_methods,
    xrpc_target,
)
from support.server import LEXICONS

from server.xrpc.auth import organizer_auth
from server.xrpc.discovery import public_auth
from server.xrpc.framework import METHODS
from server.xrpc.principals import app_or_device_auth, code_auth, device_auth

# Examples of each kind of request per method: left as generated, or bent in one layer (the value,
# the raw bytes, the caller's token) by one kind of mutation at a time.
EXAMPLES = {"clean": 4, "bent": 2}
# Background work would change row counts between two reads: it runs once at start-up, then waits.
QUIET = {"sweep_interval_seconds": 3600.0, "publish_poll_interval_seconds": 3600.0,
         "webhook_poll_interval_seconds": 3600.0}  # fmt: skip
JWT_MUTATIONS = ("nul-jti", "nul-iss", "nul-lxm", "non-ascii-claim", "huge-exp", "deep-claim")
# A body nested too deep at each depth: just past the limit, well past it, and past msgspec's own.
VALUE_KINDS = tuple(
    f"value:{k}" for m in VALUE_MUTATIONS for k in ([f"{m}@{d}" for d in DEPTHS] if m == "deep" else [m])
)
RAW_KINDS = tuple(f"raw:{k}" for k in RAW_MUTATIONS)
JWT_KINDS = tuple(f"jwt:{k}" for k in JWT_MUTATIONS)
OTHER_ROUTES = ("/webhooks/atm", "/passes", "/checkout")
WEBHOOK_BODIES = (
    b"{}",
    b'{"type": "payment.completed", "data": {"amount": 1e999}}',
    b"[" * 10_000,
    b'{"id": "\\u0000"}',
)
# Methods a generated call cannot be sure to get right: an enrollment code serves once (the pool's
# other codes are wrong), and a free claim needs the buyer's own single-use assertion, which only the
# buyer's key makes.
NEVER_TWICE = frozenset({"tickets.atmosphere.enrollDevice", "tickets.atmosphere.claimFreeTicket"})
# Methods whose rows the seed does not make yet (a conflict between two desks, a lifecycle delivery,
# a spare desk to revoke, an order with an e-mail address): fuzzed like every method, but a clean
# call answers "not found" (or "no address"), never 200.
UNSEEDED = frozenset(
    {
        "tickets.atmosphere.resolveConflict",
        "tickets.atmosphere.redriveWebhookDelivery",
        "tickets.atmosphere.revokeDevice",
        "tickets.atmosphere.resendTicketEmail",
    }
)


@dataclass
class Tally:
    """What the run did, to show that it did enough."""

    succeeded: set[str] = field(default_factory=set)  # methods that answered 200
    refused: Counter[str] = field(default_factory=Counter)  # refusals per method or route
    kinds: dict[str, set[str]] = field(default_factory=dict)  # the kinds of request each target got


def takes_jwt(nsid: str) -> bool:
    """Whether the caller of ``nsid`` signs a service-auth JWT (an app, or an organizer)."""
    return METHODS[nsid].authenticator not in (code_auth, device_auth, public_auth)


def kinds_of(target: str) -> tuple[str, ...]:
    """Every kind of request ``target`` is sent: by construction, each method gets each of them."""
    if target in OTHER_ROUTES:
        return ("route",)
    return ("clean", *VALUE_KINDS, *RAW_KINDS, *(JWT_KINDS if takes_jwt(target) else ()))


def _token(h: Harness, nsid: str, kind: str) -> str:
    """The caller's token for ``nsid``: the organizer's for the organizer methods, else the app's."""
    identity = h.identity(ORGANIZER) if METHODS[nsid].authenticator is organizer_auth else h.app.identity
    claims: dict[str, dict[str, Any]] = {
        "none": {},
        "nul-jti": {"jti": "j\x00ti"},
        "nul-iss": {"iss": identity.did + "\x00"},
        "nul-lxm": {"lxm": nsid + "\x00"},
        "non-ascii-claim": {"jti": "caf\u00e9", "iss": identity.did + "\u00e9"},
        "huge-exp": {"exp": 2**64},
        "deep-claim": {"x": json.loads("[" * 500 + "]" * 500)},
    }
    return identity.token(nsid, extra_claims=claims[kind])


def _headers(h: Harness, seeded: Seeded, nsid: str, jwt: str, use_device: bool) -> list[tuple[bytes, bytes]]:
    auth = METHODS[nsid].authenticator
    if auth in (code_auth, public_auth):
        return []
    if auth is device_auth or (auth is app_or_device_auth and use_device and jwt == "none"):
        return [(b"authorization", f"Bearer {seeded.device_credential}".encode())]
    return [(b"authorization", f"Bearer {_token(h, nsid, jwt)}".encode())]


def xrpc_request(data: st.DataObject, h: Harness, seeded: Seeded, nsid: str, kind: str) -> RawRequest:
    """A request to ``nsid`` of the given kind: as generated, or bent in its input value, its
    bytes or its token."""
    method = LEXICONS.method(nsid)
    assert method is not None
    layer, _, mutation = kind.partition(":")
    value = data.draw(seeded.values(nsid).method_input(nsid), label="input")
    name, _, deep = mutation.partition("@")
    if layer == "value":
        value = data.draw(mutated(value, name), label="mutated")
    depth = int(deep) if deep else data.draw(st.sampled_from(DEPTHS), label="depth")
    jwt = mutation if layer == "jwt" else "none"
    headers = _headers(h, seeded, nsid, jwt, data.draw(st.booleans(), label="desk"))
    if method.kind == "query":
        request = RawRequest("GET", xrpc_target(nsid, encode_query(value, depth)), headers)
    else:
        body = encode_body(value, data.draw(st.booleans(), label="ascii"), depth)
        request = RawRequest(
            "POST", xrpc_target(nsid), [(b"content-type", b"application/json"), *headers], body
        )
    return data.draw(raw_mutated(request, mutation), label="bent") if layer == "raw" else request


def other_request(data: st.DataObject, seeded: Seeded, route: str) -> RawRequest:
    hostile = data.draw(st.sampled_from(HOSTILE_TEXT), label="text").encode("utf-8", "surrogatepass")
    if route == "/webhooks/atm":
        body = data.draw(st.sampled_from([*WEBHOOK_BODIES, hostile]), label="webhook")
        return RawRequest("POST", route.encode(), [(b"content-type", b"application/json")], body)
    if route == "/passes":
        path, _, key = seeded.pass_path.partition("?k=")
        bent = data.draw(st.sampled_from([key, key[:-1], "", key + "\x00"]), label="key")
        query = bent.encode("utf-8", "surrogatepass") + hostile
        return RawRequest("GET", path.encode() + b"?k=" + _percent(query))
    token = data.draw(st.sampled_from([seeded.hold_token, "nope"]), label="token").encode() + hostile
    return RawRequest("GET", b"/checkout/" + _percent(token))


def _percent(raw: bytes) -> bytes:
    return b"".join(bytes([c]) if chr(c).isalnum() or c in b"-_.~=" else b"%%%02X" % c for c in raw)


def check(request: RawRequest, mutation: str, response: Any, xrpc: bool) -> None:
    """No 5xx; JSON ``{error, message}`` for every XRPC refusal; 400 for a NUL or deep nesting."""
    if response is None or (mutation == "raw:header" and not response.is_json and response.status == 400):
        # The HTTP server itself refused bytes that are not HTTP (a control character in a header).
        assert mutation == "raw:header", request
        return
    assert response.status < 500, (request, response.status, response.body[:300])
    a_file = response.status == 200 and "content-disposition" in response.headers  # exportCheckInList
    if (xrpc and not a_file) or response.is_json:
        assert response.is_json, (request, response.status, response.body[:300])
        answer = json.loads(response.body)
        if response.status != 200:
            assert isinstance(answer.get("error"), str) and isinstance(answer.get("message"), str), answer
    deep = b"[" * 33 in request.body or b'{"a":' * 33 in request.body
    if xrpc and (deep or b"\\u0000" in request.body or b"%00" in request.target):
        assert response.status == 400, (request, response.status, response.body[:300])


def run_fuzz(
    database_url: str, folder: Path, *, examples: dict[str, int], shrink: bool = True, **overrides: Any
) -> Tally:
    """Every kind of request to every target (each method and the other routes), ``examples`` of
    each (``clean`` ones, and ``bent`` ones of every other kind), target by target."""

    async def prepare() -> tuple[Harness, Seeded]:
        harness = await start_harness(database_url, folder, **QUIET, **overrides)
        seeded = await seed(harness.app, database_url, harness.server.url)
        await harness.app.aclose()
        return harness, seeded

    h, seeded = asyncio.run(prepare())
    counts, tally = RowCounts(database_url), Tally()
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate)

    def attempt(target: str, kind: str, data: st.DataObject) -> None:
        xrpc = target not in OTHER_ROUTES
        request = xrpc_request(data, h, seeded, target, kind) if xrpc else other_request(data, seeded, target)
        tally.kinds.setdefault(target, set()).add(kind)
        before = counts()
        response = send(h.server.port, request)
        check(request, kind, response, xrpc)
        if response is None or response.status < 400:
            if xrpc and response is not None:
                tally.succeeded.add(target)
                if response.is_json:
                    LEXICONS.validate_output(target, json.loads(response.body))
            return
        tally.refused[target] += 1
        if target != "/webhooks/atm":  # the broker's parser and its receipts are not ours to judge
            assert counts() == before, (request, response.status, response.body[:300])

    def fuzz(target: str, kind: str) -> None:
        @settings(max_examples=examples["clean" if kind in ("clean", "route") else "bent"], deadline=None,
                  derandomize=True, database=None, phases=phases, report_multiple_bugs=False,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(data=st.data())
        def one_kind(data: st.DataObject) -> None:
            attempt(target, kind, data)

        one_kind()

    try:
        # Requests as generated first, to every target, so that no bent request's write (a hold
        # released, a ticket voided) comes before them.
        for target in (*served_methods(), *OTHER_ROUTES):
            fuzz(target, kinds_of(target)[0])
        for target in (*served_methods(), *OTHER_ROUTES):
            for kind in kinds_of(target)[1:]:
                fuzz(target, kind)
    finally:
        counts.close()
        h.server.stop()
    return tally


def test_input_no_hostile_input_gets_a_server_error_or_writes(database_url: str, tmp_path: Path) -> None:
    tally = run_fuzz(database_url, tmp_path, examples=EXAMPLES)
    methods = set(served_methods())
    assert {n for n in METHODS if LEXICONS.method(n)} == methods  # every registered method …
    assert tally.kinds == {t: set(kinds_of(t)) for t in (*methods, *OTHER_ROUTES)}  # … got every kind
    assert set(tally.refused) >= methods, sorted(methods - set(tally.refused))  # each refused something
    missed = methods - tally.succeeded - NEVER_TWICE - UNSEEDED  # valid-ish input reaches the handlers
    assert not missed, sorted(missed)


def test_input_the_fuzz_finds_a_known_server_error(tmp_path: Path, sqlite_template_file: Path) -> None:
    """Negative control: without the nesting limit, msgspec's recursion limit answers 500 (a body
    nested 10,000 deep, which every procedure is sent)."""
    url = sqlite_copy(sqlite_template_file, tmp_path)
    with pytest.raises(AssertionError, match="500"):
        run_fuzz(url, tmp_path, examples={"clean": 1, "bent": 1}, shrink=False, max_json_depth=1_000_000)

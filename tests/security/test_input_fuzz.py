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
from support.databases import sqlite_copy
from support.hostile import (
    DEPTHS,
    HOSTILE_TEXT,
    RAW_MUTATIONS,
    VALUE_MUTATIONS,
    LexiconValues,
    RawRequest,
    RowCounts,
    Seeded,
    encode_body,
    encode_query,
    mutated,
    our_methods,
    raw_mutated,
    seed,
    send,
    xrpc_target,
)
from support.server import LEXICONS

from server.xrpc.framework import METHODS
from server.xrpc.principals import app_or_device_auth, code_auth, device_auth

EXAMPLES = 600
# Background work would change row counts between two reads: it runs once at start-up, then waits.
QUIET = {"sweep_interval_seconds": 3600.0, "publish_poll_interval_seconds": 3600.0,
         "webhook_poll_interval_seconds": 3600.0}  # fmt: skip
# One layer of a request is bent at a time; some requests are left as generated.
LAYERS = ("clean", "clean", "clean", "value", "value", "value", "raw", "raw", "jwt", "jwt")
JWT_MUTATIONS = ("nul-jti", "nul-iss", "nul-lxm", "non-ascii-claim", "huge-exp", "deep-claim")
MUTATIONS = {"value": VALUE_MUTATIONS, "jwt": JWT_MUTATIONS}
OTHER_ROUTES = ("/webhooks/atm", "/passes", "/checkout")
WEBHOOK_BODIES = (
    b"{}",
    b'{"type": "payment.completed", "data": {"amount": 1e999}}',
    b"[" * 10_000,
    b'{"id": "\\u0000"}',
)


@dataclass
class Tally:
    """What the run did, to show that it did enough."""

    succeeded: set[str] = field(default_factory=set)  # methods that answered 200
    refused: Counter[str] = field(default_factory=Counter)  # refusals per method or route
    mutations: Counter[str] = field(default_factory=Counter)


def _token(h: Harness, nsid: str, kind: str) -> str:
    identity = h.app.identity
    claims: dict[str, Any] = {
        "none": {},
        "nul-jti": {"jti": "j\x00ti"},
        "nul-iss": {"iss": identity.did + "\x00"},
        "nul-lxm": {"lxm": nsid + "\x00"},
        "non-ascii-claim": {"jti": "caf\u00e9", "iss": identity.did + "\u00e9"},
        "huge-exp": {"exp": 2**64},
        "deep-claim": {"x": json.loads("[" * 500 + "]" * 500)},
    }[kind]
    return identity.token(nsid, extra_claims=claims)


def _headers(h: Harness, seeded: Seeded, nsid: str, jwt: str, use_device: bool) -> list[tuple[bytes, bytes]]:
    auth = METHODS[nsid].authenticator
    if auth is code_auth:
        return []
    if auth is device_auth or (auth is app_or_device_auth and use_device):
        return [(b"authorization", f"Bearer {seeded.device_credential}".encode())]
    return [(b"authorization", f"Bearer {_token(h, nsid, jwt)}".encode())]


def xrpc_request(
    data: st.DataObject, h: Harness, seeded: Seeded, values: LexiconValues, nsid: str, layer: str
) -> tuple[str, RawRequest]:
    """A request to ``nsid``, mutated in ``layer`` (its input value or its token); answers the
    mutation's name too."""
    method = LEXICONS.method(nsid)
    assert method is not None
    value = data.draw(values.method_input(nsid), label="input")
    mutation = (
        "clean" if layer in ("clean", "raw") else data.draw(st.sampled_from(MUTATIONS[layer]), label="kind")
    )
    if layer == "value":
        value = data.draw(mutated(value, mutation), label="mutated")
    jwt = mutation if layer == "jwt" else "none"
    depth = data.draw(st.sampled_from(DEPTHS), label="depth")
    headers = _headers(h, seeded, nsid, jwt, data.draw(st.booleans(), label="desk"))
    mutation = f"jwt:{jwt}" if layer == "jwt" else mutation
    if method.kind == "query":
        return mutation, RawRequest("GET", xrpc_target(nsid, encode_query(value, depth)), headers)
    body = encode_body(value, data.draw(st.booleans(), label="ascii"), depth)
    headers = [(b"content-type", b"application/json"), *headers]
    return mutation, RawRequest("POST", xrpc_target(nsid), headers, body)


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
    database_url: str, folder: Path, *, examples: int, shrink: bool = True, **overrides: Any
) -> Tally:
    async def prepare() -> tuple[Harness, Seeded]:
        harness = await start_harness(database_url, folder, **QUIET, **overrides)
        seeded = await seed(harness.app, database_url, harness.server.url)
        await harness.app.aclose()
        return harness, seeded

    h, seeded = asyncio.run(prepare())
    values, counts, tally = LexiconValues(seeded.pool), RowCounts(database_url), Tally()
    methods = [m for m in our_methods() if m in METHODS]
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.explicit, Phase.generate)
    try:

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None, phases=phases,
                  report_multiple_bugs=False, suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(data=st.data())
        def fuzz(data: st.DataObject) -> None:
            target = data.draw(st.sampled_from([*methods, *OTHER_ROUTES]), label="target")
            layer = data.draw(st.sampled_from(LAYERS), label="layer")
            xrpc = target not in OTHER_ROUTES
            mutation, request = (
                xrpc_request(data, h, seeded, values, target, layer)
                if xrpc
                else ("route", other_request(data, seeded, target))
            )
            if layer == "raw":
                kind = data.draw(st.sampled_from(RAW_MUTATIONS), label="raw")
                request, mutation = data.draw(raw_mutated(request, kind), label="bent"), f"raw:{kind}"
            tally.mutations[mutation] += 1
            before = counts()
            response = send(h.server.port, request)
            check(request, mutation, response, xrpc)
            if response is None or response.status < 400:
                if xrpc and response is not None:
                    tally.succeeded.add(target)
                    if response.is_json:
                        LEXICONS.validate_output(target, json.loads(response.body))
                return
            tally.refused[target] += 1
            if target != "/webhooks/atm":  # the broker's parser and its receipts are not ours to judge
                assert counts() == before, (request, response.status, response.body[:300])

        fuzz()
    finally:
        counts.close()
        h.server.stop()
    return tally


def test_input_no_hostile_input_gets_a_server_error_or_writes(database_url: str, tmp_path: Path) -> None:
    tally = run_fuzz(database_url, tmp_path, examples=EXAMPLES)
    methods = {m for m in our_methods() if m in METHODS}
    assert set(tally.refused) >= methods, sorted(methods - set(tally.refused))  # each refused something
    assert len(tally.succeeded) >= 20, sorted(tally.succeeded)  # valid-ish input reaches the handlers
    value_kinds = ("clean", "route", *VALUE_MUTATIONS, *(f"jwt:{k}" for k in JWT_MUTATIONS))
    for kind in (*value_kinds, *(f"raw:{k}" for k in RAW_MUTATIONS)):
        assert tally.mutations[kind] >= 3, (kind, tally.mutations)


def test_input_the_fuzz_finds_a_known_server_error(tmp_path: Path, sqlite_template_file: Path) -> None:
    """Negative control: without the nesting limit, msgspec's recursion limit answers 500."""
    url = sqlite_copy(sqlite_template_file, tmp_path)
    with pytest.raises(AssertionError, match="500"):
        run_fuzz(url, tmp_path, examples=200, shrink=False, max_json_depth=1_000_000)

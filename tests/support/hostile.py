"""Hostile input for the whole HTTP surface: Hypothesis strategies built from the lexicon files for
every method's parameters or input (valid-ish, then mutated), raw mutations of bodies, query strings
and headers, a raw HTTP/1.1 client that sends the bytes no polite client would, and the row counts
of every table, to show that a refusal wrote nothing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from sqlalchemy import text

from server.db.engine import Database
from server.db.models import Base
from server.domain import apps, consents
from server.domain.caller import Caller
from server.domain.devices import service as devices
from server.xrpc.framework import METHODS
from support.broker import FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event
from support.server import LEXICONS, NS, AppClient

BROKER = FakeBroker()
PARTNER_DID = "did:web:partner.hostile.example"

# Tables that change on a refusal by design: a refused call still spends its token, and wrong offer
# codes count towards the guessing limit.
BOOKKEEPING_TABLES = frozenset({"jwt_replays", "rate_counters"})

# Values that reach past the type of a field: the edges of 32- and 64-bit columns and beyond.
HUGE_INTEGERS = (2**31 - 1, 2**31, -(2**31) - 1, 2**53, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30)
HOSTILE_TEXT = (
    "caf\u00e9 \u20ac \U0001f600",
    "\u202eevil\u202c",
    "\x01\x1b[31m\x7f",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "x" * 5000,
    "\ufeff",
    "",
)
INVALID_UTF8 = (b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\x80", b"\x80", b"\xf4\x90\x80\x80")
DEEP = "\x00deep\x00"  # a placeholder replaced by nested arrays once the JSON is encoded
DEPTHS = (33, 200, 10_000)

SAMPLE_FORMATS: dict[str, list[str]] = {
    "datetime": ["2026-12-31T20:00:00.000Z", "2027-01-01T00:00:00+02:00"],
    "did": ["did:plc:z72i7hdynmk6r22z27h6tvur", "did:web:app.example"],
    "handle": ["alice.example.com"],
    "at-identifier": ["did:plc:z72i7hdynmk6r22z27h6tvur", "alice.example.com"],
    "at-uri": ["at://did:plc:z72i7hdynmk6r22z27h6tvur/community.lexicon.calendar.event/3kfuzz0000001"],
    "uri": ["https://example.com/return", "https://example.com/cancel"],
    "nsid": ["community.lexicon.calendar.event"],
    "cid": ["bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"],
    "language": ["en", "fr-CA"],
    "tid": ["3jzfcijpj2z2a"],
    "record-key": ["3jzfcijpj2z2a", "self"],
}

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


# --- values from the lexicons ----------------------------------------------------------------------


class LexiconValues:
    """Strategies for values of lexicon schemas. ``pool`` maps property names to real values of
    the seeded data (``eventId`` → an existing event's id), so valid-ish input reaches the
    handlers instead of stopping at ``…NotFound``."""

    # Always sent: the seeded app is registered in ``test`` only. Never sent: assertions, which
    # only an organizer's or buyer's key can make (a random one is refused before the handler).
    ALWAYS = frozenset({"environment"})
    NEVER = frozenset({"organizerAssertionJwt", "buyerAssertionJwt"})

    def __init__(self, pool: dict[str, list[Any]]) -> None:
        self.pool = pool

    def _definition(self, ref: str, lexicon_id: str) -> tuple[dict[str, Any], str]:
        target, _, name = ref.partition("#")
        document_id = target or lexicon_id
        document = LEXICONS.document(document_id)
        assert document is not None, ref
        definitions: dict[str, Any] = document["defs"]  # type: ignore[assignment]
        return definitions[name or "main"], document_id

    def field(
        self, schema: dict[str, Any], lexicon_id: str, name: str, depth: int = 0
    ) -> st.SearchStrategy[Any]:
        kind = schema["type"]
        if name in self.pool and kind != "array":
            return st.sampled_from(self.pool[name])
        if kind == "ref":
            target, document_id = self._definition(schema["ref"], lexicon_id)
            if target["type"] == "token":
                return st.just(schema["ref"])
            return self.field(target, document_id, name, depth + 1)
        if kind == "union":
            return st.one_of([self._member(ref, lexicon_id, name, depth) for ref in schema["refs"]])
        if kind == "object":
            return self.object(schema, lexicon_id, depth)
        if kind == "array":
            items = self.field(schema["items"], lexicon_id, name.removesuffix("s"), depth + 1)
            low = schema.get("minLength", 0)
            return st.lists(items, min_size=low, max_size=max(low, min(schema.get("maxLength", 3), 3)))
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1)
            small = (
                st.integers(max(low, 0), min(high, max(low, 0) + 60)) if high >= max(low, 0) else st.nothing()
            )
            return st.one_of(small, st.sampled_from([low, high]), st.integers(low, high))
        if kind == "boolean":
            return st.booleans()
        if kind == "bytes":
            return st.binary(max_size=8).map(lambda b: {"$bytes": base64.b64encode(b).decode()})
        return st.dictionaries(st.text(max_size=5), json_scalars, max_size=3)  # unknown, blob, cid-link

    def _member(self, ref: str, lexicon_id: str, name: str, depth: int) -> st.SearchStrategy[Any]:
        target, document_id = self._definition(ref, lexicon_id)
        type_name = lexicon_id + ref if ref.startswith("#") else ref
        return self.field(target, document_id, name, depth + 1).map(lambda v: {**v, "$type": type_name})

    def string(self, schema: dict[str, Any]) -> st.SearchStrategy[str]:
        if "const" in schema:
            return st.just(schema["const"])
        choices = schema.get("enum") or schema.get("knownValues")
        if choices:
            return st.sampled_from(choices)
        if schema.get("format") in SAMPLE_FORMATS:
            return st.sampled_from(SAMPLE_FORMATS[schema["format"]])
        low = schema.get("minLength", 0)
        return st.one_of(
            st.sampled_from(["x" * max(low, 1), "Fuzz night", "eur"]), st.text(min_size=low, max_size=12)
        )

    def object(
        self, schema: dict[str, Any], lexicon_id: str, depth: int
    ) -> st.SearchStrategy[dict[str, Any]]:
        properties: dict[str, dict[str, Any]] = schema.get("properties", {})
        required = set(schema.get("required", ())) | (self.ALWAYS & properties.keys())
        fields = {
            n: self.field(p, lexicon_id, n, depth + 1)
            for n, p in properties.items()
            if n in required or n not in self.NEVER
        }
        optional = {n: s for n, s in fields.items() if n not in required} if depth < 4 else {}
        return st.fixed_dictionaries({n: fields[n] for n in required}, optional=optional)

    def method_input(self, nsid: str) -> st.SearchStrategy[dict[str, Any]]:
        """Valid-ish parameters (queries) or input body (procedures) of ``nsid``."""
        method = LEXICONS.method(nsid)
        assert method is not None
        schema = method.parameters
        if method.kind == "procedure":
            body = (method.input or {}).get("schema")
            assert body is None or isinstance(body, Mapping)
            schema = body
        if schema is None:
            return st.just({})
        return (
            self.field(dict(schema), nsid, "", 0)
            if schema["type"] != "params"
            else self.object(dict(schema), nsid, 0)
        )


# --- mutations ---------------------------------------------------------------------------------------


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


def _replace(value: Any, path: tuple[Any, ...], new: Callable[[Any], Any]) -> Any:
    if not path:
        return new(value)
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _drop(value: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        copy = dict(value) if isinstance(value, dict) else list(value)
        del copy[path[0]]
        return copy
    return _replace(value, path[:1], lambda inner: _drop(inner, path[1:]))


VALUE_MUTATIONS = ("drop", "retype", "nul", "huge-int", "deep", "text")


@st.composite
def mutated(draw: st.DrawFn, value: dict[str, Any], kind: str) -> dict[str, Any]:
    """``value`` bent at one place by the mutation ``kind``."""
    places = [place for place in _places(value) if place]  # the top stays an object
    if not places:
        return _object(_add_key(value, "a\x00b" if kind == "nul" else "x"))
    path = draw(st.sampled_from(places))
    if kind == "drop":
        return _object(_drop(value, path))
    if kind == "nul" and draw(st.booleans()):
        return _object(_replace(value, path[:-1], lambda o: _add_key(o, "a\x00b")))
    replacements: dict[str, Callable[[Any], Any]] = {
        "retype": lambda _: draw(json_values),
        "nul": lambda old: (old if isinstance(old, str) else "") + "\x00",
        "huge-int": lambda _: draw(st.sampled_from(HUGE_INTEGERS)),
        "deep": lambda _: DEEP,
        "text": lambda _: draw(st.sampled_from(HOSTILE_TEXT)),
    }
    return _object(_replace(value, path, replacements[kind]))


def _object(value: Any) -> dict[str, Any]:
    """A mutated top-level value, which every mutation leaves an object."""
    assert isinstance(value, dict)
    return value


def _add_key(container: Any, key: str) -> Any:
    return {**container, key: 1} if isinstance(container, dict) else [*container, {key: 1}]


def has_nul(value: Any) -> bool:
    return any("\x00" in part for part in _strings(value))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def encode_body(value: Any, ascii_only: bool, depth: int) -> bytes:
    """JSON bytes; the :data:`DEEP` placeholder becomes ``depth`` nested arrays; text that is not
    UTF-8 (lone surrogates) is written as it is, making invalid UTF-8."""
    encoded = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    placeholder = json.dumps(DEEP, ensure_ascii=ascii_only).encode()
    return encoded.replace(placeholder, b"[" * depth + b"]" * depth)


def encode_query(params: dict[str, Any], depth: int) -> bytes:
    """A query string: each value as text (lists repeat the name), percent-encoded as UTF-8."""
    pairs: list[tuple[str, Any]] = []
    for name, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, item))
    parts = []
    for name, item in pairs:
        raw = (
            item
            if isinstance(item, str)
            else json.dumps(item)
            if not isinstance(item, bool)
            else str(item).lower()
        )
        raw = raw.replace(DEEP, "[" * min(depth, 200) + "]" * min(depth, 200))  # within a request line
        parts.append(f"{_q(name)}={_q(raw)}")
    return "&".join(parts).encode("ascii")


def _q(text_value: str) -> str:
    return quote(text_value.encode("utf-8", "surrogatepass"), safe="")


# --- raw HTTP ------------------------------------------------------------------------------------------


@dataclass
class RawRequest:
    method: str
    target: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")


RAW_MUTATIONS = ("body", "query", "header")
QUERY_ADDITIONS = (
    b"x=%00", b"cursor=%FF%FE", b"cursor=%ED%A0%80", b"limit=" + b"9" * 30, b"since=" + b"9" * 19,
    b"cursor=" + b"9" * 30, b"eventId=a&eventId=b", b"=", b"%", b"%zz=1", b"k=%C3%A9",
)  # fmt: skip
HEADER_VALUES = (
    b"Bearer caf\xc3\xa9", b"\xff\xfe", b"a\x00b", b"a\x01b", b"a\x7fb", b"Bearer " + b"A" * 9000,
    b"application/json; charset=\xe9", b"Bearer dev_\xc3\xa9.x", b"text/plain",
)  # fmt: skip


@st.composite
def raw_mutated(draw: st.DrawFn, request: RawRequest, kind: str) -> RawRequest:
    """``request`` bent at the byte level: its body (a query has none: its query string instead),
    query string or headers."""
    if kind == "body" and request.method == "POST":
        body = request.body
        cut = draw(st.integers(0, len(body)))
        choice = draw(st.sampled_from(["truncate", "utf8", "deep", "number", "bom", "nul-escape"]))
        body = {
            "truncate": lambda: body[:cut],
            "utf8": lambda: body[:cut] + draw(st.sampled_from(INVALID_UTF8)) + body[cut:],
            "deep": lambda: b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
            "number": lambda: (
                body[:cut] + b"1" * 400 + body[cut:] if cut else b'{"x": 1e999, "y": ' + b"9" * 400 + b"}"
            ),
            "bom": lambda: b"\xef\xbb\xbf" + body,
            "nul-escape": lambda: (
                body.replace(b'":', b'\\u0000":', 1) if b'":' in body else b'{"\\u0000": 1}'
            ),
        }[choice]()
        return RawRequest(request.method, request.target, request.headers, body)
    if kind != "header":
        extra = draw(st.sampled_from(QUERY_ADDITIONS))
        path, _, query = request.target.partition(b"?")
        return RawRequest(
            request.method,
            path + b"?" + (query + b"&" if query else b"") + extra,
            request.headers,
            request.body,
        )
    name = draw(st.sampled_from([b"authorization", b"x-fuzz", b"content-type", b"idempotency-key"]))
    value = draw(st.sampled_from(HEADER_VALUES))
    headers = [(n, v) for n, v in request.headers if n != name] + [(name, value)]
    return RawRequest(request.method, request.target, headers, request.body)


def send(port: int, request: RawRequest) -> RawResponse | None:
    """One request on its own connection; None when the HTTP server refused the bytes themselves
    (it closed the connection without an answer, or answered before the application saw them)."""
    head = [
        f"{request.method} ".encode() + request.target + b" HTTP/1.1",
        b"host: 127.0.0.1",
        b"connection: close",
    ]
    head += [b"content-length: %d" % len(request.body)] if request.method == "POST" else []
    head += [name + b": " + value for name, value in request.headers]
    data = b"\r\n".join(head) + b"\r\n\r\n" + request.body
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may answer early
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    reply = b"".join(chunks)
    if not reply:
        return None
    head_bytes, _, body = reply.partition(b"\r\n\r\n")
    lines = head_bytes.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return RawResponse(status, headers, body)


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out


# --- what a refusal must not change --------------------------------------------------------------------


class RowCounts:
    """Counts the rows of every table but :data:`BOOKKEEPING_TABLES` in one statement, from a
    synchronous test (its own event loop and connection pool)."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.db = Database(database_url)
        tables = [t.name for t in Base.metadata.sorted_tables if t.name not in BOOKKEEPING_TABLES]
        self.statement = text(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables))

    def __call__(self) -> dict[str, int]:
        async def count() -> dict[str, int]:
            async with self.db.read() as session:
                return {str(row[0]): int(row[1]) for row in await session.execute(self.statement)}

        return self.loop.run_until_complete(count())

    def close(self) -> None:
        self.loop.run_until_complete(self.db.dispose())
        self.loop.close()


def xrpc_target(nsid: str, query: bytes = b"") -> bytes:
    return f"/xrpc/{nsid}".encode() + (b"?" + query if query else b"")


def served_methods() -> list[str]:
    """Every XRPC method the server answers: ours and the payment side's."""
    return sorted(n for n in LEXICONS.method_nsids() if n in METHODS)


# --- the data hostile input is aimed at ----------------------------------------------------------------


@dataclass
class Seeded:
    """Real rows to aim at: ``pool`` for :class:`LexiconValues` (``per_method``: values of a
    method's own, over the pool), and the door's secrets."""

    pool: dict[str, list[Any]]
    per_method: dict[str, dict[str, list[Any]]]
    device_credential: str
    pass_path: str  # /passes/<ticket id>?k=<key> of a sold ticket
    hold_token: str

    def values(self, nsid: str) -> LexiconValues:
        return LexiconValues({**self.pool, **self.per_method.get(nsid, {})})


async def _tier(app: AppClient, event: dict[str, Any]) -> dict[str, Any]:
    made: dict[str, Any] = await app.ok(
        "createTicketTier",
        {"organizerDid": ORGANIZER, "event": {"uri": event["uri"]}, "title": "GA", "currency": "eur",
         "unitAmount": 1500, "quantityTotal": 500, "maxPerOrder": 10},
    )  # fmt: skip
    return made


async def seed(app: AppClient, database_url: str, base_url: str) -> Seeded:
    """An active event with a tier, paid tickets (two to aim at, and one each for refunding,
    transferring and voiding), a live hold, an offer, the event's door list and an enrolled desk; one
    more enrollment code is left for ``enrollDevice``; a partner app the organizer consented to (for
    ``revokeOrganizerConsent``). The methods that end or change a row for good (archive, status
    changes, revocation) are aimed at a spare event, tier and consent, so that every other method can
    still succeed after them."""
    event, spare = await active_event(app, "Hostile night"), await active_event(app, "Spare night")
    tier, spare_tier = await _tier(app, event), await _tier(app, spare)
    tier_id, group_id = tier["tier"]["id"], tier["capacityGroup"]["id"]
    sold = await app.ok("createTicketHold", {"items": [{"tierId": tier_id, "quantity": 5}]})
    payment = new_payment_id()
    await BROKER.send(app.http, base_url, BROKER.paid(sold, payment_id=payment))
    tickets, (refunded, transferred, voided) = _split(
        (await app.ok("listBuyerTickets", {"paymentId": payment}))["tickets"]
    )
    live = await app.ok("createTicketHold", {"items": [{"tierId": tier_id, "quantity": 1}]})
    offer = await app.ok(
        "createOffer",
        {
            "eventId": event["id"],
            "name": "Friends",
            "kind": "discount",
            "code": "FRIENDS10",
            "discountPercent": 10,
        },
    )
    lists = (await app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
    list_id = lists[0]["id"]
    db = Database(database_url)
    now_ms = int(time.time() * 1000)
    try:
        async with db.write() as session:
            codes = [
                (await devices.create_enrollment(session, "test", [list_id], name, now_ms)).code
                for name in ("Fuzzed desk", "Spare desk")
            ]
            partner = await apps.register_app(session, did=PARTNER_DID, environment="test", now_ms=now_ms)
            await session.flush()
            grant = Caller(partner.id, PARTNER_DID, "test", organizer_did=ORGANIZER, organizer_jti="seed")
            await consents.grant(session, grant, now_ms)
    finally:
        await db.dispose()
    enrolled = await app.http.post(
        f"{base_url}/xrpc/{NS}enrollDevice", json={"code": codes[0], "deviceName": "Fuzzed desk"}
    )
    assert enrolled.status_code == 200, enrolled.text
    pool: dict[str, list[Any]] = {
        "eventId": [event["id"]],
        "eventUri": [event["uri"]],
        "uri": [event["uri"]],
        "tierId": [tier_id],
        "capacityGroupId": [group_id],
        "holdId": [live["holdId"], sold["holdId"]],
        "ticketId": [t["id"] for t in tickets],
        "ticketToken": [t["passToken"] for t in tickets],
        "paymentId": [payment],
        "offerId": [offer["offer"]["id"]],
        "offerCode": ["FRIENDS10"],
        "code": ["FRIENDS10", codes[1]],
        "checkInListId": [list_id],
        "organizerDid": [ORGANIZER],
        "organizer": [ORGANIZER],
        "actor": [ORGANIZER],
        "recipientDid": [ORGANIZER],
        "paymentType": ["ticket"],
        "collection": ["tickets.atmosphere.ticketedEvent"],
        "token": [live["token"]],
        "currency": ["eur"],
        "environment": ["test"],
    }
    spare_ids = {"eventId": [spare["id"]], "tierId": [spare_tier["tier"]["id"]]}
    per_method = {
        NS + "createTicketEvent": {"uri": [spare["uri"]]},
        NS + "updateTicketEvent": spare_ids,
        NS + "archiveTicketTier": spare_ids,
        NS + "updateTicketTier": spare_ids,
        NS + "updateCapacityGroup": {"capacityGroupId": [spare_tier["capacityGroup"]["id"]]},
        NS + "revokeOrganizerConsent": {"appDid": [PARTNER_DID]},
        NS + "refundTicket": {"ticketId": [refunded["id"]]},
        NS + "transferTicket": {"ticketId": [transferred["id"]]},
        NS + "voidTicket": {"ticketId": [voided["id"]]},
        # Codes not taken yet, of a kind that needs no discount: the input of only the required
        # fields (Hypothesis's first) makes an offer.
        NS + "createOffer": {"code": [f"FUZZ{n}" for n in range(8)], "kind": ["affiliate", "access-window"]},
        # The fuzzed desk's own records (a record of any other desk refuses its whole batch), so a
        # clean upload is stored whether or not its generated batch is empty.
        NS + "uploadCheckIns": {"deviceId": [enrolled.json()["deviceId"]]},
    }
    ticket = tickets[0]
    return Seeded(pool, per_method, enrolled.json()["credential"], _pass_path(ticket), live["token"])


def _split(tickets: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Five sold tickets: two to aim at, and one each for refunding, transferring and voiding."""
    return tickets[:2], tickets[2:]


def _pass_path(ticket: dict[str, Any]) -> str:
    url = str(ticket["scanUrl"])
    return url[url.index("/passes/") :]

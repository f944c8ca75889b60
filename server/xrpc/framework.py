"""XRPC plumbing: the method registry, the per-call context and the dispatch of one call.

A method module registers handlers with :func:`xrpc_method`; a handler receives the call context
and the lexicon-validated input (procedures) or parameters (queries) and answers the output dict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from server.atproto.eventgraph import EventGraph
from server.auth.did import DidResolver
from server.auth.signing import SigningKey
from server.domain.apps import RegisteredApps
from server.domain.caller import Caller
from server.domain.common import Clock
from server.domain.idempotency import Once, call_scope, check_key, request_hash
from server.domain.issuance.list_keys import Keyring
from server.errors import InvalidRequest
from server.observability import note_caller, note_method
from server.settings import Settings
from server.wire import NUL_MESSAGE, contains_nul, nesting_exceeds
from server.xrpc import ratelimits
from server.xrpc.lexicon import Lexicons
from server.xrpc.transport import MethodNotAllowed, MethodNotImplemented, PayloadTooLarge

if TYPE_CHECKING:
    from server.db.engine import Database

NAMESPACE = "tickets.atmosphere."


@dataclass(frozen=True, slots=True)
class Services:
    """What every call may use; one per server process, built in :func:`server.app.create_app`."""

    settings: Settings
    db: Database
    resolver: DidResolver
    lexicons: Lexicons
    clock: Clock
    keyring: Keyring
    event_graph: EventGraph
    apps: RegisteredApps
    # This service's own key: signs the service-auth JWTs of XRPC receiver delivery.
    signing_key: SigningKey


@dataclass(frozen=True, slots=True)
class Call:
    services: Services
    caller: Caller
    nsid: str
    now_ms: int
    # The client's address as the rate limits count it (a keyed hash, see ``xrpc.ratelimits``).
    client_address: str

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def settings(self) -> Settings:
        return self.services.settings


@dataclass(frozen=True, slots=True)
class RawOutput:
    """A method output that is a file, not JSON (lexicon output encoding other than JSON)."""

    content: bytes
    media_type: str
    filename: str


Output = dict[str, Any] | RawOutput
Handler = Callable[[Call, dict[str, Any]], Awaitable[Any]]
Authenticator = Callable[[Services, str, str | None, dict[str, Any]], Awaitable[Caller]]


@dataclass(frozen=True, slots=True)
class Method:
    handler: Handler
    # Who may call: None means a registered app with a service-auth JWT (the default).
    authenticator: Authenticator | None


METHODS: dict[str, Method] = {}


def xrpc_method(nsid: str, *, auth: Authenticator | None = None) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if nsid in METHODS:
            raise RuntimeError(f"{nsid} registered twice")
        METHODS[nsid] = Method(handler, auth)
        return handler

    return register


def once(
    call: Call, params: dict[str, Any], *, unhashed: tuple[str, ...] = ("idempotencyKey",)
) -> Once | None:
    """The call's ``idempotencyKey``, when it sends one: the domain then runs it once per key, and a
    replay answers the first result with ``reused: true``. Fields in ``unhashed`` (the key itself,
    and tokens that differ on every retry) do not make an input different."""
    key = params.get("idempotencyKey")
    if key is None:
        return None
    fingerprint = {k: v for k, v in params.items() if k not in unhashed}
    return Once(
        call_scope(call.caller),
        check_key(key),
        request_hash(call.nsid, fingerprint),
        call.settings.idempotency_lease_seconds * 1000,
    )


def decode_body(body: bytes, settings: Settings) -> object:
    """A procedure's JSON body, refused (before authentication) when too large, nested too deep,
    not JSON, or carrying a NUL character."""
    if len(body) > settings.max_body_bytes:
        raise PayloadTooLarge(f"request body is larger than {settings.max_body_bytes} bytes")
    if not body.strip():
        raise InvalidRequest("a JSON object body is required")
    if nesting_exceeds(body, settings.max_json_depth):
        raise InvalidRequest(f"request body nests deeper than {settings.max_json_depth} levels")
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidRequest("request body is not valid JSON") from None
    if b"\\u0000" in body and contains_nul(value):  # the only way JSON can spell a NUL
        raise InvalidRequest(NUL_MESSAGE)
    return value


async def dispatch(
    services: Services,
    authenticate: Authenticator,
    *,
    http_method: str,
    nsid: str,
    authorization: str | None,
    query: dict[str, list[str]],
    body: bytes,
    client_ip: str,
) -> Output:
    """Rate-limit, validate, authenticate and run one XRPC call; answers its output."""
    schema = services.lexicons.method(nsid)
    method = METHODS.get(nsid)
    if schema is None or method is None:
        raise MethodNotImplemented(f"method {nsid} is not implemented by this service")
    note_method(nsid)
    settings, limited = services.settings, services.settings.rate_limits_enabled
    address = ratelimits.address_key(services.keyring.server_key, client_ip)
    if limited:
        await ratelimits.limit_address(services.db, settings, address, nsid, services.clock.now_ms())
    if schema.kind == "query":
        if http_method != "GET":
            raise MethodNotAllowed(f"{nsid} is a query: use GET")
        params = services.lexicons.validate_params(nsid, query)
    else:
        if http_method != "POST":
            raise MethodNotAllowed(f"{nsid} is a procedure: use POST")
        params = services.lexicons.validate_input(nsid, decode_body(body, services.settings))
    caller = await (method.authenticator or authenticate)(services, nsid, authorization, params)
    note_caller(caller.app_did, caller.environment)
    if limited:
        await ratelimits.limit_caller(services.db, settings, caller, nsid, services.clock.now_ms())
    call = Call(services, caller, nsid, services.clock.now_ms(), address)
    output: Output = await method.handler(call, params)
    return output

"""DID resolution against real HTTP servers on loopback: did:web, a fake PLC directory, the local
folder, caching, coalescing and the refusals."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from server.auth.did import DidResolutionError, DidResolver
from server.auth.service_jwt import verify_service_jwt
from server.auth.signing import SigningKey
from server.devtools import mint_service_jwt
from server.outbound import OutboundPolicy, outbound_client

PLC_DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
SERVICE_AUD = "did:web:tickets.example.com#AttestedNetwork"
METHOD = "tickets.atmosphere.getTicketAvailability"


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True


@dataclass
class FakeServer:
    """What the loopback server answers, and what it was asked."""

    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    delay: float = 0.0
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def web_did(self) -> str:
        return f"did:web:127.0.0.1%3A{self.port}"

    def serve_json(self, path: str, document: Any) -> None:
        self.routes[path] = Route(body=json.dumps(document).encode())


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (size cap, timeout) are expected here."""


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def do_GET(self) -> None:
        fake = self.server.fake
        fake.hits[self.path] += 1
        time.sleep(fake.delay)
        route = fake.routes.get(self.path, Route(404, b'{"message": "DID not registered"}'))
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.send_length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    httpd = _HttpServer(("127.0.0.1", 0), _Handler)
    httpd.fake = fake
    fake.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_resolver(server: FakeServer, clock: Clock) -> AsyncIterator[Callable[..., DidResolver]]:
    """Resolvers whose HTTP client may reach the fake server on loopback."""
    async with outbound_client(OutboundPolicy(allow_private=True)) as http:

        def make(local_docs_dir: Path | None = None, **options: Any) -> DidResolver:
            settings: dict[str, Any] = {"web_scheme": "http", "clock": clock, "http": http}
            settings.update(options)
            return DidResolver(local_docs_dir, server.base_url, **settings)

        yield make


def plc_document(did: str, key: SigningKey) -> dict[str, Any]:
    """A document in the shape plc.directory serves."""
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1",
        ],
        "id": did,
        "alsoKnownAs": ["at://events-app.example.com"],
        "verificationMethod": [
            {
                "id": f"{did}#atproto",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.public_multikey,
            }
        ],
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": "https://pds.example.com",
            }
        ],
    }


# --- the three sources ---------------------------------------------------------------------------


async def test_did_web_over_http(server: FakeServer, make_resolver: Callable[..., DidResolver]) -> None:
    key = SigningKey.generate("ES256")
    server.serve_json("/.well-known/did.json", key.did_document(server.web_did))
    resolver = make_resolver()
    document = await resolver.resolve(server.web_did)
    assert document["id"] == server.web_did
    assert await resolver.signing_key(server.web_did) == key.public_key
    assert server.hits["/.well-known/did.json"] == 1


async def test_did_plc_from_a_plc_directory(
    server: FakeServer, make_resolver: Callable[..., DidResolver]
) -> None:
    key = SigningKey.generate("ES256K")
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, key))
    resolver = make_resolver()
    signing_key = await resolver.signing_key(PLC_DID)
    assert signing_key == key.public_key
    assert signing_key.alg == "ES256K"
    assert server.hits[f"/{PLC_DID}"] == 1


async def test_local_folder_wins_and_reloads_when_fresh(
    server: FakeServer, make_resolver: Callable[..., DidResolver], tmp_path: Path
) -> None:
    local, remote, rotated = (SigningKey.generate() for _ in range(3))
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, remote))
    (tmp_path / "app.json").write_text(json.dumps(local.did_document(PLC_DID)))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "no-id.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("ignored")
    resolver = make_resolver(tmp_path)
    assert await resolver.signing_key(PLC_DID) == local.public_key
    (tmp_path / "app.json").write_text(json.dumps(rotated.did_document(PLC_DID)))
    assert await resolver.signing_key(PLC_DID) == local.public_key  # loaded once
    assert await resolver.signing_key(PLC_DID, fresh=True) == rotated.public_key
    assert server.hits.total() == 0


async def test_documents_from_a_folder_need_no_known_method(
    make_resolver: Callable[..., DidResolver], tmp_path: Path
) -> None:
    key = SigningKey.generate()
    (tmp_path / "example.json").write_text(json.dumps(key.did_document("did:example:app")))
    assert await make_resolver(tmp_path).signing_key("did:example:app") == key.public_key


async def test_a_missing_folder_resolves_nothing_locally(
    server: FakeServer, make_resolver: Callable[..., DidResolver], tmp_path: Path
) -> None:
    key = SigningKey.generate()
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, key))
    resolver = make_resolver(tmp_path / "absent")
    assert await resolver.signing_key(PLC_DID) == key.public_key


# --- caching -------------------------------------------------------------------------------------


async def test_cache_hit_and_expiry(
    server: FakeServer, make_resolver: Callable[..., DidResolver], clock: Clock
) -> None:
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, SigningKey.generate()))
    resolver = make_resolver(cache_ttl=3600)
    for _ in range(5):
        await resolver.resolve(PLC_DID)
    assert server.hits[f"/{PLC_DID}"] == 1
    clock.now += 3599
    await resolver.resolve(PLC_DID)
    assert server.hits[f"/{PLC_DID}"] == 1
    clock.now += 2
    await resolver.resolve(PLC_DID)
    assert server.hits[f"/{PLC_DID}"] == 2


async def test_fresh_re_resolves_but_not_more_often_than_the_refresh_interval(
    server: FakeServer, make_resolver: Callable[..., DidResolver], clock: Clock
) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, old))
    resolver = make_resolver(min_refresh_interval=5)
    assert await resolver.signing_key(PLC_DID) == old.public_key
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, new))
    assert await resolver.signing_key(PLC_DID, fresh=True) == old.public_key  # fetched 0 s ago
    assert server.hits[f"/{PLC_DID}"] == 1
    clock.now += 5
    assert await resolver.signing_key(PLC_DID, fresh=True) == new.public_key
    assert await resolver.signing_key(PLC_DID) == new.public_key  # the fresh result is cached
    assert server.hits[f"/{PLC_DID}"] == 2


@pytest.fixture
def slow_resolver(server: FakeServer, make_resolver: Callable[..., DidResolver]) -> DidResolver:
    """A resolver whose server answers ``PLC_DID`` after 0.2 s, long enough for callers to overlap."""
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, SigningKey.generate()))
    server.delay = 0.2
    return make_resolver()


async def test_concurrent_resolutions_share_one_request(
    server: FakeServer, slow_resolver: DidResolver
) -> None:
    documents = await asyncio.gather(*(slow_resolver.resolve(PLC_DID) for _ in range(20)))
    assert all(document is documents[0] for document in documents)
    assert server.hits[f"/{PLC_DID}"] == 1


async def test_a_cancelled_waiter_does_not_cancel_the_shared_request(
    server: FakeServer, slow_resolver: DidResolver
) -> None:
    impatient = asyncio.create_task(slow_resolver.resolve(PLC_DID))
    patient = asyncio.create_task(slow_resolver.resolve(PLC_DID))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert (await patient)["id"] == PLC_DID
    assert server.hits[f"/{PLC_DID}"] == 1


async def test_failures_are_cached_briefly(
    server: FakeServer, make_resolver: Callable[..., DidResolver], clock: Clock
) -> None:
    resolver = make_resolver(negative_cache_ttl=60)
    for _ in range(3):
        with pytest.raises(DidResolutionError, match="not found"):
            await resolver.resolve(PLC_DID)
    assert server.hits[f"/{PLC_DID}"] == 1
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, SigningKey.generate()))
    clock.now += 60
    assert (await resolver.resolve(PLC_DID))["id"] == PLC_DID
    assert server.hits[f"/{PLC_DID}"] == 2


# --- refusals ------------------------------------------------------------------------------------


async def test_document_id_mismatch_is_refused(
    server: FakeServer, make_resolver: Callable[..., DidResolver]
) -> None:
    other = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    server.serve_json(f"/{PLC_DID}", plc_document(other, SigningKey.generate()))
    server.serve_json("/.well-known/did.json", SigningKey.generate().did_document("did:web:elsewhere.com"))
    resolver = make_resolver()
    with pytest.raises(DidResolutionError, match="another id"):
        await resolver.resolve(PLC_DID)
    with pytest.raises(DidResolutionError, match="another id"):
        await resolver.resolve(server.web_did)


@pytest.mark.parametrize("status", [404, 410])
async def test_unknown_did_is_refused(
    server: FakeServer, make_resolver: Callable[..., DidResolver], status: int
) -> None:
    server.routes[f"/{PLC_DID}"] = Route(status=status, body=b"{}")
    with pytest.raises(DidResolutionError, match="not found"):
        await make_resolver().resolve(PLC_DID)


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(status=500, body=b"oops"), "HTTP 500"),
        (Route(status=302, headers={"Location": "http://127.0.0.1:1/did.json"}), "HTTP 302"),
        (Route(body=b"<html>not json</html>"), "not a JSON object"),
        (Route(body=b'["a", "list"]'), "not a JSON object"),
        (Route(body=b"[" * 100_000), "not a JSON object"),
    ],
)
async def test_bad_answers_are_refused(
    server: FakeServer, make_resolver: Callable[..., DidResolver], route: Route, reason: str
) -> None:
    server.routes[f"/{PLC_DID}"] = route
    with pytest.raises(DidResolutionError, match=reason):
        await make_resolver().resolve(PLC_DID)


@pytest.mark.parametrize("send_length", [True, False])
async def test_oversized_document_is_refused(
    server: FakeServer, make_resolver: Callable[..., DidResolver], send_length: bool
) -> None:
    document = plc_document(PLC_DID, SigningKey.generate())
    document["padding"] = "x" * (256 * 1024)
    server.routes[f"/{PLC_DID}"] = Route(body=json.dumps(document).encode(), send_length=send_length)
    with pytest.raises(DidResolutionError, match="exceeds 262144 bytes"):
        await make_resolver().resolve(PLC_DID)


@pytest.mark.serial  # measures time
async def test_slow_server_times_out(server: FakeServer, make_resolver: Callable[..., DidResolver]) -> None:
    server.serve_json(f"/{PLC_DID}", plc_document(PLC_DID, SigningKey.generate()))
    server.delay = 1.0
    started = time.monotonic()
    with pytest.raises(DidResolutionError, match="could not be reached"):
        await make_resolver(timeout=0.2).resolve(PLC_DID)
    assert time.monotonic() - started < 0.9


async def test_unreachable_host_is_refused(make_resolver: Callable[..., DidResolver]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DidResolutionError, match="could not be reached"):
        await make_resolver().resolve(f"did:web:127.0.0.1%3A{port}")


@pytest.mark.parametrize(
    ("did", "reason"),
    [
        ("did:web:127.0.0.1%3A1234:user:alice", "with a path"),
        ("did:web:bad_host.example", "malformed did:web"),
        ("did:web:-example.com", "malformed did:web"),
        ("did:web:example.com%2Fpath", "malformed did:web"),
        ("did:web:example.com%3A99999", "malformed did:web"),
        ("did:web:", "malformed did:web"),
        ("did:plc:tooshort", "malformed did:plc"),
        ("did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ", "malformed did:plc"),
        ("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", "unsupported DID method"),
        ("not-a-did", "unsupported DID method"),
    ],
)
async def test_malformed_dids_are_refused_without_a_request(
    server: FakeServer, make_resolver: Callable[..., DidResolver], did: str, reason: str
) -> None:
    with pytest.raises(DidResolutionError, match=reason):
        await make_resolver().resolve(did)
    assert server.hits.total() == 0


@pytest.mark.parametrize(
    ("methods", "reason"),
    [
        (None, "no verificationMethod"),
        ([], "no #atproto"),
        ([{"id": "#other", "type": "Multikey", "publicKeyMultibase": "z"}], "no #atproto"),
        ([{"id": "#atproto", "type": "JsonWebKey2020", "publicKeyJwk": {}}], "not a Multikey"),
        ([{"id": "#atproto", "type": "Multikey"}], "not a Multikey"),
        ([{"id": "#atproto", "type": "Multikey", "publicKeyMultibase": "zzz"}], "invalid"),
    ],
)
async def test_documents_without_a_usable_atproto_key_are_refused(
    server: FakeServer, make_resolver: Callable[..., DidResolver], methods: Any, reason: str
) -> None:
    document: dict[str, Any] = {"id": PLC_DID}
    if methods is not None:
        document["verificationMethod"] = methods
    server.serve_json(f"/{PLC_DID}", document)
    with pytest.raises(DidResolutionError, match=reason):
        await make_resolver().signing_key(PLC_DID)


async def test_short_atproto_method_id_is_accepted(
    server: FakeServer, make_resolver: Callable[..., DidResolver]
) -> None:
    key = SigningKey.generate()
    methods = [
        {"id": "#other", "type": "Multikey", "publicKeyMultibase": SigningKey.generate().public_multikey},
        {"id": "#atproto", "type": "Multikey", "publicKeyMultibase": key.public_multikey},
    ]
    server.serve_json(f"/{PLC_DID}", {"id": PLC_DID, "verificationMethod": methods})
    assert await make_resolver().signing_key(PLC_DID) == key.public_key


# --- end to end ----------------------------------------------------------------------------------


async def test_service_jwt_from_a_did_web_app_with_key_rotation(
    server: FakeServer, make_resolver: Callable[..., DidResolver]
) -> None:
    resolver = make_resolver(min_refresh_interval=0)

    async def call_with(key: SigningKey) -> str:
        token = mint_service_jwt(key, iss=server.web_did, aud=SERVICE_AUD, lxm=METHOD)
        claims = await verify_service_jwt(token, audiences=[SERVICE_AUD], lxm=METHOD, resolver=resolver)
        return claims.iss

    first = SigningKey.generate()
    server.serve_json("/.well-known/did.json", first.did_document(server.web_did))
    assert await call_with(first) == server.web_did
    rotated = SigningKey.generate("ES256")
    server.serve_json("/.well-known/did.json", rotated.did_document(server.web_did))
    assert await call_with(rotated) == server.web_did
    assert server.hits["/.well-known/did.json"] == 2

"""A real server on loopback (uvicorn in a thread, its own event loop) and an app client that signs
every call with a fresh service-auth JWT, the way a real event app does."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from server.app import create_app
from server.auth.signing import SigningKey
from server.db.engine import Database
from server.devtools import mint_service_jwt
from server.domain import apps
from server.domain.common import Clock, SystemClock
from server.domain.offers.pricing import Fees
from server.http_server import server_config
from server.settings import Settings
from server.xrpc.lexicon import LEXICON_DIR, Lexicons
from support.broker import BROKER_PREVIOUS_SECRET, BROKER_SECRET

SERVICE_DID = "did:web:tickets.test"
NS = "tickets.atmosphere."
LEXICONS = Lexicons.load(LEXICON_DIR)


def make_settings(database_url: str, folder: Path, **overrides: Any) -> Settings:
    did_docs = folder / "did-docs"
    did_docs.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "data_dir": folder,
        "database_url": database_url,
        "service_did": SERVICE_DID,
        "did_docs": did_docs,
        "plc_url": "http://127.0.0.1:9",  # nothing leaves this machine
        "public_url": "http://127.0.0.1:1",
        "sweep_interval_seconds": 0.2,
        "pds_allow_http": True,  # the PDS stand-in serves plain HTTP on loopback
        "outbound_allow_private": True,  # and so do the webhook receivers and DID hosts
        "publish_poll_interval_seconds": 0.2,
        "broker_webhook_secret": BROKER_SECRET,
        "broker_webhook_previous_secret": BROKER_PREVIOUS_SECRET,
        "rate_limits_enabled": False,  # tests making hundreds of calls; the limits' tests enable them
        **overrides,
    }
    return Settings(**values)


class MovedClock:
    """The system clock, which a test about time moves forward instead of waiting for it."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return SystemClock().now_ms() + self.offset_ms

    def advance(self, seconds: float) -> None:
        self.offset_ms += round(seconds * 1000)


class LiveServer:
    """``create_app(settings, clock)`` served by uvicorn on 127.0.0.1, port chosen by the OS."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = server_config(create_app(settings, clock), settings, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> LiveServer:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            if not self.thread.is_alive():
                break
            threading.Event().wait(0.01)
        raise RuntimeError("test server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Identity:
    """A DID with its key, published in the server's local DID-document folder."""

    did: str
    key: SigningKey

    @classmethod
    def create(cls, did: str, did_docs: Path, alg: str = "ES256K") -> Identity:
        key = SigningKey.generate(alg)  # type: ignore[arg-type]
        name = did.replace(":", "_").replace("%", "_")
        (did_docs / f"{name}.json").write_text(json.dumps(key.did_document(did)))
        return cls(did, key)

    def token(self, lxm: str | None, *, aud: str = f"{SERVICE_DID}#AttestedNetwork", **kw: Any) -> str:
        return mint_service_jwt(self.key, iss=self.did, aud=aud, lxm=lxm, **kw)


@dataclass
class AppClient:
    """Calls ``tickets.atmosphere.*`` as a registered app; checks every success against its lexicon.

    ``acts_for``: organizers who trust this app with their events. Like a real app, its first call
    naming such an organizer (per environment) carries the organizer's assertion, which records the
    organizer's consent; later calls rely on it."""

    base_url: str
    identity: Identity
    environment: str = "test"
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))
    acts_for: dict[str, Identity] = field(default_factory=dict)
    consented: set[tuple[str, str | None]] = field(default_factory=set)

    async def call(
        self,
        method: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        environment: str | None = "default",
    ) -> httpx.Response:
        nsid = method if "." in method else NS + method
        schema = LEXICONS.method(nsid)
        env = self.environment if environment == "default" else environment
        payload = dict(body or {})
        if env is not None:
            payload.setdefault("environment", env)
        consent = self._consent_to_ask(nsid, payload)
        auth = token if token is not None else self.identity.token(nsid)
        sent_headers = {"authorization": f"Bearer {auth}", **(headers or {})}
        if schema is not None and schema.kind == "query":
            response = await self.http.get(
                f"{self.base_url}/xrpc/{nsid}", params=payload, headers=sent_headers
            )
        else:
            response = await self.http.post(
                f"{self.base_url}/xrpc/{nsid}", json=payload, headers=sent_headers
            )
        json_answer = response.headers.get("content-type", "").startswith("application/json")
        if response.status_code == 200 and consent is not None:
            self.consented.add(consent)
        if response.status_code == 200 and schema is not None and json_answer:
            LEXICONS.validate_output(nsid, response.json())
        return response

    def _consent_to_ask(self, nsid: str, payload: dict[str, Any]) -> tuple[str, str | None] | None:
        """Add the organizer's assertion to the first call naming an organizer this app acts for."""
        organizer = self.acts_for.get(payload.get("organizerDid", ""))
        consent = (payload.get("organizerDid", ""), payload.get("environment"))
        if organizer is None or consent in self.consented or "organizerAssertionJwt" in payload:
            return None
        payload["organizerAssertionJwt"] = organizer.token(nsid)
        return consent

    async def ok(self, method: str, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        response = await self.call(method, body, **kw)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def aclose(self) -> None:
        await self.http.aclose()


async def register(
    database_url: str, did: str, environment: str = "test", webhook_url: str | None = None
) -> None:
    db = Database(database_url)
    try:
        async with db.write() as session:
            await apps.register_app(
                session, did=did, environment=environment, now_ms=0, webhook_url=webhook_url
            )
    finally:
        await db.dispose()


async def set_fees(database_url: str, did: str, fees: Fees, environment: str = "test") -> None:
    """The registered app's fee on paid orders, as ``tickets app fees`` sets it."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            await apps.set_fees(session, did, environment, fees, 0)
    finally:
        await db.dispose()

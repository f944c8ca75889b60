"""XRPC receiver delivery, as an app that chose it (``tickets app add --delivery xrpc``) sees it.

The receiver is the app's own code: it learns the service's key from ``/.well-known/did.json`` and
checks every call's service-auth JWT itself, with ``cryptography`` only (not the server's verify
function): ES256K, low-S, ``iss`` = the service DID, ``aud`` = ``<appDid>#AtmEventReceiver``,
``lxm`` = ``money.atmosphere.event.receive``, a short ``exp``, and a ``jti`` never seen before. Its
first answer is a 500, so the retry must come with a fresh token, under the same delivery id."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import libipld
from conftest import running_harness
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from support.catalog import ORGANIZER
from support.contract import EVENT_TYPE_BASE, LIFECYCLE_TOP, buyer_assertion, poll, sdk_event, sdk_tier, shape
from support.serve_process import tickets_command
from support.server import SERVICE_DID, AppClient, Identity
from support.webhooks import Receiver

from server.auth.signing import SigningKey

RECEIVE = "money.atmosphere.event.receive"
APP = "did:web:receiver.app.example"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def service_key(did_document: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    """The ``#atproto`` Multikey of the service's DID document: base58btc, secp256k1 (0xe7 0x01)."""
    (method,) = [m for m in did_document["verificationMethod"] if m["id"].endswith("#atproto")]
    assert method["type"] == "Multikey"
    multikey = method["publicKeyMultibase"]
    base, raw = libipld.decode_multibase(multikey)
    assert base == "z"
    assert raw[:2] == b"\xe7\x01", "a secp256k1 multicodec key"
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), raw[2:])


class AppReceiver(Receiver):
    """The app's ``money.atmosphere.event.receive``: answers 401 to any call it cannot verify."""

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        super().__init__(fail=1)
        self.key = key
        self.seen_jtis: set[str] = set()
        self.refused: list[str] = []
        self.claims: list[dict[str, Any]] = []

    def refuse(self, why: str) -> int:
        self.refused.append(why)
        return 401

    def verify(self, headers: dict[str, str], body: bytes) -> int:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token.count(".") != 2:
            return self.refuse("no bearer token")
        head, payload, signature = token.split(".")
        header, claims, sig = json.loads(unb64(head)), json.loads(unb64(payload)), unb64(signature)
        if header.get("alg") != "ES256K" or len(sig) != 64:
            return self.refuse("not ES256K")
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        if s > SECP256K1_ORDER // 2:
            return self.refuse("high-S signature")
        try:
            self.key.verify(
                encode_dss_signature(r, s), f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return self.refuse("bad signature")
        now = time.time()
        if (claims.get("iss"), claims.get("aud"), claims.get("lxm")) != (
            SERVICE_DID,
            f"{APP}#AtmEventReceiver",
            RECEIVE,
        ):
            return self.refuse("wrong iss, aud or lxm")
        if not now < claims["exp"] <= now + 120:
            return self.refuse("expired or too long-lived")
        if claims["jti"] in self.seen_jtis:
            return self.refuse("replayed jti")
        self.seen_jtis.add(claims["jti"])
        envelope = json.loads(body)
        for header_name, field in (
            ("atm-delivery-id", "id"),
            ("atm-event", "type"),
            ("atm-api-version", "apiVersion"),
            ("atm-environment", "environment"),
        ):
            if header_name in headers and headers[header_name] != envelope[field]:
                return self.refuse(f"{header_name} differs from the envelope")
        self.claims.append(claims)
        return 200


async def test_lifecycle_events_reach_an_xrpc_receiver(database_url: str, tmp_path: Path) -> None:
    async with running_harness(
        database_url, tmp_path, webhook_backoff_base_seconds=0.05, webhook_poll_interval_seconds=0.05
    ) as h:
        async with httpx.AsyncClient(base_url=h.server.url) as http:
            document = (await http.get("/.well-known/did.json")).json()
        assert document["id"] == SERVICE_DID
        receiver = AppReceiver(service_key(document))
        await receiver.start()
        try:
            app = await receiving_app(h.settings.did_docs, receiver.url.removesuffix("/webhooks"))
            code, out, err = await tickets_command(
                h.settings, "app", "add", "--did", APP, "--environment", "test", "--delivery", "xrpc"
            )
            assert code == 0, err
            assert "whsec_" not in out
            client = AppClient(h.server.url, app, acts_for={ORGANIZER: h.identity(ORGANIZER)})
            config = await client.ok("money.atmosphere.app.getConfig")
            assert config["webhook"] == {"configured": True, "paused": False, "delivery": "xrpc"}
            event = await sdk_event(client)
            tier = await sdk_tier(client, event["uri"], unitAmount=0)
            buyer = h.identity("did:plc:receiverbuyer000000000000")
            await client.ok(
                "claimFreeTicket",
                {
                    "tierId": tier["id"],
                    "buyerDid": buyer.did,
                    "buyerAssertionJwt": buyer_assertion(buyer, "tickets.atmosphere.claimFreeTicket"),
                },
            )

            async def both_delivered() -> bool:
                return {"ticket.hold.created", "tickets.issued"} <= {
                    r.event_type for r in receiver.requests if r.status == 200
                }

            await poll(both_delivered)
            await client.aclose()
        finally:
            await receiver.stop()

    delivered = [r for r in receiver.requests if r.status == 200]
    assert {r.headers[":path"] for r in receiver.requests} == {f"/xrpc/{RECEIVE}"}
    first_try = receiver.requests[0]
    assert first_try.status == 500  # the app failed once …
    retried = [r for r in delivered if r.delivery_id == first_try.delivery_id]
    assert len(retried) == 1 and retried[0].body == first_try.body  # … the same message came again
    assert receiver.refused == [], "every call verified, and no token came twice"
    assert len(receiver.seen_jtis) == len(receiver.requests)
    for request in delivered:
        body = json.loads(request.body)
        assert body["id"] == request.delivery_id
        assert "atm-signature" not in request.headers
        data = shape(body["data"], LIFECYCLE_TOP, "data")
        assert data["eventUri"] == event["uri"]
        assert data["$type"].startswith(f"{EVENT_TYPE_BASE}#")

    # Replayed as it was, a delivery is refused: its token was spent.
    replay = delivered[0]
    replayed_status = receiver.verify(dict(replay.headers), replay.body)
    assert (replayed_status, receiver.refused) == (401, ["replayed jti"])


async def receiving_app(did_docs: Path | None, endpoint: str) -> Identity:
    """The app's identity, its DID document naming its receiver as ``#AtmEventReceiver``."""
    assert did_docs is not None
    key = SigningKey.generate()
    document = key.did_document(APP)
    document["service"] = [
        {"id": "#AtmEventReceiver", "type": "AtmEventReceiver", "serviceEndpoint": endpoint}
    ]
    (did_docs / "receiver-app.json").write_text(json.dumps(document))
    return Identity(APP, key)

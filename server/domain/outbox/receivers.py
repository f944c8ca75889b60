"""XRPC receiver delivery: the alternative to HMAC webhooks, chosen per app.

Each delivery is ``POST <endpoint>/xrpc/money.atmosphere.event.receive`` with the same envelope
as a webhook, where ``<endpoint>`` is the ``#AtmEventReceiver`` service of the app's DID document,
authorized by a fresh service-auth JWT this service signs with its own key (``iss`` = the service
DID, ``aud`` = ``<appDid>#AtmEventReceiver``, ``lxm`` = the method). The key is published as the
``#atproto`` Multikey of the service's DID document (``/.well-known/did.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.atproto.client import service_endpoint
from server.auth.did import DidResolutionError, DidResolver
from server.auth.signing import SigningKey, service_jwt
from server.keyfiles import read_or_create
from server.settings import Settings

RECEIVE_NSID = "money.atmosphere.event.receive"
RECEIVER_SERVICE_ID = "#AtmEventReceiver"
SIGNING_KEY_FILE = "service-signing-key.pem"
TOKEN_LIFETIME_S = 60


def load_service_signing_key(settings: Settings) -> SigningKey:
    """``TICKETS_SERVICE_SIGNING_KEY`` (hex of a 32-byte secp256k1 private key), else a key file
    made once in the data folder (readable by its owner only)."""
    if settings.service_signing_key:
        try:
            return SigningKey.from_private_bytes(bytes.fromhex(settings.service_signing_key))
        except ValueError:
            raise SystemExit("TICKETS_SERVICE_SIGNING_KEY must be 32 bytes, hex-encoded") from None
    pem = read_or_create(settings.data_dir / SIGNING_KEY_FILE, lambda: SigningKey.generate("ES256K").to_pem())
    return SigningKey.from_pem(pem)


@dataclass(frozen=True)
class XrpcReceivers:
    """Where an app's XRPC receiver is, and the token that lets this service call it."""

    resolver: DidResolver
    key: SigningKey
    service_did: str

    async def endpoint(self, app_did: str) -> str:
        """The receiver method's URL; raises :class:`DidResolutionError` when the app's DID document
        cannot be read or names no ``#AtmEventReceiver`` service."""
        document = await self.resolver.resolve(app_did)
        base = service_endpoint(document, RECEIVER_SERVICE_ID)
        if base is None:
            raise DidResolutionError(f"the DID document of {app_did} names no {RECEIVER_SERVICE_ID} service")
        return f"{base}/xrpc/{RECEIVE_NSID}"

    def authorization(self, app_did: str, now_s: float) -> str:
        """A fresh ``Bearer`` service-auth JWT for one delivery attempt (its own ``jti``)."""
        token = service_jwt(
            self.key,
            iss=self.service_did,
            aud=f"{app_did}{RECEIVER_SERVICE_ID}",
            lxm=RECEIVE_NSID,
            lifetime_s=TOKEN_LIFETIME_S,
            now_s=now_s,
        )
        return f"Bearer {token}"

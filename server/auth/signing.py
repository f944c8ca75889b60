"""The signing side of service auth: the service's own key, its DID document entry and the
service-auth JWTs it sends when it calls an app's XRPC receiver.

Playing a calling app (tokens with any claim overridden, for tests, the demo and the benchmarks) is
:mod:`server.devtools`'s job, on top of this module.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from server.auth.multikey import (
    JwtAlg,
    PublicKey,
    curve_for,
    curve_order,
    encode_multikey,
    new_curve,
)

_SCALAR_LENGTH = 32


class SigningKey:
    """A secp256k1 (``ES256K``) or P-256 (``ES256``) private key that signs the atproto way."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self.alg: JwtAlg = curve_for(private_key)
        self._key = private_key
        self.public_key = PublicKey(key=private_key.public_key(), alg=self.alg)

    @classmethod
    def generate(cls, alg: JwtAlg = "ES256K") -> SigningKey:
        """A fresh random key on the curve of ``alg``."""
        return cls(ec.generate_private_key(new_curve(alg)))

    @classmethod
    def from_private_bytes(cls, data: bytes, alg: JwtAlg = "ES256K") -> SigningKey:
        """Load a 32-byte big-endian private scalar."""
        if len(data) != _SCALAR_LENGTH:
            raise ValueError("a private key is 32 bytes")
        return cls(ec.derive_private_key(int.from_bytes(data, "big"), new_curve(alg)))

    @classmethod
    def from_pem(cls, data: bytes | str) -> SigningKey:
        """Load an unencrypted PEM private key (PKCS#8 or SEC1)."""
        raw = data.encode() if isinstance(data, str) else data
        key = serialization.load_pem_private_key(raw, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the PEM does not hold an elliptic-curve private key")
        return cls(key)

    def private_bytes(self) -> bytes:
        """The 32-byte big-endian private scalar."""
        return self._key.private_numbers().private_value.to_bytes(_SCALAR_LENGTH, "big")

    def to_pem(self) -> bytes:
        """The key as an unencrypted PKCS#8 PEM."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_multikey(self) -> str:
        """The public key as a ``z...`` Multikey."""
        return encode_multikey(self.public_key)

    def did_document(self, did: str) -> dict[str, Any]:
        """A minimal atproto DID document naming this key as ``#atproto``."""
        return {
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
            ],
            "id": did,
            "verificationMethod": [
                {
                    "id": f"{did}#atproto",
                    "type": "Multikey",
                    "controller": did,
                    "publicKeyMultibase": self.public_multikey,
                }
            ],
        }

    def sign(self, message: bytes) -> bytes:
        """ECDSA-SHA256 over ``message`` as raw 64-byte ``r || s``, normalised to low-S."""
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        order = curve_order(self.alg)
        if s > order // 2:
            s = order - s
        return r.to_bytes(_SCALAR_LENGTH, "big") + s.to_bytes(_SCALAR_LENGTH, "big")


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign_jws(key: SigningKey, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """Sign exactly the given header and claims as a compact JWS (no defaults added)."""
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def jwt_header(key: SigningKey) -> dict[str, Any]:
    return {"typ": "JWT", "alg": key.alg}


def service_claims(*, iss: str, aud: str, lxm: str, lifetime_s: int, now_s: float) -> dict[str, Any]:
    """The claims of an atproto service-auth JWT issued at ``now_s``, with a fresh random ``jti``."""
    issued_at = int(now_s)
    return {
        "iat": issued_at,
        "iss": iss,
        "aud": aud,
        "exp": issued_at + lifetime_s,
        "jti": secrets.token_hex(16),
        "lxm": lxm,
    }


def service_jwt(key: SigningKey, *, iss: str, aud: str, lxm: str, lifetime_s: int, now_s: float) -> str:
    """An atproto service-auth JWT signed by ``key``: how this service authorizes its own calls."""
    claims = service_claims(iss=iss, aud=aud, lxm=lxm, lifetime_s=lifetime_s, now_s=now_s)
    return sign_jws(key, jwt_header(key), claims)

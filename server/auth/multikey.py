"""atproto public keys: multicodec ``Multikey`` strings (base58btc by libipld) and raw ECDSA signatures.

A Multikey is ``"z" + base58btc(varint(codec) + compressed SEC1 point)``. atproto uses two curves:
secp256k1 (codec ``0xe7``, JWT alg ``ES256K``) and NIST P-256 (codec ``0x1200``, JWT alg ``ES256``).
Signatures are the raw 64-byte ``r || s`` form over SHA-256, and only the low-S form is valid.
secp256k1 signatures are checked with libsecp256k1 (``coincurve``), about ten times faster than
OpenSSL's generic curve code; P-256 ones with OpenSSL (``cryptography``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, get_args

import coincurve
import libipld
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

JwtAlg = Literal["ES256K", "ES256"]
JWT_ALGS: tuple[JwtAlg, ...] = get_args(JwtAlg)


@dataclass(frozen=True)
class _Curve:
    alg: JwtAlg
    prefix: bytes  # multicodec code, varint-encoded
    order: int
    make: type[ec.EllipticCurve]


_CURVES: dict[JwtAlg, _Curve] = {
    "ES256K": _Curve(
        alg="ES256K",
        prefix=b"\xe7\x01",  # secp256k1-pub 0xe7
        order=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
        make=ec.SECP256K1,
    ),
    "ES256": _Curve(
        alg="ES256",
        prefix=b"\x80\x24",  # p256-pub 0x1200
        order=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        make=ec.SECP256R1,
    ),
}

SIGNATURE_LENGTH = 64
_COMPRESSED_POINT_LENGTH = 33


class MultikeyError(ValueError):
    """A string is not a valid Multikey for a supported curve."""


def curve_order(alg: JwtAlg) -> int:
    """The group order ``n`` of the curve behind a JWT alg."""
    return _CURVES[alg].order


def new_curve(alg: JwtAlg) -> ec.EllipticCurve:
    """The ``cryptography`` curve object behind a JWT alg."""
    return _CURVES[alg].make()


def curve_for(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> JwtAlg:
    """The JWT alg of a ``cryptography`` EC key; :class:`MultikeyError` for other curves."""
    for curve in _CURVES.values():
        if isinstance(key.curve, curve.make):
            return curve.alg
    raise MultikeyError(f"unsupported curve {key.curve.name}")


def is_canonical_signature(alg: JwtAlg, signature: bytes) -> bool:
    """True when ``signature`` is 64 bytes ``r || s`` with ``1 <= r < n`` and ``1 <= s <= n/2``."""
    if len(signature) != SIGNATURE_LENGTH:
        return False
    order = _CURVES[alg].order
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    return 1 <= r < order and 1 <= s <= order // 2


@dataclass(frozen=True)
class PublicKey:
    """A verifying key together with the JWT alg it signs with."""

    key: ec.EllipticCurvePublicKey
    alg: JwtAlg
    _secp256k1: coincurve.PublicKey | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if curve_for(self.key) != self.alg:
            raise MultikeyError(f"key curve does not match alg {self.alg}")
        secp256k1 = coincurve.PublicKey(self.compressed()) if self.alg == "ES256K" else None
        object.__setattr__(self, "_secp256k1", secp256k1)

    def compressed(self) -> bytes:
        """The 33-byte compressed SEC1 point."""
        return self.key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Check a raw low-S ``r || s`` ECDSA-SHA256 signature over ``message``."""
        if not is_canonical_signature(self.alg, signature):
            return False
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        if self._secp256k1 is not None:
            return bool(self._secp256k1.verify(der, hashlib.sha256(message).digest(), hasher=None))
        try:
            self.key.verify(der, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def decode_multikey(value: str) -> PublicKey:
    """Parse a ``z...`` Multikey holding a compressed secp256k1 or P-256 point."""
    if not value.startswith("z"):
        raise MultikeyError("multikey must be base58btc (start with 'z')")
    try:
        raw = libipld.decode_multibase(value)[1]
    except ValueError as exc:
        raise MultikeyError("multikey is not valid base58btc") from exc
    for curve in _CURVES.values():
        if raw.startswith(curve.prefix):
            point = raw[len(curve.prefix) :]
            if len(point) != _COMPRESSED_POINT_LENGTH or point[0] not in (2, 3):
                raise MultikeyError(f"{curve.alg} multikey must hold a compressed point")
            try:
                key = ec.EllipticCurvePublicKey.from_encoded_point(curve.make(), point)
            except ValueError as exc:
                raise MultikeyError(f"{curve.alg} multikey holds an invalid point") from exc
            return PublicKey(key=key, alg=curve.alg)
    raise MultikeyError("multikey codec is neither secp256k1-pub nor p256-pub")


def encode_multikey(public_key: PublicKey) -> str:
    """Format a public key as a ``z...`` Multikey (compressed point)."""
    return libipld.encode_multibase("z", _CURVES[public_key.alg].prefix + public_key.compressed())

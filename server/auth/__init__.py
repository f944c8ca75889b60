"""Caller authentication: atproto service-auth JWTs verified against the caller's DID document."""

from server.auth.did import DidResolutionError, DidResolver
from server.auth.multikey import PublicKey, decode_multikey, encode_multikey
from server.auth.service_jwt import ServiceJwtClaims, verify_service_jwt

__all__ = [
    "DidResolutionError",
    "DidResolver",
    "PublicKey",
    "ServiceJwtClaims",
    "decode_multikey",
    "encode_multikey",
    "verify_service_jwt",
]

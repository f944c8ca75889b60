"""Verification of the atproto service-auth JWTs that calling apps send as ``Bearer`` tokens.

A token is a compact JWS signed with ES256K or ES256 (raw low-S ``r || s``) by the key named
``#atproto`` in the DID document of its issuer. The claims bind it to this service (``aud``), to
one XRPC method (``lxm``) and to a short lifetime (``exp``); ``jti`` makes it single-use: the
caller records it once verified (``server.domain.apps.spend_token``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from server.auth.did import DidResolutionError, DidResolver
from server.auth.multikey import JWT_ALGS, JwtAlg, is_canonical_signature
from server.errors import (
    AuthenticationRequired,
    BadJwt,
    BadJwtAudience,
    BadJwtLexiconMethod,
    BadJwtSignature,
    JwtExpired,
)
from server.wire import contains_nul

MAX_TOKEN_LENGTH = 8192
MAX_JTI_LENGTH = 200
_MAX_DID_LENGTH = 2048
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
# An atproto DID, optionally followed by a service id fragment such as ``#atproto_labeler``.
_ISS = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-](?:#[A-Za-z0-9._~-]+)?")


@dataclass(frozen=True)
class ServiceJwtClaims:
    """The verified claims of a service-auth JWT."""

    iss: str
    aud: str
    lxm: str | None
    exp: int
    iat: int | None
    jti: str | None

    @property
    def did(self) -> str:
        """The issuer DID without its service fragment."""
        return self.iss.partition("#")[0]


@dataclass(frozen=True)
class _Jws:
    alg: JwtAlg
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


async def verify_service_jwt(
    token: str,
    *,
    audiences: Collection[str],
    lxm: str | tuple[str, ...],
    resolver: DidResolver,
    now: float | None = None,
    max_lifetime_s: int = 300,
    clock_skew_s: int = 30,
    require_jti: bool = True,
) -> ServiceJwtClaims:
    """Verify a service-auth JWT for the XRPC method ``lxm`` (or one of several) and return its claims.

    Raises a :class:`~server.errors.AuthError` subclass naming the first problem found.
    Whether the ``jti`` was seen before is the caller's to check, once the token verified.
    """
    jws = _parse(token)
    claims = _check_claims(
        jws.payload,
        audiences=audiences,
        lxm=lxm,
        now=time.time() if now is None else now,
        max_lifetime_s=max_lifetime_s,
        clock_skew_s=clock_skew_s,
        require_jti=require_jti,
    )
    await _check_signature(jws, claims.did, resolver)
    return claims


def unverified_issuer(token: str) -> str:
    """The ``iss`` a token claims, before any verification: lets a caller refuse unknown issuers
    without resolving (and so fetching) an arbitrary DID."""
    return _issuer(_parse(token).payload)


def _issuer(payload: dict[str, Any]) -> str:
    iss = payload.get("iss")
    if not isinstance(iss, str) or len(iss) > _MAX_DID_LENGTH or not _ISS.fullmatch(iss):
        raise BadJwt("the JWT iss claim must be the calling app's DID")
    return iss


def _parse(token: str) -> _Jws:
    if not token:
        raise AuthenticationRequired("a service-auth bearer token is required")
    if len(token) > MAX_TOKEN_LENGTH:
        raise BadJwt(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3 or not all(_B64URL.fullmatch(part) for part in parts):
        raise BadJwt("the token is not a compact JWS of three unpadded base64url parts")
    header = _json_object(parts[0], "header")
    alg = header.get("alg")
    if alg not in JWT_ALGS:
        raise BadJwt("unsupported JWT alg: only ES256K and ES256 are accepted")
    if header.get("typ", "JWT") != "JWT":
        raise BadJwt("the JWT typ must be JWT")
    if "crit" in header:
        raise BadJwt("critical JWT header extensions are not supported")
    return _Jws(
        alg=alg,
        payload=_json_object(parts[1], "payload"),
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        signature=_b64decode(parts[2], "signature"),
    )


def _b64decode(part: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error as exc:
        raise BadJwt(f"the JWT {what} is not valid base64url") from exc


def _json_object(part: str, what: str) -> dict[str, Any]:
    data = _b64decode(part, what)
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadJwt(f"the JWT {what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise BadJwt(f"the JWT {what} is not a JSON object")
    if contains_nul(value):
        raise BadJwt(f"the JWT {what} has a NUL character")
    return value


def _int_claim(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadJwt(f"the JWT {name} claim must be an integer")
    return value


def _check_claims(
    payload: dict[str, Any],
    *,
    audiences: Collection[str],
    lxm: str | tuple[str, ...],
    now: float,
    max_lifetime_s: int,
    clock_skew_s: int,
    require_jti: bool,
) -> ServiceJwtClaims:
    iss = _issuer(payload)
    aud = payload.get("aud")
    if not isinstance(aud, str) or aud not in audiences:
        raise BadJwtAudience("the JWT aud claim does not name this service")
    accepted = (lxm,) if isinstance(lxm, str) else lxm
    method = payload.get("lxm")
    if method is None:
        raise BadJwtLexiconMethod(f"the JWT has no lxm claim; expected {' or '.join(accepted)}")
    if method not in accepted:
        raise BadJwtLexiconMethod(f"the JWT lxm claim must be {' or '.join(accepted)}")
    exp = _int_claim(payload, "exp")
    if exp is None:
        raise BadJwt("the JWT exp claim is required")
    if exp <= now:
        raise JwtExpired("the JWT has expired")
    if exp - now > max_lifetime_s:
        raise BadJwt(f"the JWT expires more than {max_lifetime_s} s from now")
    iat = _int_claim(payload, "iat")
    if iat is not None:
        if iat > now + clock_skew_s:
            raise BadJwt("the JWT iat claim is in the future")
        if exp - iat > max_lifetime_s:
            raise BadJwt(f"the JWT lifetime (exp - iat) exceeds {max_lifetime_s} s")
    jti = payload.get("jti")
    if jti is None and require_jti:
        raise BadJwt("the JWT jti claim is required")
    if jti is not None and (not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH):
        raise BadJwt(f"the JWT jti claim must be a string of 1 to {MAX_JTI_LENGTH} characters")
    return ServiceJwtClaims(iss=iss, aud=aud, lxm=method, exp=exp, iat=iat, jti=jti)


async def _check_signature(jws: _Jws, did: str, resolver: DidResolver) -> None:
    """Verify against the issuer's key; on failure re-resolve the DID once (keys rotate)."""
    if not is_canonical_signature(jws.alg, jws.signature):
        raise BadJwtSignature("the JWT signature must be 64 bytes r || s in low-S form")
    for fresh in (False, True):
        try:
            key = await resolver.signing_key(did, fresh=fresh)
        except DidResolutionError as exc:
            raise BadJwt(f"cannot get the issuer's signing key: {exc}") from exc
        if key.alg == jws.alg and key.verify(jws.signing_input, jws.signature):
            return
    if key.alg != jws.alg:
        raise BadJwtSignature(f"the JWT alg is {jws.alg} but the issuer's key is {key.alg}")
    raise BadJwtSignature("the JWT signature does not verify with the issuer's #atproto key")

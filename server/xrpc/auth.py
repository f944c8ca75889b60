"""Caller authentication for XRPC calls: the app's service-auth JWT, its registration, and the
organizer and buyer assertions some methods carry."""

from __future__ import annotations

from typing import Any

from server.auth.service_jwt import unverified_issuer, verify_service_jwt
from server.domain.apps import check_environment, spend_token
from server.domain.caller import Caller
from server.domain.errors import (
    AuthenticationRequired,
    AuthError,
    OrganizerAssertionInvalid,
    UserDidMismatch,
)
from server.xrpc.framework import Services

DEFAULT_ENVIRONMENT = "live"


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationRequired("an Authorization: Bearer <service-auth JWT> header is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired("the Authorization header must be 'Bearer <service-auth JWT>'")
    return token.strip()


async def _assertion_issuer(services: Services, token: str, nsid: str) -> str:
    claims = await verify_service_jwt(
        token,
        audiences=services.settings.audiences,
        lxm=nsid,
        resolver=services.resolver,
        max_lifetime_s=services.settings.jwt_max_lifetime_seconds,
    )
    return claims.did


async def verified_organizer(services: Services, nsid: str, params: dict[str, Any]) -> str | None:
    """The organizer DID proven by ``organizerAssertionJwt``, when one is sent."""
    token = params.get("organizerAssertionJwt")
    if token is None:
        return None
    try:
        issuer = await _assertion_issuer(services, token, nsid)
    except AuthError as exc:
        raise OrganizerAssertionInvalid(f"organizerAssertionJwt: {exc.message}") from None
    if issuer != params.get("organizerDid"):
        raise OrganizerAssertionInvalid("organizerAssertionJwt was not issued by organizerDid")
    return issuer


async def verify_buyer(services: Services, nsid: str, buyer_did: str, token: str) -> None:
    """A buyer assertion must be the buyer's own token for this very method."""
    try:
        issuer = await _assertion_issuer(services, token, nsid)
    except AuthError as exc:
        raise UserDidMismatch(f"buyerAssertionJwt: {exc.message}") from None
    if issuer != buyer_did:
        raise UserDidMismatch("buyerAssertionJwt was not issued by buyerDid")


async def authenticate(
    services: Services, nsid: str, authorization: str | None, params: dict[str, Any]
) -> Caller:
    """The registered app behind the call. Registration is checked on the claimed issuer first, so
    that unknown callers never make this service resolve (fetch) a DID of their choosing. Once the
    token verified, one statement spends it and checks that the app is still enabled."""
    token = bearer_token(authorization)
    environment = check_environment(params.get("environment") or DEFAULT_ENVIRONMENT)
    app_id = await services.apps.app_id(services.db, unverified_issuer(token), environment)
    claims = await verify_service_jwt(
        token,
        audiences=services.settings.audiences,
        lxm=nsid,
        resolver=services.resolver,
        max_lifetime_s=services.settings.jwt_max_lifetime_seconds,
    )
    await services.db.autocommit(lambda driver: spend_token(driver, app_id, claims))
    organizer = await verified_organizer(services, nsid, params)
    return Caller(app_id=app_id, app_did=claims.did, environment=environment, organizer_did=organizer)

"""Caller authentication for XRPC calls: the app's service-auth JWT, its registration, and the
organizer and buyer assertions some methods carry."""

from __future__ import annotations

from typing import Any

from server.auth.service_jwt import ServiceJwtClaims, unverified_issuer, verify_service_jwt
from server.domain import consents
from server.domain.apps import check_environment, spend_assertion, spend_token
from server.domain.caller import Caller
from server.errors import (
    AuthenticationRequired,
    AuthError,
    BadJwt,
    OrganizerAssertionInvalid,
    OrganizerConsentNotFound,
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


async def _spent_assertion(
    services: Services, token: str, lxm: str | tuple[str, ...], issuer: str
) -> ServiceJwtClaims:
    """A verified assertion by ``issuer`` for ``lxm``, spent: its ``jti`` is recorded like a
    caller's token, so it serves once, in every process. The issuer is checked before the DID is
    resolved."""
    if unverified_issuer(token).partition("#")[0] != issuer:
        raise BadJwt("the assertion was not issued by the DID it is sent for")
    claims = await verify_service_jwt(
        token,
        audiences=services.settings.audiences,
        lxm=lxm,
        resolver=services.resolver,
        max_lifetime_s=services.settings.jwt_max_lifetime_seconds,
    )
    await services.db.autocommit(lambda driver: spend_assertion(driver, claims))
    return claims


async def verified_organizer(
    services: Services, nsid: str, params: dict[str, Any]
) -> ServiceJwtClaims | None:
    """The claims of ``organizerAssertionJwt`` (by ``organizerDid``, for this method), when sent."""
    token = params.get("organizerAssertionJwt")
    if token is None:
        return None
    try:
        return await _spent_assertion(services, token, nsid, params.get("organizerDid") or "")
    except AuthError as exc:
        raise OrganizerAssertionInvalid(f"organizerAssertionJwt: {exc.message}") from None


async def verify_buyer(services: Services, lxm: str | tuple[str, ...], buyer_did: str, token: str) -> None:
    """A buyer assertion must be the buyer's own, unused token for one of the methods ``lxm``."""
    try:
        await _spent_assertion(services, token, lxm, buyer_did)
    except AuthError as exc:
        raise UserDidMismatch(f"buyerAssertionJwt: {exc.message}") from None


async def authenticate(
    services: Services, nsid: str, authorization: str | None, params: dict[str, Any]
) -> Caller:
    """The registered app behind the call. Registration is checked on the claimed issuer first, so
    that unknown callers never make this service resolve (fetch) a DID of their choosing. Once the
    token verified, one statement spends it and checks that the app is still enabled; the app's
    settings come from the process's memory unless the app changed since they were read."""
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
    updated_ms = await services.db.autocommit(lambda driver: spend_token(driver, app_id, claims))
    settings = await services.apps.settings(services.db, app_id, updated_ms)
    organizer = await verified_organizer(services, nsid, params)
    return Caller(
        app_id=app_id,
        app_did=claims.did,
        environment=environment,
        settings=settings,
        organizer_did=None if organizer is None else organizer.did,
        organizer_jti=None if organizer is None else organizer.jti,
    )


async def organizer_auth(
    services: Services, nsid: str, authorization: str | None, params: dict[str, Any]
) -> Caller:
    """Organizer methods: the organizer's own single-use service-auth JWT (``iss`` = the organizer's
    DID). Only the DID of an organizer some app holds a consent of is ever resolved."""
    token = bearer_token(authorization)
    environment = check_environment(params.get("environment") or DEFAULT_ENVIRONMENT)
    did = unverified_issuer(token).partition("#")[0]
    if not await consents.known_organizer(services.db, did):
        raise OrganizerConsentNotFound("no app holds a consent of this organizer here")
    claims = await _spent_assertion(services, token, nsid, did)
    return Caller(
        app_id="", app_did=did, environment=environment, organizer_did=did, organizer_jti=claims.jti
    )

"""Organizer methods (our extensions): the organizer lists and revokes the consents its apps hold.
Called with the organizer's own single-use service-auth JWT (:func:`server.xrpc.auth.organizer_auth`)."""

from __future__ import annotations

from typing import Any

from server.domain import consents
from server.xrpc.auth import organizer_auth
from server.xrpc.framework import NAMESPACE, Call, xrpc_method
from server.xrpc.views import consent_view


def _organizer(call: Call) -> str:
    """The organizer ``organizer_auth`` proved (the caller's DID)."""
    return call.caller.app_did


@xrpc_method(NAMESPACE + "listOrganizerConsents", auth=organizer_auth)
async def list_organizer_consents(call: Call, _params: dict[str, Any]) -> dict[str, Any]:
    found = await consents.organizer_consents(call.db, _organizer(call), call.caller.environment)
    return {"consents": [consent_view(consent) for consent in found]}


@xrpc_method(NAMESPACE + "revokeOrganizerConsent", auth=organizer_auth)
async def revoke_organizer_consent(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    revoked = await consents.revoke_consent(
        call.db, _organizer(call), params["appDid"], call.caller.environment, call.now_ms
    )
    return {"consent": consent_view(revoked)}

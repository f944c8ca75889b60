"""Public discovery: what anyone (an app's ticket discovery, a crawler) may list without a token."""

from __future__ import annotations

from typing import Any

from server.domain.caller import Caller
from server.domain.publishing.discovery import public_records
from server.domain.publishing.records import TICKETED_EVENT
from server.xrpc.auth import DEFAULT_ENVIRONMENT
from server.xrpc.framework import NAMESPACE, Call, Services, xrpc_method
from server.xrpc.views import public_config_view


async def public_auth(
    _services: Services, _nsid: str, _authorization: str | None, params: dict[str, Any]
) -> Caller:
    """No token: the caller is anyone (limited per client address by the dispatch)."""
    return Caller(app_id="", app_did="", environment=params.get("environment") or DEFAULT_ENVIRONMENT)


@xrpc_method(NAMESPACE + "listPublicConfig", auth=public_auth)
async def list_public_config(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The organizer's published records (``ticketedEvent`` backlinks unless told otherwise) of
    events that are not archived."""
    found, cursor = await public_records(
        call.db,
        environment=call.caller.environment,
        organizer=params["organizer"],
        collections=params.get("collections") or [TICKETED_EVENT],
        event_uri=params.get("eventUri"),
        limit=int(params.get("limit", 50)),
        cursor=params.get("cursor"),
    )
    return public_config_view(found, cursor)

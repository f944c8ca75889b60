"""The service's public identity: its ``did:web`` document and its lexicons, for resolution."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from server.auth.signing import SigningKey
from server.xrpc.framework import Services

SERVICE_ID = "#AttestedNetwork"
SERVICE_TYPE = "AtmosphereTicketsService"


def did_document(service_did: str, public_url: str, key: SigningKey) -> dict[str, Any]:
    """``<service DID>#AttestedNetwork`` is the audience apps sign for and the service they name in
    ``atproto-proxy``; ``#atproto`` is the key this service signs its calls to apps' XRPC
    receivers with."""
    return {
        **key.did_document(service_did),
        "service": [{"id": SERVICE_ID, "type": SERVICE_TYPE, "serviceEndpoint": public_url.rstrip("/")}],
    }


@get("/.well-known/did.json", sync_to_thread=False)
def well_known_did(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    services: Services = request.app.state.services
    settings = services.settings
    if not settings.service_did.startswith("did:web:"):
        return Response({"error": "NotFound", "message": "this service is not a did:web"}, status_code=404)
    return Response(did_document(settings.service_did, settings.public_url, services.signing_key))


@get("/.well-known/atproto-lexicon/{nsid:str}", sync_to_thread=False)
def lexicon_document(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Every lexicon this service publishes or pins, by NSID."""
    services: Services = request.app.state.services
    document = services.lexicons.document(request.path_params["nsid"])
    if document is None:
        return Response({"error": "LexiconNotFound", "message": "no such lexicon here"}, status_code=404)
    return Response(document)


ROUTES = [well_known_did, lexicon_document]

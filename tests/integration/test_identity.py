"""The service's identity and published lexicons, and the promise that every served method has a
lexicon and every lexicon method is served."""

from __future__ import annotations

from conftest import Harness

from server.xrpc.framework import METHODS
from server.xrpc.lexicon import LEXICON_DIR, Lexicons


def test_every_lexicon_method_is_served_and_every_served_method_has_a_lexicon() -> None:
    served = set(METHODS)
    published = set(Lexicons.load(LEXICON_DIR).method_nsids())
    assert served == published


async def test_did_document_names_the_service(harness: Harness) -> None:
    response = await harness.app.http.get(f"{harness.server.url}/.well-known/did.json")
    assert response.status_code == 200
    document = response.json()
    assert document["id"] == "did:web:tickets.test"
    (service,) = document["service"]
    assert service["id"] == "#AttestedNetwork" and service["serviceEndpoint"] == "http://127.0.0.1:1"


async def test_lexicons_are_published(harness: Harness) -> None:
    hold = await harness.app.http.get(
        f"{harness.server.url}/.well-known/atproto-lexicon/tickets.atmosphere.createTicketHold"
    )
    assert hold.status_code == 200 and hold.json()["id"] == "tickets.atmosphere.createTicketHold"
    missing = await harness.app.http.get(
        f"{harness.server.url}/.well-known/atproto-lexicon/com.example.nothing"
    )
    assert missing.status_code == 404 and missing.json()["error"] == "LexiconNotFound"

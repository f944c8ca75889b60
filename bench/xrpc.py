"""The calling event app: its key and DID document, signed XRPC requests, and catalog set-up calls."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import httpx

from bench.deploy import SERVICE_DID
from server.auth.signing import SigningKey
from server.devtools import mint_service_jwt

NS = "tickets.atmosphere."
APP_DID = "did:web:bench-app.example"
ORGANIZER_DID = "did:web:organizer.bench"
AUDIENCE = f"{SERVICE_DID}#AttestedNetwork"
ENVIRONMENT = "test"
# Tokens are minted before a timed phase, so they must outlive it (the server allows up to 300 s).
TOKEN_LIFETIME_S = 240


class XrpcError(RuntimeError):
    """A set-up or check call was refused."""


@dataclass(frozen=True)
class Event:
    """A ticketed event: its id here and the AT-URI of its calendar record."""

    id: str
    uri: str


class BenchApp:
    """A registered app signing every call with a fresh service-auth JWT (new ``jti`` each time),
    acting for one organizer, whose assertion its first event carries (that records the consent)."""

    def __init__(self) -> None:
        self.did = APP_DID
        self.key = SigningKey.generate("ES256K")
        self.organizer_key = SigningKey.generate("ES256K")
        self._events = itertools.count(1)
        self._consented = False

    def did_documents(self) -> list[dict[str, Any]]:
        """The app's and the organizer's DID documents, for the server's DID-document folder."""
        return [self.key.did_document(self.did), self.organizer_key.did_document(ORGANIZER_DID)]

    def token(self, nsid: str) -> str:
        return mint_service_jwt(self.key, iss=self.did, aud=AUDIENCE, lxm=nsid, exp_in=TOKEN_LIFETIME_S)

    def procedure(self, client: httpx.AsyncClient, method: str, body: dict[str, Any]) -> httpx.Request:
        """A signed POST, ready to send once (the token is minted now)."""
        nsid = NS + method
        return client.build_request(
            "POST",
            f"/xrpc/{nsid}",
            content=json.dumps({**body, "environment": ENVIRONMENT}).encode(),
            headers={"authorization": f"Bearer {self.token(nsid)}", "content-type": "application/json"},
        )

    def query(self, client: httpx.AsyncClient, method: str, params: dict[str, str]) -> httpx.Request:
        """A signed GET, ready to send once."""
        nsid = NS + method
        return client.build_request(
            "GET",
            f"/xrpc/{nsid}",
            params={**params, "environment": ENVIRONMENT},
            headers={"authorization": f"Bearer {self.token(nsid)}"},
        )

    async def ok(self, client: httpx.AsyncClient, request: httpx.Request) -> dict[str, Any]:
        """Send and answer the JSON output; raise on anything but 200."""
        response = await client.send(request)
        if response.status_code != 200:
            raise XrpcError(f"{request.url.path}: HTTP {response.status_code} {response.text}")
        output: dict[str, Any] = response.json()
        return output

    async def event(self, client: httpx.AsyncClient) -> Event:
        """A new active ticketed event."""
        uri = f"at://{ORGANIZER_DID}/community.lexicon.calendar.event/3kbench{next(self._events):06d}"
        body = {
            "organizerDid": ORGANIZER_DID,
            "event": {"uri": uri, "title": "Bench night", "startsAt": "2030-12-31T20:00:00.000Z"},
            "status": "active",
        }
        if not self._consented:
            nsid = NS + "createTicketEvent"
            body["organizerAssertionJwt"] = mint_service_jwt(
                self.organizer_key, iss=ORGANIZER_DID, aud=AUDIENCE, lxm=nsid, exp_in=TOKEN_LIFETIME_S
            )
        out = await self.ok(client, self.procedure(client, "createTicketEvent", body))
        self._consented = True
        return Event(out["event"]["id"], uri)

    async def tier_in_own_group(
        self, client: httpx.AsyncClient, event: Event, capacity: int, max_per_order: int = 10
    ) -> str:
        """A capacity group of ``capacity`` holding one tier of the same size; answers the tier id."""
        scope = {"organizerDid": ORGANIZER_DID, "event": {"uri": event.uri}}
        group = await self.ok(
            client,
            self.procedure(
                client, "createCapacityGroup", {**scope, "name": "Hall", "totalCapacity": capacity}
            ),
        )
        tier_body = {
            **scope,
            "title": "Standard",
            "currency": "eur",
            "unitAmount": 2500,
            "quantityTotal": capacity,
            "maxPerOrder": max_per_order,
            "capacityGroupId": group["capacityGroup"]["id"],
        }
        out = await self.ok(client, self.procedure(client, "createTicketTier", tier_body))
        tier_id: str = out["tier"]["id"]
        return tier_id

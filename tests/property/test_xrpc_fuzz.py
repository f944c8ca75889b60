"""Fuzzing the XRPC surface over real HTTP: valid-looking bodies with fields dropped, replaced by any
JSON value, or bent at their lexicon bounds, sent with a valid caller token so they reach the
handlers. No input may produce a 5xx or a non-JSON answer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from conftest import APP_DID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.catalog import ORGANIZER
from support.server import LEXICONS, AppClient, Identity, LiveServer, make_settings, register

NS = "tickets.atmosphere."

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "did:plc:x", "at://did:plc:x/a/b", "2026-01-01T00:00:00Z", "eur"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def seeds(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    event = {"uri": ids["uri"], "title": "Fuzz night"}
    return {
        "createTicketEvent": {"organizerDid": ORGANIZER, "event": event, "status": "active"},
        "updateTicketEvent": {"eventId": ids["event"], "title": "x", "startsAt": None, "status": "active"},
        "createCapacityGroup": {"organizerDid": ORGANIZER, "event": event, "name": "g", "totalCapacity": 5},
        "updateCapacityGroup": {"capacityGroupId": ids["group"], "totalCapacity": 7, "status": "active"},
        "createTicketTier": {
            "organizerDid": ORGANIZER,
            "event": event,
            "title": "t",
            "currency": "eur",
            "unitAmount": 10,
            "quantityTotal": 5,
            "capacityGroupId": ids["group"],
            "saleStartsAt": "2026-01-01T00:00:00Z",
            "metadata": {"a": 1},
        },
        "updateTicketTier": {
            "tierId": ids["tier"],
            "quantityTotal": 9,
            "saleEndsAt": None,
            "currency": "usd",
        },
        "archiveTicketTier": {"tierId": ids["tier2"]},
        "getTicketAvailability": {"eventId": ids["event"], "eventUri": ids["uri"]},
        "previewTicketOrder": {"tierId": ids["tier"], "quantity": 2, "eventId": ids["event"]},
        "createTicketHold": {
            "items": [{"tierId": ids["tier"], "quantity": 1}],
            "eventId": ids["event"],
            "idempotencyKey": "k-1",
            "metadata": {"order": 1},
        },
        "releaseTicketHold": {"holdId": ids["hold"], "reason": "fuzz"},
    }


def mutated(seed: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys = sorted(seed)
    return st.fixed_dictionaries(
        {},
        optional={k: st.one_of(st.just(seed[k]), json_values) for k in keys}
        | {"environment": st.sampled_from(["test", "live", "", "x" * 17])},
    )


def setup_catalog(client: AppClient) -> dict[str, str]:
    async def build() -> dict[str, str]:
        async with httpx.AsyncClient(timeout=30) as http:
            client.http = http
            uri = f"at://{ORGANIZER}/community.lexicon.calendar.event/3kfuzz"
            made = await client.ok(
                "createTicketTier",
                {
                    "organizerDid": ORGANIZER,
                    "event": {"uri": uri, "title": "Fuzz"},
                    "title": "t",
                    "currency": "eur",
                    "unitAmount": 10,
                    "quantityTotal": 50,
                },
            )
            await client.ok("updateTicketEvent", {"eventId": made["event"]["id"], "status": "active"})
            second = await client.ok(
                "createTicketTier",
                {
                    "organizerDid": ORGANIZER,
                    "event": {"uri": uri},
                    "title": "t2",
                    "currency": "eur",
                    "unitAmount": 10,
                    "quantityTotal": 50,
                    "capacityGroupId": made["capacityGroup"]["id"],
                },
            )
            hold = await client.ok(
                "createTicketHold", {"items": [{"tierId": made["tier"]["id"], "quantity": 1}]}
            )
        return {
            "uri": uri,
            "event": made["event"]["id"],
            "group": made["capacityGroup"]["id"],
            "tier": made["tier"]["id"],
            "tier2": second["tier"]["id"],
            "hold": hold["holdId"],
        }

    return asyncio.run(build())


def test_no_input_produces_a_server_error(database_url: str, tmp_path: Path) -> None:
    app_settings = make_settings(database_url, tmp_path)
    assert app_settings.did_docs is not None
    identity = Identity.create(APP_DID, app_settings.did_docs)
    asyncio.run(register(database_url, APP_DID))
    server = LiveServer(app_settings).start()
    try:
        organizer = Identity.create(ORGANIZER, app_settings.did_docs)
        ids = setup_catalog(AppClient(server.url, identity, acts_for={ORGANIZER: organizer}))
        bodies = seeds(ids)
        methods = st.sampled_from(sorted(bodies))

        with httpx.Client(timeout=30) as http:

            @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
            @given(data=st.data(), method=methods)
            def fuzz(data: st.DataObject, method: str) -> None:
                body = data.draw(mutated(bodies[method]), label="body")
                nsid = NS + method
                headers = {"authorization": f"Bearer {identity.token(nsid)}"}
                url = f"{server.url}/xrpc/{nsid}"
                schema = LEXICONS.method(nsid)
                assert schema is not None
                if schema.kind == "query":
                    params = {k: v if isinstance(v, str) else str(v) for k, v in body.items()}
                    response = http.get(url, params=params, headers=headers)
                else:
                    response = http.post(url, json=body, headers=headers)
                assert response.status_code < 500, (method, body, response.text)
                answer = response.json()
                if response.status_code == 200:
                    LEXICONS.validate_output(nsid, answer)
                else:
                    assert set(answer) >= {"error", "message"}, answer

            fuzz()
    finally:
        server.stop()

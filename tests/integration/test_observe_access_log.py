"""The access log: one line per request with its method, status, duration, request id, caller and
environment; the request id answered in ``X-Request-Id`` and carried into the lifecycle event the
request caused; no personal data in any line."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest
from conftest import APP_DID, running_harness
from support.catalog import active_event, shared_group
from support.webhooks import Receiver, point_webhooks, wait_until

from server.observability import ACCESS_LOGGER, JsonFormatter, TextFormatter

NS = "tickets.atmosphere."
# A name no hexadecimal request id can contain (a random id once held "ada").
NAME = "Ottoline"
EMAIL = "ottoline.quill@example.com"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    return [json.loads(JsonFormatter().format(r)) for r in records]


async def test_each_call_is_one_line_with_its_request_id(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    receiver = Receiver()
    await receiver.start()
    try:
        async with running_harness(database_url, tmp_path, webhook_poll_interval_seconds=0.05) as h:
            await point_webhooks(database_url, APP_DID, receiver.url)
            event = await active_event(h.app)
            _, [tier] = await shared_group(h.app, event, 10, 1)
            hold = await h.app.call(
                "createTicketHold",
                {"items": [{"tierId": tier, "quantity": 1}], "attendees": [{"name": NAME, "email": EMAIL}]},
                headers={"x-request-id": "checkout-42"},
            )
            assert hold.status_code == 200, hold.text
            assert hold.headers["x-request-id"] == "checkout-42"
            async with httpx.AsyncClient(base_url=h.server.url) as http:
                made_up = await http.get(
                    "/xrpc/_health", headers={"x-request-id": "<script>alert(1)</script>"}
                )
                unknown = await http.get(f"/xrpc/{EMAIL}")
                live = await http.get("/healthz")
                no_route = await http.get("/no/such/page")

            async def hold_event_delivered() -> bool:
                return any(r.event_type == "ticket.hold.created" for r in receiver.requests)

            await wait_until(hold_event_delivered, 10, "the hold's lifecycle event")
    finally:
        await receiver.stop()

    # A sane incoming id is kept; another is replaced by a new one; every answer names its id.
    generated = made_up.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    assert unknown.status_code == 404 and live.status_code == 200
    [delivered] = [r for r in receiver.requests if r.event_type == "ticket.hold.created"]
    assert delivered.headers["x-request-id"] == "checkout-42"

    lines = access_lines(caplog)
    by_id = {line["request_id"]: line for line in lines}
    assert len(by_id) == len(lines)  # one line per request, each with its own id
    for response in (hold, made_up, unknown, live, no_route):
        assert response.headers["x-request-id"] in by_id
    created = by_id["checkout-42"]
    assert created["nsid"] == NS + "createTicketHold"
    assert created["method"] == "POST"
    assert created["status"] == 200
    assert created["did"] == APP_DID
    assert created["environment"] == "test"
    assert isinstance(created["duration_ms"], float) and created["duration_ms"] > 0
    assert by_id[generated]["path"] == "/xrpc/_health" and "did" not in by_id[generated]
    assert by_id[unknown.headers["x-request-id"]]["status"] == 404
    assert by_id[live.headers["x-request-id"]]["path"] == "/healthz"
    assert by_id[no_route.headers["x-request-id"]]["status"] == 404  # no route matched: still logged

    # Neither format shows the buyer's details, even when a path carries them.
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    rendered = [f(r) for r in records for f in (JsonFormatter().format, TextFormatter().format)]
    assert rendered and not [line for line in rendered if NAME.lower() in line.lower() or "@" in line]
    assert by_id[unknown.headers["x-request-id"]]["path"] == "/xrpc/[email]"


async def test_the_access_log_can_be_off(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with running_harness(database_url, tmp_path, access_log=False) as h:
        answer = await h.app.call("listTicketEvents", {})
    assert answer.headers["x-request-id"]
    assert access_lines(caplog) == []

"""A session full of known personal values and secrets (emails, names, a checkout token, JWTs, a
device credential, a webhook secret) goes through error paths, database errors among them (unique
violations through SQLAlchemy and through the driver, a NUL the database refuses); none of those
values appears in anything the server logged."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from conftest import APP_DID, Harness
from hypothesis import given, settings
from hypothesis import strategies as st
from support.catalog import active_event, shared_group

import server.app
from server import log_redaction
from server.db.engine import Database, Driver
from server.db.models import App
from server.domain.common import new_id
from server.log_redaction import redact
from server.xrpc.framework import Services, dispatch

EMAIL = "zoe.quillfeather@example.org"
ATTENDEE_EMAIL = "b.nightingale+door@mail.example.net"
NAME = "Zoë Quillfeather"
ATTENDEE_NAME = "Bartholomew Nightingale-Ossory"
WEBHOOK_SECRET = "whsec_1rW0kB9sQ4vXo2LzP7nYcTe5HjAa8MdU3gFi6Ke0"
DEVICE_CREDENTIAL = "dev_01JD3K4M5N6P7Q8R9S0T1V2W3X.q9Vb7Xz1Lk3Mn5Pq8Rs2Tu4Wv6Yx0Za1Bc3De5Fg7H"

INSERT_APP = (
    "INSERT INTO apps (id, did, environment, name, status, webhook_url, webhook_secret, fee_bps,"
    " fee_flat, fee_to_buyer, created_ms, updated_ms) VALUES (:id, :did, 'test', :name, 'active',"
    " :url, :secret, 0, 0, false, 0, 0)"
)
HOOK = "tickets.atmosphere.releaseTicketHold"


def app_row(name: str, secret: str) -> dict[str, Any]:
    return {
        "id": new_id("app"),
        "did": f"did:web:{NAME}.{EMAIL}",
        "name": name,
        "url": f"https://hooks.example/{ATTENDEE_EMAIL}",
        "secret": secret,
    }


async def failing_database_work(db: Database, reason: str, secret: str) -> None:
    """What a bug in a call could do: database statements carrying personal values that fail."""
    if reason == "orm":  # a unique violation through SQLAlchemy (the registered app again)
        async with db.write() as session:
            session.add(
                App(
                    id=new_id("app"),
                    did=APP_DID,
                    environment="test",
                    name=ATTENDEE_NAME,
                    webhook_url=f"https://hooks.example/{EMAIL}",
                    webhook_secret=secret,
                    created_ms=0,
                    updated_ms=0,
                )
            )
    elif reason == "driver":  # the same row twice straight through the driver: PostgreSQL's DETAIL
        # names the key, which carries the values

        async def twice(driver: Driver) -> None:
            row = app_row(NAME, secret)
            await driver.fetch(INSERT_APP, row)
            await driver.fetch(INSERT_APP, {**row, "id": new_id("app")})

        await db.autocommit(twice)
    elif reason == "nul":  # PostgreSQL refuses NUL in text
        async with db.write() as session:
            session.add(
                App(
                    id=new_id("app"),
                    did=f"did:web:{NAME}.nul",
                    environment="test",
                    name=ATTENDEE_NAME + "\x00",
                    webhook_url=f"https://hooks.example/{EMAIL}",
                    webhook_secret=secret,
                    created_ms=0,
                    updated_ms=0,
                )
            )
        raise RuntimeError("stored")  # SQLite stores it: fail the call all the same


async def test_network_no_personal_data_in_logs(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    event = await active_event(harness.app)
    _, (tier,) = await shared_group(harness.app, event, capacity=5, tiers=1)
    hold = await harness.app.ok(
        "createTicketHold",
        {
            "items": [{"tierId": tier, "quantity": 1}],
            "customerEmail": EMAIL,
            "attendees": [{"name": ATTENDEE_NAME, "email": ATTENDEE_EMAIL}],
            "metadata": {"buyer": NAME},
        },
    )
    checkout = hold["token"]

    async def failing_dispatch(services: Services, authenticate: Any, **call: Any) -> Any:
        reason = json.loads(call["body"] or b"{}").get("reason") if call["nsid"] == HOOK else None
        if reason is not None:
            await failing_database_work(services.db, reason, checkout)
        return await dispatch(services, authenticate, **call)

    jwt = harness.app.identity.token(HOOK)
    values = [EMAIL, ATTENDEE_EMAIL, NAME, ATTENDEE_NAME, checkout, jwt, WEBHOOK_SECRET, DEVICE_CREDENTIAL]

    monkeypatch.setattr(server.app, "dispatch", failing_dispatch)
    for reason in ("orm", "driver", "nul"):
        response = await harness.app.call(HOOK, {"holdId": hold["holdId"], "reason": reason})
        assert response.status_code == 500, response.text
    # Error paths a caller can reach: a NUL in personal fields, a replayed token, a bad device
    # credential, an unknown checkout token.
    nul = await harness.app.call(
        "createTicketHold",
        {
            "items": [{"tierId": tier, "quantity": 1}],
            "customerEmail": EMAIL + "\x00",
            "attendees": [{"name": ATTENDEE_NAME + "\x00", "email": ATTENDEE_EMAIL}],
        },
    )
    assert nul.status_code < 600
    assert (await harness.app.call(HOOK, {"holdId": hold["holdId"]}, token=jwt)).status_code == 200
    assert (await harness.app.call(HOOK, {"holdId": hold["holdId"]}, token=jwt)).status_code == 401
    device = await harness.app.http.get(
        f"{harness.server.url}/xrpc/tickets.atmosphere.pullCheckIns",
        headers={"authorization": f"Bearer {DEVICE_CREDENTIAL}"},
    )
    assert device.status_code in (400, 401, 404)
    logging.getLogger("tickets.webhooks").warning("receiver refused secret %s", WEBHOOK_SECRET)

    logged = caplog.text
    assert logged.count("unhandled error") >= 3  # the database errors were logged…
    for value in values:
        assert value not in logged, value  # …without any of the values
    assert "[parameters:" not in logged and "DETAIL:  Key" not in logged


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"hold for {EMAIL} failed", "hold for [email] failed"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer [redacted]"),
        ("token eyJhbGciOiJFUzI1NksifQ.eyJpc3MiOiJkaWQ6d2ViOngifQ.c2lnbmF0dXJl", "token [jwt]"),
        ("checkout chk_9Yb2mQx7_Lk-3Np0Rs5Tu8Wv1Xy4Za6B", "checkout chk_[redacted]"),
        (DEVICE_CREDENTIAL, "dev_01JD3K4M5N6P7Q8R9S0T1V2W3X.[redacted]"),
        (f"secret {WEBHOOK_SECRET}", "secret whsec_[redacted]"),
        ("pass GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBV", "pass [secret]"),
        (
            f"duplicate key\nDETAIL:  Key (did, environment)=(did:web:{NAME}, test) already exists.\nnext",
            "duplicate key\nDETAIL: redacted\nnext",
        ),
        ("[parameters: ('a', 'b')]", "[parameters: redacted]"),
        (
            f'invalid input syntax for type integer: "{NAME}"',
            'invalid input syntax for type integer: "redacted"',
        ),
        ("hold hold_01JD3K4M5N6P7Q8R9S0T1V2W3X expired", "hold hold_01JD3K4M5N6P7Q8R9S0T1V2W3X expired"),
        ("?eventId=checklist_01JD3K4M5N6P7Q8R9S0T1V2W3X&", "?eventId=checklist_01JD3K4M5N6P7Q8R9S0T1V2W3X&"),
        ("did:plc:ewvi7nxzyoun6zhxrhs64oiz at /xrpc/x", "did:plc:ewvi7nxzyoun6zhxrhs64oiz at /xrpc/x"),
    ],
)
def test_network_redaction(text: str, kept: str) -> None:
    assert redact(text) == kept


FRAGMENTS = [
    EMAIL,
    WEBHOOK_SECRET,
    DEVICE_CREDENTIAL,
    "Bearer x",
    "BASIC y",
    "eyJa.b.c",
    "chk_",
    "dev_9.",
    "[parameters: (1)]",
    "DETAIL: x",
    'value too long for type: "v"',
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBV",
    "hold_01JD3K4M5N6P7Q8R9S0T1V2W3X",
    "request",
    "@",
    " ",
    "\n",
    "/xrpc/tickets.atmosphere.createTicketHold",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=8))
def test_network_redaction_in_one_scan_as_rule_by_rule(parts: list[str]) -> None:
    """The scan that returns a text with nothing to redact as it is changes no answer: redact()
    equals every rule applied in turn, on texts with and without anything to redact."""
    text = "".join(parts)
    expected = text
    for pattern, replacement in log_redaction._RULES:
        expected = pattern.sub(replacement, expected)
    assert redact(text) == expected

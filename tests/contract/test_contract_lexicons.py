"""The lexicon files of the published methods keep their published shapes: the same refs, the same
required fields, the same types, extended only by optional fields (docs/contract.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2] / "lexicons"
DEFS = "tickets.atmosphere.defs"


def document(nsid: str) -> dict[str, Any]:
    path = ROOT.joinpath(*nsid.split(".")).with_suffix(".json")
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded


def definition(ref: str) -> dict[str, Any]:
    nsid, _, name = ref.partition("#")
    found: dict[str, Any] = document(nsid)["defs"][name or "main"]
    return found


def output(nsid: str) -> dict[str, Any]:
    found: dict[str, Any] = definition(nsid)["output"]["schema"]
    return found


def input_schema(nsid: str) -> dict[str, Any]:
    found: dict[str, Any] = definition(nsid)["input"]["schema"]
    return found


S, INT, B = "string", "integer", "boolean"

# Published definitions: required fields, and the type (or ref) of every published property.
PUBLISHED_DEFS: dict[str, tuple[set[str], dict[str, str]]] = {
    "ticketTierSummary": (
        {"id"},
        {"id": S, "title": S, "status": S, "currency": S, "unitAmount": INT, "quantityTotal": INT},
    ),
    "capacityGroupSummary": ({"id"}, {"id": S, "name": S, "status": S, "totalCapacity": INT}),
    "eventSummary": ({"id"}, {"id": S, "uri": S, "title": S, "startsAt": S}),
    "ticketHoldItemRequest": ({"tierId", "quantity"}, {"tierId": S, "quantity": INT}),
    "ticketHoldItem": (
        {"tierId"},
        {"tierId": S, "title": S, "quantity": INT, "unitAmount": INT, "currency": S},
    ),
    "ticketPresentation": (
        set(),
        {
            "iconUrl": S,
            "event": f"{DEFS}#presentationEvent",
            "tier": f"{DEFS}#presentationTier",
            "organizer": f"{DEFS}#presentationOrganizer",
        },
    ),
    "issuedTicket": (
        {"id", "status"},
        {
            "id": S,
            "ticketId": S,
            "tierId": S,
            "eventId": S,
            "eventUri": S,
            "status": S,
            "ticketNumber": S,
            "scanUrl": S,
            "createdAt": S,
            "updatedAt": S,
            "paymentId": S,
            "claimId": S,
        },
    ),
    "issuedTicketWithContext": (
        {"id", "status"},
        {
            "id": S,
            "ticketId": S,
            "status": S,
            "event": f"{DEFS}#eventSummary",
            "tier": f"{DEFS}#ticketTierSummary",
            "presentation": f"{DEFS}#ticketPresentation",
        },
    ),
    "verificationResult": (
        {"valid"},
        {
            "valid": B,
            "reason": S,
            "ticket": f"{DEFS}#issuedTicket",
            "presentation": f"{DEFS}#ticketPresentation",
            "event": f"{DEFS}#eventSummary",
            "tier": f"{DEFS}#ticketTierSummary",
        },
    ),
}

# Published method outputs: the ref (or inline shape) of each property the SDK reads.
EVENT, GROUP, TIER = f"{DEFS}#eventSummary", f"{DEFS}#capacityGroupSummary", f"{DEFS}#ticketTierSummary"
PUBLISHED_OUTPUTS: dict[str, dict[str, str]] = {
    "createTicketEvent": {"event": EVENT},
    "updateTicketEvent": {"event": EVENT},
    "createTicketTier": {"event": EVENT, "capacityGroup": GROUP, "tier": TIER},
    "updateTicketTier": {"tier": TIER},
    "archiveTicketTier": {"tier": TIER},
    "createCapacityGroup": {"event": EVENT, "capacityGroup": GROUP},
    "updateCapacityGroup": {"capacityGroup": GROUP},
    "claimFreeTicket": {"tickets": f"{DEFS}#issuedTicketWithContext", "items": f"{DEFS}#ticketHoldItem"},
    "listBuyerTickets": {"tickets": f"{DEFS}#issuedTicket"},
    "listOrganizerTickets": {"tickets": f"{DEFS}#issuedTicket"},
    "checkInTicket": {"ticket": f"{DEFS}#issuedTicket", "ok": B, "status": S},
    "createTicketHold": {
        "items": f"{DEFS}#ticketHoldItem",
        "holdId": S,
        "token": S,
        "url": S,
        "amountCents": INT,
    },
}
NULLABLE = {
    "createTicketTier": {"description", "saleStartsAt", "saleEndsAt", "tierRef", "productRef", "priceRef"},
    "updateTicketTier": {"description", "saleStartsAt", "saleEndsAt", "tierRef", "productRef", "priceRef"},
    "updateTicketEvent": {"startsAt", "eventCid", "imageUrl"},
}
# Where apps send metadata that the published lexicons leave out (tiers, holds, claims and
# check-ins took it already).
METADATA = {"createTicketEvent", "updateTicketEvent", "createCapacityGroup", "updateCapacityGroup"}


def kind(schema: dict[str, Any], home: str = DEFS) -> str:
    """A property's type, or the full ref it names (of its items, for an array); ``home`` is the
    lexicon the property is in, for its local refs."""
    if schema["type"] == "array":
        return kind(schema["items"], home)
    if schema["type"] == "ref":
        ref = str(schema["ref"])
        return home + ref if ref.startswith("#") else ref
    return str(schema["type"])


@pytest.mark.parametrize("name", PUBLISHED_DEFS)
def test_published_definitions_keep_their_shape(name: str) -> None:
    required, properties = PUBLISHED_DEFS[name]
    schema = definition(f"{DEFS}#{name}")
    assert set(schema.get("required", [])) == required, "only optional fields may be added"
    for prop, expected in properties.items():
        assert kind(schema["properties"][prop]) == expected, f"{name}.{prop}"


@pytest.mark.parametrize("method", PUBLISHED_OUTPUTS)
def test_published_outputs_use_the_published_refs(method: str) -> None:
    schema = output(f"tickets.atmosphere.{method}")
    for prop, expected in PUBLISHED_OUTPUTS[method].items():
        assert kind(schema["properties"][prop], f"tickets.atmosphere.{method}") == expected, (
            f"{method}.{prop}"
        )


def test_release_answers_an_inline_hold() -> None:
    hold = output("tickets.atmosphere.releaseTicketHold")["properties"]["hold"]
    assert hold["type"] == "object"
    assert set(hold["required"]) == {"id", "status"}
    assert {k: v["type"] for k, v in hold["properties"].items()} == {"id": S, "status": S}
    assert hold["properties"]["status"]["knownValues"] == ["released", "expired", "failed", "completed"]


def test_verify_answers_a_verification_result() -> None:
    schema = output("tickets.atmosphere.verifyTicket")
    assert (schema["type"], schema["ref"]) == ("ref", f"{DEFS}#verificationResult")


@pytest.mark.parametrize("method", NULLABLE)
def test_the_sdks_nulls_are_accepted(method: str) -> None:
    assert set(input_schema(f"tickets.atmosphere.{method}")["nullable"]) == NULLABLE[method]


@pytest.mark.parametrize("method", sorted(METADATA))
def test_metadata_is_taken_where_apps_send_it(method: str) -> None:
    assert input_schema(f"tickets.atmosphere.{method}")["properties"]["metadata"]["type"] == "unknown"


@pytest.mark.parametrize(
    ("nsid", "kind_", "required_in", "required_out"),
    [
        ("network.attested.payment.status", "query", {"token"}, {"token", "status"}),
        ("money.atmosphere.actor.getPayoutStatus", "query", {"actor"}, {"actor", "payable", "status"}),
        (
            "money.atmosphere.app.requestRecipientApproval",
            "procedure",
            {"recipientDid", "paymentTypes"},
            {"id", "status", "dashboardUrl", "onboardingUrl", "paymentTypes", "feeShareBps"},
        ),
        (
            "money.atmosphere.app.getConfig",
            "query",
            set(),
            {"appDid", "environment", "status", "webhook", "appConfig"},
        ),
        ("tickets.atmosphere.listPublicConfig", "query", {"organizer"}, {"records"}),
    ],
)
def test_the_other_methods_apps_call(
    nsid: str, kind_: str, required_in: set[str], required_out: set[str]
) -> None:
    main = definition(nsid)
    assert main["type"] == kind_
    fields = main["parameters"] if kind_ == "query" else main["input"]["schema"]
    assert set(fields.get("required", [])) == required_in
    assert set(output(nsid)["required"]) == required_out

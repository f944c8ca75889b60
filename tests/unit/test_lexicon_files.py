"""The lexicon documents under ``lexicons/``: well-formed, complete, and true to the published contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.xrpc.lexicon import Lexicons, LexiconValidationError

ROOT = Path(__file__).resolve().parents[2] / "lexicons"
FILES = sorted(ROOT.rglob("*.json"))
DOCUMENTS: dict[str, dict[str, Any]] = {}
for _file in FILES:
    _document = json.loads(_file.read_text("utf-8"))
    DOCUMENTS[_document["id"]] = _document
OURS = {nsid: document for nsid, document in DOCUMENTS.items() if nsid.startswith("tickets.atmosphere.")}
METHODS = {
    "tickets.atmosphere.createTicketEvent",
    "tickets.atmosphere.updateTicketEvent",
    "tickets.atmosphere.createCapacityGroup",
    "tickets.atmosphere.updateCapacityGroup",
    "tickets.atmosphere.createTicketTier",
    "tickets.atmosphere.updateTicketTier",
    "tickets.atmosphere.archiveTicketTier",
    "tickets.atmosphere.getTicketAvailability",
    "tickets.atmosphere.previewTicketOrder",
    "tickets.atmosphere.createTicketHold",
    "tickets.atmosphere.releaseTicketHold",
    "tickets.atmosphere.claimFreeTicket",
    "tickets.atmosphere.listBuyerTickets",
    "tickets.atmosphere.listOrganizerTickets",
    "tickets.atmosphere.voidTicket",
    "tickets.atmosphere.refundTicket",
    "tickets.atmosphere.transferTicket",
    "tickets.atmosphere.resendTicketEmail",
    "tickets.atmosphere.verifyTicket",
    "tickets.atmosphere.checkInTicket",
    "tickets.atmosphere.createCheckInList",
    "tickets.atmosphere.updateCheckInList",
    "tickets.atmosphere.listCheckInLists",
    "tickets.atmosphere.exportCheckInList",
    "tickets.atmosphere.enrollDevice",
    "tickets.atmosphere.getScannerBundle",
    "tickets.atmosphere.uploadCheckIns",
    "tickets.atmosphere.pullCheckIns",
    "tickets.atmosphere.searchTickets",
    "tickets.atmosphere.checkInSearchedTicket",
    "tickets.atmosphere.createOffer",
    "tickets.atmosphere.updateOffer",
    "tickets.atmosphere.listOffers",
    "tickets.atmosphere.listPublicConfig",
    # The payment side apps call on the same base URL, answered here by the dev payments.
    "network.attested.payment.status",
    "money.atmosphere.actor.getPayoutStatus",
    "money.atmosphere.app.requestRecipientApproval",
    "money.atmosphere.app.getConfig",
    "tickets.atmosphere.listOrganizerConsents",
    "tickets.atmosphere.revokeOrganizerConsent",
    # The organizer's back office, for the app the event belongs to.
    "tickets.atmosphere.getEventSummary",
    "tickets.atmosphere.listConflicts",
    "tickets.atmosphere.resolveConflict",
    "tickets.atmosphere.listPaymentIssues",
    "tickets.atmosphere.getTicketHistory",
    "tickets.atmosphere.listDevices",
    "tickets.atmosphere.revokeDevice",
    "tickets.atmosphere.listWebhookDeliveries",
    "tickets.atmosphere.redriveWebhookDelivery",
}
# Desk scanner methods: authenticated by a device credential (``Bearer dev_<id>.<secret>``), not an
# app's JWT, so they list the device errors instead of the app ones; enrollment is by one-time code.
DEVICE_METHODS = {
    "tickets.atmosphere.searchTickets",
    "tickets.atmosphere.checkInSearchedTicket",
    "tickets.atmosphere.getScannerBundle",
    "tickets.atmosphere.uploadCheckIns",
    "tickets.atmosphere.pullCheckIns",
}
CODE_METHODS = {"tickets.atmosphere.enrollDevice"}
# Public methods: no token at all, limited per client address.
PUBLIC_METHODS = {"tickets.atmosphere.listPublicConfig"}
# Door methods: an app's JWT or a desk's device credential, so both kinds of errors.
DOOR_METHODS = {"tickets.atmosphere.checkInTicket"}
# Organizer methods: the organizer's own JWT, not an app's.
ORGANIZER_METHODS = {
    "tickets.atmosphere.listOrganizerConsents",
    "tickets.atmosphere.revokeOrganizerConsent",
}
RECORDS = {
    "tickets.atmosphere.ticketTier",
    "tickets.atmosphere.capacityGroup",
    "tickets.atmosphere.checkInList",
    "tickets.atmosphere.publicOffer",
    "tickets.atmosphere.ticketedEvent",
}
PINNED_RECORDS = {"community.lexicon.calendar.event", "community.lexicon.calendar.rsvp"}
APP_ERRORS = {"AppNotRegistered", "TicketsModuleDisabled"}
DEVICE_ERRORS = {"DeviceAuthenticationRequired", "DeviceRevoked"}
FIELD_TYPES = {
    "null", "boolean", "integer", "string", "bytes", "cid-link", "blob",
    "array", "object", "ref", "union", "unknown",
}  # fmt: skip


def main(nsid: str) -> dict[str, Any]:
    return DOCUMENTS[nsid]["defs"]["main"]  # type: ignore[no-any-return]


def input_schema(nsid: str) -> dict[str, Any]:
    return main(nsid)["input"]["schema"]  # type: ignore[no-any-return]


def output_schema(nsid: str) -> dict[str, Any]:
    return main(nsid)["output"]["schema"]  # type: ignore[no-any-return]


def def_schema(ref: str) -> dict[str, Any]:
    nsid, _, name = ref.partition("#")
    return DOCUMENTS[nsid]["defs"][name or "main"]  # type: ignore[no-any-return]


def schemas(node: object, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside a definition, with its path."""
    if not isinstance(node, dict):
        return
    if "type" in node:
        yield where, node
    for key in ("properties",):
        for name, child in node.get(key, {}).items():
            yield from schemas(child, f"{where}/{name}")
    for key in ("items", "record", "parameters", "input", "output", "schema"):
        if key in node:
            yield from schemas(node[key], f"{where}/{key}")


def all_schemas(documents: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for nsid, document in documents.items():
        for name, definition in document["defs"].items():
            for where, schema in schemas(definition, f"{nsid}#{name}"):
                yield nsid, where, schema


def test_every_file_loads() -> None:
    lexicons = Lexicons.load(ROOT)
    assert lexicons.method_nsids() == METHODS


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_file_is_a_lexicon_named_by_its_path(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    assert document["lexicon"] == 1
    assert path.relative_to(ROOT).with_suffix("").parts == tuple(document["id"].split("."))
    assert document["defs"], "a lexicon has at least one definition"
    for name, definition in document["defs"].items():
        if definition["type"] in {"record", "query", "procedure", "subscription"}:
            assert name == "main", f"{document['id']}#{name}: primary types are main definitions"


def test_every_reference_resolves() -> None:
    for nsid, where, schema in all_schemas(DOCUMENTS):
        refs = [schema["ref"]] if schema["type"] == "ref" else schema.get("refs", [])
        for ref in refs:
            target = f"{nsid}{ref}" if ref.startswith("#") else ref
            target_nsid, _, name = target.partition("#")
            assert target_nsid in DOCUMENTS, f"{where}: {ref} names no loaded lexicon"
            assert (name or "main") in DOCUMENTS[target_nsid]["defs"], f"{where}: {ref} names no definition"


def test_methods_declare_their_shapes() -> None:
    for nsid, document in DOCUMENTS.items():
        definition = document["defs"].get("main", {})
        if definition.get("type") == "procedure":
            assert definition["input"]["schema"]["type"] == "object", nsid
            assert definition["output"]["schema"], nsid
        elif definition.get("type") == "query":
            assert definition["parameters"]["type"] == "params", nsid
            output = definition["output"]
            # A file download (any encoding but JSON) has no schema: its body is the file.
            assert output.get("schema") or output["encoding"] != "application/json", nsid


def test_records_have_a_key() -> None:
    records = [
        d["defs"]["main"] for d in DOCUMENTS.values() if d["defs"].get("main", {}).get("type") == "record"
    ]
    assert records
    for record in records:
        assert record["key"] in {"tid", "nsid", "any"} or record["key"].startswith("literal:")
        assert record["record"]["type"] == "object"


def test_record_list() -> None:
    records = {nsid for nsid, d in DOCUMENTS.items() if d["defs"].get("main", {}).get("type") == "record"}
    assert records == RECORDS | PINNED_RECORDS


def test_method_list() -> None:
    methods = {
        nsid
        for nsid, d in DOCUMENTS.items()
        if d["defs"].get("main", {}).get("type") in {"query", "procedure"}
    }
    assert methods == METHODS


# --- the style guide, for the documents this project owns ----------------------------------------


def test_everything_is_described() -> None:
    for nsid, document in OURS.items():
        for name, definition in document["defs"].items():
            assert definition.get("description"), f"{nsid}#{name}"
        for _, where, schema in all_schemas({nsid: document}):
            if schema["type"] in FIELD_TYPES and "/" in where:
                assert schema.get("description"), f"{where} has no description"
        for error in document["defs"].get("main", {}).get("errors", []):
            assert error.get("description"), f"{nsid}: error {error['name']}"


def test_string_conventions() -> None:
    for _, where, schema in all_schemas(OURS):
        if schema["type"] != "string":
            continue
        assert "enum" not in schema, f"{where}: open sets use knownValues"
        if "maxGraphemes" in schema:
            assert schema.get("maxLength", 0) >= schema["maxGraphemes"], f"{where}: byte limit too"
        name = where.rsplit("/", 1)[-1]
        if name.endswith("At"):
            assert schema.get("format") == "datetime", f"{where} is a datetime"
        if name.endswith(("Url", "Uri")) or name in {"url", "uri"}:
            assert schema.get("format") in {"uri", "at-uri"}, f"{where} is a URI"
        if name.endswith("Did"):
            assert schema.get("format") == "did", f"{where} is a DID"
        if name == "currency":
            assert (schema["minLength"], schema["maxLength"]) == (3, 3), where
        if name.endswith("Id") or name == "id":
            assert schema.get("maxLength") == 300, f"{where}: IDs are at most 300 characters"


def test_every_method_takes_an_environment_and_lists_common_errors() -> None:
    for nsid in METHODS:
        definition = main(nsid)
        fields = definition["parameters" if definition["type"] == "query" else "input"]
        properties = fields["properties"] if definition["type"] == "query" else fields["schema"]["properties"]
        environment = properties["environment"]
        assert environment["maxLength"] == 16
        assert environment["knownValues"] == ["test", "live"]
        assert "environment" not in fields.get("required", fields.get("schema", {}).get("required", []))
        names = {error["name"] for error in definition["errors"]}
        if nsid in DEVICE_METHODS:
            assert "device credential" in definition["description"], nsid
            assert names >= DEVICE_ERRORS, nsid
            assert not APP_ERRORS & names, f"{nsid}: no app JWT, so no app errors"
        elif nsid in DOOR_METHODS:
            assert "device credential" in definition["description"], nsid
            assert names >= APP_ERRORS | DEVICE_ERRORS, nsid
        elif nsid in PUBLIC_METHODS:
            assert "without authentication" in definition["description"], nsid
            assert "RateLimitExceeded" in names, nsid
            assert not (APP_ERRORS | DEVICE_ERRORS) & names, f"{nsid}: no caller to refuse"
        elif nsid in ORGANIZER_METHODS:
            assert "iss` = the organizer's DID" in definition["description"], nsid
            assert "OrganizerConsentNotFound" in names, nsid
            assert not (APP_ERRORS | DEVICE_ERRORS) & names, f"{nsid}: called by the organizer, not an app"
        elif nsid in CODE_METHODS:
            assert "enrollment code" in definition["description"], nsid
            assert "EnrollmentCodeInvalid" in names, nsid
            assert not (APP_ERRORS | DEVICE_ERRORS) & names, f"{nsid}: authorized by the code alone"
        else:
            assert names >= APP_ERRORS, nsid
            assert not DEVICE_ERRORS & names, f"{nsid}: app methods take no device credential"


# --- the published contract ----------------------------------------------------------------------

ERRORS = {
    "createTicketEvent": {
        "OrganizerConsentRequired",
        "OrganizerNotEventAuthority",
        "OrganizerReassignmentNotAllowed",
        "OrganizerNotRegistered",
        "OrganizerAssertionInvalid",
        "EventRecordNotFound",
        "InvalidEventRecord",
        "EventRecordUnavailable",
    },
    "updateTicketEvent": {"EventNotFound", "Forbidden", "EventRecordNotFound", "InvalidEventRecord"},
    "updateCapacityGroup": {"CapacityGroupNotFound", "CapacityBelowCommitted", "Forbidden"},
    "createTicketTier": {
        "OrganizerConsentRequired",
        "OrganizerNotEventAuthority",
        "CapacityGroupNotFound",
        "CapacityGroupMismatch",
        "CapacityBelowCommitted",
        "OrganizerReassignmentNotAllowed",
    },
    "updateTicketTier": {"TierNotFound", "CapacityBelowCommitted", "Forbidden", "OrganizerConsentRequired"},
    "listCheckInLists": {"EventNotFound", "Forbidden", "OrganizerConsentRequired"},
    "getTicketAvailability": {"EventNotFound"},
    "previewTicketOrder": {"TierNotFound", "EventNotFound", "TicketHoldUnavailable", "OrderLimitExceeded"},
    "createTicketHold": {
        "TicketHoldUnavailable",
        "SoldOut",
        "TierSoldOut",
        "InsufficientAvailability",
        "TierNotFound",
        "EventNotFound",
        "OrderLimitExceeded",
        "IdempotencyKeyReused",
        "IdempotencyKeyInFlight",
        "UserDidMismatch",
    },
    "releaseTicketHold": {"TicketHoldNotFound"},
}


@pytest.mark.parametrize(("method", "errors"), ERRORS.items())
def test_declared_errors(method: str, errors: set[str]) -> None:
    names = {error["name"] for error in main(f"tickets.atmosphere.{method}")["errors"]}
    assert errors <= names


@pytest.mark.parametrize(
    ("method", "required", "output_required"),
    [
        ("createTicketEvent", {"organizerDid", "event"}, {"event"}),
        ("updateTicketEvent", {"eventId"}, {"event"}),
        (
            "createCapacityGroup",
            {"organizerDid", "event", "name", "totalCapacity"},
            {"event", "capacityGroup"},
        ),
        ("updateCapacityGroup", {"capacityGroupId"}, {"capacityGroup"}),
        (
            "createTicketTier",
            {"organizerDid", "event", "title", "currency", "unitAmount", "quantityTotal"},
            {"event", "capacityGroup", "tier"},
        ),
        ("updateTicketTier", {"tierId"}, {"tier"}),
        ("archiveTicketTier", {"tierId"}, {"tier"}),
        (
            "previewTicketOrder",
            {"tierId", "quantity"},
            {"subtotalAmount", "buyerFeeAmount", "discountAmount", "totalAmount", "currency"},
        ),
        (
            "createTicketHold",
            {"items"},
            {"holdId", "token", "url", "expiresAt", "amountCents", "currency", "items"},
        ),
        ("releaseTicketHold", {"holdId"}, {"hold"}),
    ],
)
def test_procedure_shapes(method: str, required: set[str], output_required: set[str]) -> None:
    nsid = f"tickets.atmosphere.{method}"
    assert set(input_schema(nsid)["required"]) == required
    assert set(output_schema(nsid)["required"]) == output_required


def test_device_method_shapes() -> None:
    enroll = main("tickets.atmosphere.enrollDevice")
    assert enroll["type"] == "procedure"
    assert set(input_schema("tickets.atmosphere.enrollDevice")["required"]) == {"code"}
    code = input_schema("tickets.atmosphere.enrollDevice")["properties"]["code"]
    assert (code["minLength"], code["maxLength"]) == (1, 32)
    assert set(output_schema("tickets.atmosphere.enrollDevice")["required"]) == {
        "deviceId",
        "credential",
        "environment",
        "eventId",
        "checkInLists",
        "serverTimeMs",
    }
    bundle = main("tickets.atmosphere.getScannerBundle")
    assert bundle["type"] == "query"
    assert bundle["parameters"]["required"] == ["checkInListId"]
    assert bundle["parameters"]["properties"]["since"]["minimum"] == 0
    assert output_schema("tickets.atmosphere.getScannerBundle")["properties"]["bundle"]["type"] == "unknown"
    upload = input_schema("tickets.atmosphere.uploadCheckIns")
    assert upload["required"] == ["records"]
    assert (upload["properties"]["records"]["minLength"], upload["properties"]["records"]["maxLength"]) == (
        1,
        1000,
    )
    assert upload["properties"]["records"]["items"]["ref"] == "tickets.atmosphere.defs#checkInRecord"
    results = output_schema("tickets.atmosphere.uploadCheckIns")["properties"]["results"]
    assert results["items"]["ref"] == "tickets.atmosphere.defs#uploadResult"
    pull = main("tickets.atmosphere.pullCheckIns")
    assert pull["type"] == "query"
    limit = pull["parameters"]["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 1000, 1000)
    assert set(output_schema("tickets.atmosphere.pullCheckIns")["required"]) == {
        "records",
        "cursor",
        "more",
        "serverTimeMs",
    }
    record = def_schema("tickets.atmosphere.defs#checkInRecord")
    assert set(record["required"]) == {
        "deviceId",
        "id",
        "checkInListId",
        "direction",
        "decision",
        "reason",
        "deviceTimeMs",
        "clockOffsetMs",
    }
    assert set(record["properties"]) == set(record["required"]) | {
        "ticketId",
        "ticketRef",
        "tokenGeneration",
        "gate",
        "scannerDid",
        "manualReason",
    }
    manual = record["properties"]["manualReason"]
    assert (manual["type"], manual["minLength"], manual["maxLength"]) == ("string", 1, 100)
    detail = def_schema("tickets.atmosphere.defs#verificationResult")["properties"]["detail"]
    # A record's reasons are the decision's, and ``undone``: a desk taking its last admission back.
    assert record["properties"]["reason"]["knownValues"] == [*detail["knownValues"], "undone"]
    assert record["properties"]["decision"]["knownValues"] == ["admit", "refuse", "attention"]
    result = def_schema("tickets.atmosphere.defs#uploadResult")
    assert set(result["required"]) == {"id", "status"}
    assert result["properties"]["status"]["knownValues"] == ["stored", "duplicate", "rejected"]


def test_numeric_and_length_limits() -> None:
    tier = input_schema("tickets.atmosphere.createTicketTier")["properties"]
    assert (tier["title"]["minGraphemes"], tier["title"]["maxGraphemes"]) == (1, 200)
    assert tier["description"]["maxGraphemes"] == 5000
    assert (tier["unitAmount"]["minimum"], tier["unitAmount"]["maximum"]) == (0, 2_000_000)
    assert (tier["quantityTotal"]["minimum"], tier["quantityTotal"]["maximum"]) == (1, 250_000)
    assert (tier["maxPerOrder"]["minimum"], tier["maxPerOrder"]["maximum"]) == (1, 50)
    for ref in ("tierRef", "productRef", "priceRef"):
        assert tier[ref]["ref"] == "com.atproto.repo.strongRef"
    assert tier["metadata"]["type"] == "unknown"
    group = input_schema("tickets.atmosphere.createCapacityGroup")["properties"]
    assert (group["name"]["minGraphemes"], group["name"]["maxGraphemes"]) == (1, 200)
    assert (group["totalCapacity"]["minimum"], group["totalCapacity"]["maximum"]) == (1, 250_000)
    hold = input_schema("tickets.atmosphere.createTicketHold")["properties"]
    assert (hold["items"]["minLength"], hold["items"]["maxLength"]) == (1, 20)
    assert hold["customerEmail"]["maxLength"] == 320
    assert (hold["idempotencyKey"]["minLength"], hold["idempotencyKey"]["maxLength"]) == (1, 200)
    item = def_schema("tickets.atmosphere.defs#ticketHoldItemRequest")["properties"]["quantity"]
    assert (item["minimum"], item["maximum"]) == (1, 50)
    preview = input_schema("tickets.atmosphere.previewTicketOrder")["properties"]
    assert (preview["quantity"]["minimum"], preview["quantity"]["maximum"]) == (1, 50)
    assert preview["offerCode"]["maxLength"] == 100
    assert input_schema("tickets.atmosphere.releaseTicketHold")["properties"]["reason"]["maxLength"] == 200


def test_nullable_fields() -> None:
    assert set(input_schema("tickets.atmosphere.updateTicketEvent")["nullable"]) == {
        "startsAt",
        "eventCid",
        "imageUrl",
    }
    # The public SDK sends null for "none" in these (its types are ``T | null``).
    tier_nullable = {"description", "saleStartsAt", "saleEndsAt", "tierRef", "productRef", "priceRef"}
    assert set(input_schema("tickets.atmosphere.updateTicketTier")["nullable"]) == tier_nullable
    assert set(input_schema("tickets.atmosphere.createTicketTier")["nullable"]) == tier_nullable
    assert set(input_schema("tickets.atmosphere.updateOffer")["nullable"]) == {
        "description",
        "discountPercent",
        "discountAmount",
        "tierIds",
        "startsAt",
        "endsAt",
        "maxRedemptions",
        "maxPerBuyer",
    }


def test_status_values() -> None:
    statuses = {
        "tickets.atmosphere.defs#eventSummary": ["active", "paused", "archived"],
        "tickets.atmosphere.defs#capacityGroupSummary": ["active", "archived"],
        "tickets.atmosphere.defs#ticketTierSummary": ["active", "paused", "archived"],
        "tickets.atmosphere.defs#ticketAvailability": [
            "available",
            "sold-out",
            "not-on-sale",
            "unavailable",
            "hidden",
        ],
    }
    for ref, values in statuses.items():
        assert def_schema(ref)["properties"]["status"]["knownValues"] == values, ref
    hold = output_schema("tickets.atmosphere.releaseTicketHold")["properties"]["hold"]
    assert {"released", "expired", "failed", "completed"} <= set(hold["properties"]["status"]["knownValues"])


def test_summaries_carry_the_full_views() -> None:
    """The published summaries require only ``id``; this service fills in the rest of each view."""
    expected = {
        "eventSummary": {"id", "uri", "title", "status", "organizerDid", "createdAt", "updatedAt"},
        "capacityGroupSummary": {
            "id",
            "eventId",
            "name",
            "status",
            "totalCapacity",
            "soldQuantity",
            "heldQuantity",
            "availableQuantity",
            "implicit",
            "createdAt",
            "updatedAt",
        },
        "ticketTierSummary": {
            "id",
            "eventId",
            "capacityGroupId",
            "title",
            "currency",
            "unitAmount",
            "quantityTotal",
            "quantitySold",
            "quantityHeld",
            "availableQuantity",
            "maxPerOrder",
            "status",
            "createdAt",
            "updatedAt",
        },
    }
    for name, properties in expected.items():
        schema = def_schema(f"tickets.atmosphere.defs#{name}")
        assert schema["required"] == ["id"], name
        assert properties <= set(schema["properties"]), name


def test_view_required_fields() -> None:
    expected = {
        "ticketAvailability": {
            "tierId",
            "title",
            "currency",
            "unitAmount",
            "status",
            "availableQuantity",
            "maxPerOrder",
        },
        "ticketHoldItemRequest": {"tierId", "quantity"},
        "ticketHoldItem": {"tierId"},
        "eventInput": {"uri"},
    }
    for name, required in expected.items():
        assert set(def_schema(f"tickets.atmosphere.defs#{name}")["required"]) == required, name


def test_availability_query() -> None:
    definition = main("tickets.atmosphere.getTicketAvailability")
    assert set(definition["parameters"]["properties"]) == {"eventId", "eventUri", "offerCode", "environment"}
    assert definition["parameters"]["properties"]["eventUri"]["format"] == "at-uri"
    assert set(definition["output"]["schema"]["required"]) == {"available", "tiers"}


# --- pinned copies of lexicons published elsewhere ------------------------------------------------


def test_pinned_calendar_event() -> None:
    event = main("community.lexicon.calendar.event")
    assert event["type"] == "record"
    assert event["key"] == "tid"
    record = event["record"]
    assert set(record["required"]) == {"name", "createdAt"}
    assert {
        "name",
        "description",
        "createdAt",
        "startsAt",
        "endsAt",
        "mode",
        "status",
        "locations",
        "uris",
    } <= set(record["properties"])
    defs = DOCUMENTS["community.lexicon.calendar.event"]["defs"]
    assert {"#hybrid", "#inperson", "#virtual"} == {
        v.removeprefix("community.lexicon.calendar.event") for v in defs["mode"]["knownValues"]
    }
    assert "community.lexicon.calendar.event#scheduled" in defs["status"]["knownValues"]


def test_pinned_calendar_rsvp() -> None:
    rsvp = main("community.lexicon.calendar.rsvp")
    assert rsvp["type"] == "record"
    assert set(rsvp["record"]["required"]) == {"subject", "status"}
    assert rsvp["record"]["properties"]["subject"]["ref"] == "com.atproto.repo.strongRef"
    assert rsvp["record"]["properties"]["status"]["knownValues"] == [
        "community.lexicon.calendar.rsvp#interested",
        "community.lexicon.calendar.rsvp#going",
        "community.lexicon.calendar.rsvp#notgoing",
    ]


def test_pinned_strong_ref() -> None:
    strong_ref = main("com.atproto.repo.strongRef")
    assert strong_ref["required"] == ["uri", "cid"]
    assert strong_ref["properties"]["uri"]["format"] == "at-uri"
    assert strong_ref["properties"]["cid"]["format"] == "cid"


def test_a_calendar_event_record_validates() -> None:
    lexicons = Lexicons.load(ROOT)
    lexicons.validate_record(
        "community.lexicon.calendar.event",
        {
            "$type": "community.lexicon.calendar.event",
            "name": "Winter concert",
            "createdAt": "2026-10-01T12:00:00.000Z",
            "startsAt": "2026-12-18T19:30:00.000-07:00",
            "mode": "community.lexicon.calendar.event#inperson",
            "status": "community.lexicon.calendar.event#scheduled",
            "locations": [
                {"$type": "community.lexicon.location.address", "country": "US", "locality": "Boulder"},
                {"$type": "community.lexicon.calendar.event#uri", "uri": "https://example.com/stream"},
            ],
            "uris": [{"uri": "https://example.com/concert", "name": "Tickets"}],
        },
    )


# --- public records ---------------------------------------------------------------------------------

STRONG_REF = "com.atproto.repo.strongRef"
EVENT_REF = {
    "uri": "at://did:plc:z72i7hdynmk6r22z27h6tvur/community.lexicon.calendar.event/3jzfcijpj2z2a",
    "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
}
TIER_REF = {
    "uri": "at://did:plc:z72i7hdynmk6r22z27h6tvur/tickets.atmosphere.ticketTier/3jzfcijpj2z2b",
    "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
}
CREATED_AT = "2026-10-01T12:00:00.000Z"

# Records are public, so no property of one may carry buyer data, exact counters, holds, ticket IDs,
# QR secrets, answers or check-in logs. Property names are split into words (camelCase, kebab-case,
# snake_case); a word starting with one of these stems, or words run together containing one of the
# compounds, marks private data. Word stems, so that `discountPercent` passes while `soldCount` fails.
PRIVATE_WORD_STEMS = (
    "email", "phone", "buyer", "purchaser", "customer", "holder", "owner", "attendee", "guest",
    "hold", "held", "token", "secret", "password", "private", "qr", "jwt", "credential", "device",
    "counter", "count", "quantity", "sold", "available", "remaining", "inventory",
    "answer", "scan", "log", "payment", "refund", "checkin",
)  # fmt: skip
PRIVATE_COMPOUNDS = ("checkin", "checkedin", "ticketid", "ticketnumber", "orderid")


def _words(name: str) -> list[str]:
    spaced = "".join(f" {c}" if c.isupper() else c for c in name).replace("-", " ").replace("_", " ")
    return spaced.lower().split()


def suggests_private_data(name: str) -> bool:
    words = _words(name)
    compact = "".join(words)
    return any(word.startswith(PRIVATE_WORD_STEMS) for word in words) or any(
        compound in compact for compound in PRIVATE_COMPOUNDS
    )


def record_property_names(nsid: str, documents: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """Every property name a record can hold, following references into other definitions."""
    seen: set[str] = set()
    pending = [f"{nsid}#main"]
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        ref_nsid, _, name = ref.partition("#")
        definition = documents[ref_nsid]["defs"][name or "main"]
        for where, schema in schemas(definition, ref):
            if "/" in where and not where.endswith(("/items", "/record")):
                yield where, where.rsplit("/", 1)[-1]
            targets = [schema["ref"]] if schema["type"] == "ref" else schema.get("refs", [])
            pending += [f"{ref_nsid}{t}" if t.startswith("#") else t for t in targets]


@pytest.mark.parametrize("nsid", sorted(RECORDS))
def test_records_hold_no_private_data(nsid: str) -> None:
    names = list(record_property_names(nsid, DOCUMENTS))
    assert names
    for where, name in names:
        assert not suggests_private_data(name), f"{where}: records are public; keep this in the service"


@pytest.mark.parametrize(
    "name",
    [
        "buyerEmail", "email", "holderName", "attendees", "holdId", "holdExpiresAt", "token", "qrSecret",
        "secretCode", "privateCode", "soldCount", "quantitySold", "heldQuantity", "availableQuantity",
        "remaining", "counter", "checkInLog", "checkIns", "checkedInAt", "scanLog", "scans", "ticketId",
        "ticket_id", "ticketNumber", "answers", "customerPhone", "deviceId",
    ],
)  # fmt: skip
def test_the_private_data_guard_catches(name: str) -> None:
    assert suggests_private_data(name)
    document = json.loads(json.dumps(DOCUMENTS["tickets.atmosphere.ticketTier"]))
    document["defs"]["main"]["record"]["properties"][name] = {"type": "string", "description": "x"}
    names = record_property_names("tickets.atmosphere.ticketTier", {**DOCUMENTS, document["id"]: document})
    assert any(suggests_private_data(found) for _, found in names)


@pytest.mark.parametrize(
    "name",
    [
        "event", "title", "description", "availabilityDisplay", "visibility", "maxPerOrder",
        "discountPercent", "discountAmount", "priceAmount", "capacityGroup", "code", "tiers", "service",
        "saleStartsAt",
    ],
)  # fmt: skip
def test_the_private_data_guard_passes(name: str) -> None:
    assert not suggests_private_data(name)


def test_record_shapes() -> None:
    expected = {
        "tickets.atmosphere.ticketTier": ("tid", {"event", "title", "createdAt"}),
        "tickets.atmosphere.capacityGroup": ("tid", {"event", "name", "createdAt"}),
        "tickets.atmosphere.checkInList": ("tid", {"event", "name", "createdAt"}),
        "tickets.atmosphere.publicOffer": ("tid", {"event", "name", "createdAt"}),
        "tickets.atmosphere.ticketedEvent": ("any", {"event", "createdAt"}),
    }
    for nsid, (key, required) in expected.items():
        record = main(nsid)
        assert record["key"] == key, nsid
        assert set(record["record"]["required"]) == required, nsid
        assert record["record"]["properties"]["event"]["ref"] == STRONG_REF, nsid
        assert record["record"]["properties"]["createdAt"]["format"] == "datetime", nsid
    tier = main("tickets.atmosphere.ticketTier")["record"]["properties"]
    assert set(tier) == {
        "event", "title", "description", "priceAmount", "productRef", "priceRef", "capacityGroup",
        "saleStartsAt", "saleEndsAt", "maxPerOrder", "visibility", "availabilityDisplay", "createdAt",
    }  # fmt: skip
    assert tier["title"]["maxGraphemes"] == 200 and tier["description"]["maxGraphemes"] == 5000
    assert (tier["maxPerOrder"]["minimum"], tier["maxPerOrder"]["maximum"]) == (1, 50)
    for ref in ("productRef", "priceRef", "capacityGroup"):
        assert tier[ref]["ref"] == STRONG_REF
    assert tier["priceAmount"]["ref"] == "tickets.atmosphere.defs#priceAmount"
    assert tier["visibility"]["knownValues"] == ["public", "unlisted", "hidden"]
    assert tier["availabilityDisplay"]["knownValues"] == ["exact", "limited", "hidden"]
    group = main("tickets.atmosphere.capacityGroup")["record"]["properties"]
    assert set(group) == {"event", "name", "visibility", "createdAt"}
    assert group["visibility"]["knownValues"] == ["public", "unlisted", "hidden"]
    lists = main("tickets.atmosphere.checkInList")["record"]["properties"]
    assert set(lists) == {"event", "name", "description", "tiers", "createdAt"}
    assert lists["tiers"]["maxLength"] == 100 and lists["tiers"]["items"]["ref"] == STRONG_REF
    offer = main("tickets.atmosphere.publicOffer")["record"]["properties"]
    assert offer["kind"]["knownValues"] == ["discount", "presale", "affiliate", "access-window"]
    assert (offer["discountPercent"]["minimum"], offer["discountPercent"]["maximum"]) == (0, 100)
    assert offer["discountAmount"]["ref"] == "tickets.atmosphere.defs#priceAmount"
    assert offer["tiers"]["items"]["ref"] == STRONG_REF
    assert offer["code"]["maxLength"] == 100
    backlink = main("tickets.atmosphere.ticketedEvent")["record"]["properties"]
    assert set(backlink) == {"event", "service", "createdAt"}
    assert backlink["service"]["format"] == "did"


def test_public_records_validate() -> None:
    lexicons = Lexicons.load(ROOT)
    tier = {
        "$type": "tickets.atmosphere.ticketTier",
        "event": EVENT_REF,
        "title": "General admission",
        "priceAmount": {"amount": 2500, "currency": "usd"},
        "capacityGroup": {**TIER_REF, "uri": TIER_REF["uri"].replace("ticketTier", "capacityGroup")},
        "saleStartsAt": "2026-10-01T12:00:00.000Z",
        "maxPerOrder": 10,
        "visibility": "public",
        "availabilityDisplay": "limited",
        "createdAt": CREATED_AT,
    }
    lexicons.validate_record("tickets.atmosphere.ticketTier", tier)
    lexicons.validate_record("tickets.atmosphere.ticketTier", {**tier, "visibility": "members-only"})
    for bad in ({"maxPerOrder": 51}, {"maxPerOrder": 0}, {"title": "x" * 201}, {"event": {"uri": "x"}}):
        with pytest.raises(LexiconValidationError):
            lexicons.validate_record("tickets.atmosphere.ticketTier", {**tier, **bad})
    with pytest.raises(LexiconValidationError):
        lexicons.validate_record(
            "tickets.atmosphere.ticketTier", {k: v for k, v in tier.items() if k != "event"}
        )
    lexicons.validate_record(
        "tickets.atmosphere.capacityGroup",
        {"event": EVENT_REF, "name": "Main hall", "visibility": "hidden", "createdAt": CREATED_AT},
    )
    lexicons.validate_record(
        "tickets.atmosphere.checkInList",
        {"event": EVENT_REF, "name": "VIP entrance", "tiers": [TIER_REF], "createdAt": CREATED_AT},
    )
    with pytest.raises(LexiconValidationError):
        lexicons.validate_record(
            "tickets.atmosphere.checkInList",
            {"event": EVENT_REF, "name": "VIP", "tiers": [TIER_REF] * 101, "createdAt": CREATED_AT},
        )
    offer = {
        "event": EVENT_REF,
        "name": "Early bird",
        "kind": "discount",
        "tiers": [TIER_REF],
        "discountPercent": 15,
        "endsAt": "2026-11-01T00:00:00.000Z",
        "code": "EARLYBIRD",
        "createdAt": CREATED_AT,
    }
    lexicons.validate_record("tickets.atmosphere.publicOffer", offer)
    with pytest.raises(LexiconValidationError):
        lexicons.validate_record("tickets.atmosphere.publicOffer", {**offer, "discountPercent": 101})
    lexicons.validate_record(
        "tickets.atmosphere.ticketedEvent",
        {"event": EVENT_REF, "service": "did:web:tickets.test", "createdAt": CREATED_AT},
    )
    with pytest.raises(LexiconValidationError):
        lexicons.validate_record(
            "tickets.atmosphere.ticketedEvent",
            {"event": EVENT_REF, "service": "https://tickets.test", "createdAt": CREATED_AT},
        )

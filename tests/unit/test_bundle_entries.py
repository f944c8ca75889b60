"""Offline bundle entries (format 2): golden vectors, opening, the tier table, and the index."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sync.bundle import (
    FORMAT_VERSION,
    STATUSES,
    BundleError,
    TicketEntry,
    TicketIndex,
    lookup_key,
    open_entry,
    pack_entries,
    seal_entry,
    tier_ref,
    tier_refs,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "bundle.json").read_text("utf-8")
)
CASES = VECTORS["entries"]


def entry_of(case: dict[str, Any]) -> TicketEntry:
    return TicketEntry(
        case["ticket_id"],
        case["ticket_number"],
        case["display_name"],
        case["tier_id"],
        case["status"],
        case["generation"],
    )


def test_the_vectors_are_of_this_format() -> None:
    assert VECTORS["format_version"] == FORMAT_VERSION
    assert tuple(VECTORS["statuses"]) == STATUSES


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_entries_seal_to_the_vectors_and_open_back(case: dict[str, Any]) -> None:
    blob = seal_entry(entry_of(case), case["version"])
    assert blob.hex() == case["entry_hex"]
    assert lookup_key(case["ticket_id"]).hex() == case["lookup_hex"]
    assert tier_ref(case["tier_id"]).hex() == case["tier_ref_hex"]
    tiers = tier_refs(c["tier_id"] for c in CASES)
    assert open_entry(case["ticket_id"], bytes.fromhex(case["entry_hex"]), tiers) == entry_of(case)


def test_an_entry_opens_only_with_its_ticket_id_and_a_known_tier() -> None:
    first, second = CASES[0], CASES[1]
    blob = bytes.fromhex(first["entry_hex"])
    tiers = tier_refs([first["tier_id"]])
    with pytest.raises(BundleError):
        open_entry(second["ticket_id"], blob, tiers)
    with pytest.raises(BundleError):
        open_entry(first["ticket_id"], blob, tier_refs([second["tier_id"]]))
    with pytest.raises(BundleError):
        open_entry(first["ticket_id"], blob[:-1] + bytes([blob[-1] ^ 1]), tiers)


def test_an_unknown_status_cannot_be_sealed() -> None:
    with pytest.raises(BundleError, match="status"):
        seal_entry(TicketEntry(CASES[0]["ticket_id"], "N", "", "tier_x", "lost", 1), 1)


def test_the_index_keeps_the_newest_version_and_resolves_tiers_it_learnt() -> None:
    case = CASES[0]
    older = seal_entry(entry_of(case), 1)
    newer = seal_entry(replace(entry_of(case), status="voided", generation=2), 2)
    index = TicketIndex()
    assert index.apply(pack_entries([newer])) == 1
    assert index.apply(pack_entries([older])) == 0
    with pytest.raises(BundleError):
        index.find(case["ticket_id"])  # its tier is not known yet
    index.learn_tiers([case["tier_id"], "tier_other"])
    found = index.find(case["ticket_id"])
    assert found is not None and (found.status, found.generation) == ("voided", 2)

"""The shared door decision against its golden vectors, plus properties no vector list can cover."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.checkin import (
    Decision,
    Direction,
    ListRules,
    PassCheck,
    PriorScan,
    Reason,
    TicketFacts,
    Verdict,
    decide,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "checkin.json").read_text())["cases"]


def scan(data: dict[str, Any]) -> PriorScan:
    return PriorScan(Direction(data["direction"]), data["atMs"], data.get("gate"), data.get("deviceId"))


def run(case: dict[str, Any]) -> Decision:
    rules = case["rules"]
    ticket = case["ticket"]
    return decide(
        PassCheck(case["check"]),
        case["tokenGeneration"],
        ListRules(
            rules["listId"],
            frozenset(rules["tierIds"]) if rules["tierIds"] is not None else None,
            rules["allowMultipleEntries"],
            rules["allowReentry"],
            rules["validFromMs"],
            rules["validUntilMs"],
            rules["active"],
        ),
        TicketFacts(ticket["ticketId"], ticket["tierId"], ticket["status"], ticket["generation"])
        if ticket
        else None,
        [scan(s) for s in case["history"]],
        Direction(case["direction"]),
        case["nowMs"],
    )


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_vector(case: dict[str, Any]) -> None:
    decision = run(case)
    assert decision.verdict.value == case["expect"]["verdict"]
    assert decision.reason.value == case["expect"]["reason"]
    first = case["expect"].get("firstEntry")
    assert decision.first_entry == (scan(first) if first else None)


def test_the_vectors_cover_every_reason() -> None:
    covered = {c["expect"]["reason"] for c in VECTORS}
    assert covered == {r.value for r in Reason} - {Reason.UNDONE.value}  # no decision: see merge.json
    assert {c["direction"] for c in VECTORS} == {"entry", "exit"}


scans = st.lists(st.builds(PriorScan, st.sampled_from(list(Direction)), st.integers(0, 10**13)), max_size=6)
rules = st.builds(
    ListRules,
    st.just("l"),
    st.none() | st.frozensets(st.sampled_from(["a", "b"])),
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(0, 10**13),
    st.none() | st.integers(0, 10**13),
    st.booleans(),
)


@given(
    check=st.sampled_from(list(PassCheck)),
    generation=st.none() | st.integers(0, 5),
    list_rules=rules,
    ticket=st.none()
    | st.builds(
        TicketFacts,
        st.just("t"),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["active", "voided", "refunded"]),
        st.integers(1, 5),
    ),
    history=scans,
    direction=st.sampled_from(list(Direction)),
    now=st.integers(0, 10**13),
)
def test_admission_needs_a_valid_pass_and_an_active_ticket(
    check: PassCheck,
    generation: int | None,
    list_rules: ListRules,
    ticket: TicketFacts | None,
    history: list[PriorScan],
    direction: Direction,
    now: int,
) -> None:
    decision = decide(check, generation, list_rules, ticket, history, direction, now)
    if decision.verdict is Verdict.ADMIT:
        assert check is PassCheck.VALID and ticket is not None and ticket.status == "active"
        assert list_rules.active
        assert generation is None or generation >= ticket.generation
        if direction is Direction.ENTRY and not list_rules.allow_multiple_entries:
            assert not history or history[-1].direction is Direction.EXIT
    assert (decision.reason is Reason.OK) == (decision.verdict is Verdict.ADMIT)

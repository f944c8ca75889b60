"""The merge rules against their golden vectors, plus properties no vector list can cover: the
derived state depends on the set of records alone, and the door rules are the door decision's."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.checkin import Direction, ListRules, PassCheck, Reason, Verdict, decide
from sync.merge import (
    Conflict,
    ConflictKind,
    DerivedState,
    DoorState,
    ListCounts,
    StatusChange,
    TicketHistory,
    derive,
    ordered,
    prior_scans,
)
from sync.records import Record, RecordKey

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "merge.json").read_text())
CASES = VECTORS["cases"]


def key(pair: list[str] | None) -> RecordKey | None:
    return RecordKey(*pair) if pair else None


def lists_of(case: dict[str, Any]) -> dict[str, ListRules]:
    return {
        data["listId"]: ListRules(
            data["listId"],
            frozenset(data["tierIds"]) if data["tierIds"] is not None else None,
            data["allowMultipleEntries"],
            data["allowReentry"],
        )
        for data in case["lists"]
    }


def tickets_of(case: dict[str, Any]) -> dict[str, TicketHistory]:
    return {
        data["ticketId"]: TicketHistory(
            data["ticketId"],
            data["tierId"],
            tuple(StatusChange(c["atMs"], c["status"], c["generation"]) for c in data["changes"]),
        )
        for data in case["tickets"]
    }


def conflict_of(data: dict[str, Any]) -> Conflict:
    return Conflict(
        ConflictKind(data["kind"]),
        data["listId"],
        data["ticketId"],
        tuple(RecordKey(*pair) for pair in data["records"]),
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    records = [Record.from_wire(data) for data in case["records"]]
    expect = case["expect"]
    state = derive(records, lists_of(case), tickets_of(case))

    assert [r.key for r in ordered(records)] == [RecordKey(*pair) for pair in expect["order"]]
    assert {group: (d.inside, d.entries, d.first_entry, d.last) for group, d in state.doors.items()} == {
        (d["listId"], d["ticketId"]): (d["inside"], d["entries"], key(d["firstEntry"]), key(d["last"]))
        for d in expect["doors"]
    }
    assert {list_id: (c.checked_in, c.inside, c.scans, c.refused) for list_id, c in state.counts.items()} == {
        c["listId"]: (c["checkedIn"], c["inside"], c["scans"], c["refused"]) for c in expect["counts"]
    }
    assert list(state.conflicts) == [conflict_of(c) for c in expect["conflicts"]]
    for door in expect["doors"]:
        assert state.door(door["listId"], door["ticketId"]).entries == door["entries"]
    for counts in expect["counts"]:
        assert state.count(counts["listId"]).scans == counts["scans"]
    assert state.door("main", "nobody") == DoorState()
    assert state.count("nowhere") == ListCounts()

    shuffled = records * 2
    random.Random(case["name"]).shuffle(shuffled)
    assert derive(shuffled, lists_of(case), tickets_of(case)) == state


def test_the_vectors_cover_every_conflict_kind_and_undo() -> None:
    covered = {c["kind"] for case in CASES for c in case["expect"]["conflicts"]}
    assert covered == {kind.value for kind in ConflictKind}
    assert any(r["reason"] == Reason.UNDONE.value for case in CASES for r in case["records"])


@pytest.mark.parametrize("data", VECTORS["conflictIds"], ids=lambda d: d["id"])
def test_conflict_id(data: dict[str, Any]) -> None:
    conflict = Conflict(
        ConflictKind(data["kind"]), "any", "any", tuple(RecordKey(*pair) for pair in data["records"])
    )
    assert conflict.conflict_id == data["id"]


def test_prior_scans_from_state_or_records_agree() -> None:
    case = next(c for c in CASES if c["name"].startswith("re-entry list"))
    records = [Record.from_wire(data) for data in case["records"]]
    state = derive(records, lists_of(case), tickets_of(case))
    scans = prior_scans(state, "vip", "t1")
    assert scans == prior_scans(reversed(records), "vip", "t1")
    assert [(s.direction, s.at_ms, s.device_id) for s in scans] == [
        (Direction.ENTRY, 1000, "dev_a"),
        (Direction.EXIT, 2000, "dev_a"),
        (Direction.ENTRY, 3000, "dev_b"),
        (Direction.ENTRY, 3500, "dev_c"),
    ]
    assert prior_scans(state, "vip", "nobody") == prior_scans(records, "vip", "nobody") == []


def test_ticket_history_must_be_in_time_order() -> None:
    with pytest.raises(ValueError, match="time order"):
        TicketHistory("t", "ga", (StatusChange(5, "active", 1), StatusChange(4, "voided", 1)))
    with pytest.raises(ValueError, match="issuance"):
        TicketHistory("t", "ga", ())


# Properties over generated record sets.

LISTS = {
    "once": ListRules("once", None),
    "again": ListRules("again", frozenset({"ga"}), allow_reentry=True),
    "many": ListRules("many", None, allow_multiple_entries=True),
}
TICKETS = {
    "t1": TicketHistory("t1", "ga", (StatusChange(0, "active", 1),)),
    "t2": TicketHistory("t2", "vip", (StatusChange(0, "active", 1), StatusChange(40, "active", 2))),
    "t3": TicketHistory("t3", "ga", (StatusChange(0, "active", 1), StatusChange(60, "voided", 1))),
}

any_record = st.builds(
    Record,
    device_id=st.sampled_from(["dev_a", "dev_b", "online"]),
    record_id=st.sampled_from(["r1", "r2", "r3", "r10"]),
    list_id=st.sampled_from([*LISTS, "unknown"]),
    ticket_id=st.sampled_from(["t1", "t2", "t3", "t9", None]),
    token_generation=st.sampled_from([None, 1, 2]),
    direction=st.sampled_from(list(Direction)),
    decision=st.sampled_from(list(Verdict)),
    reason=st.just(Reason.OK),
    device_ms=st.integers(0, 100),
    clock_offset_ms=st.sampled_from([-20, 0, 20]),
)


@given(st.lists(any_record, max_size=14), st.randoms(use_true_random=False))
def test_the_state_depends_on_the_set_alone(found: list[Record], rng: random.Random) -> None:
    state = derive(found, LISTS, TICKETS)
    again = found + rng.sample(found, len(found) // 2)
    rng.shuffle(again)
    assert derive(again, LISTS, TICKETS) == state
    assert sum(c.scans for c in state.counts.values()) == len({r.key for r in found})
    kept = {r.key: r for r in ordered(found)}
    for conflict in state.conflicts:
        assert conflict.kind is ConflictKind.KEY_REUSE or kept[conflict.records[-1]].admitted
    for list_id, ticket_id in state.doors:
        assert prior_scans(state, list_id, ticket_id) == prior_scans(found, list_id, ticket_id)


@given(st.lists(any_record, max_size=14))
def test_refused_records_change_no_door_state(found: list[Record]) -> None:
    kept = ordered(found)
    admitted = [r for r in kept if r.admitted]
    assert derive(kept, LISTS, TICKETS).doors == derive(admitted, LISTS, TICKETS).doors


@given(
    st.lists(st.tuples(st.sampled_from(list(Direction)), st.integers(0, 50)), max_size=8),
    st.booleans(),
    st.booleans(),
)
def test_door_conflicts_are_the_refusals_of_decide(
    scans: list[tuple[Direction, int]], multiple: bool, reentry: bool
) -> None:
    """Replaying the admitted records through decide() one by one: exactly the records it would have
    refused as already checked in or not inside are door conflicts."""
    rules = ListRules("l", None, multiple, reentry)
    found = [
        Record("dev", f"r{i:02}", "l", "t1", 1, direction, Verdict.ADMIT, Reason.OK, at)
        for i, (direction, at) in enumerate(scans)
    ]
    state = derive(found, {"l": rules}, TICKETS)
    door_kinds = {ConflictKind.DOUBLE_ADMISSION, ConflictKind.EXIT_WITHOUT_ENTRY}
    flagged = {c.records[-1]: c.kind for c in state.conflicts if c.kind in door_kinds}
    refusals = {
        Reason.ALREADY_CHECKED_IN: ConflictKind.DOUBLE_ADMISSION,
        Reason.NOT_INSIDE: ConflictKind.EXIT_WITHOUT_ENTRY,
    }
    expected = {}
    in_order = ordered(found)
    for i, record in enumerate(in_order):
        history = prior_scans(in_order[:i], "l", "t1")
        facts = TICKETS["t1"].facts_at(record.effective_ms)
        reason = decide(
            PassCheck.VALID, 1, rules, facts, history, record.direction, record.effective_ms
        ).reason
        if reason is not Reason.OK:
            expected[record.key] = refusals[reason]
    assert flagged == expected


def test_an_empty_set_derives_an_empty_state() -> None:
    assert derive([], {}, {}) == DerivedState({}, {}, {}, ())

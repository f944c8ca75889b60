"""Ticket references: how desks name tickets in their records (``sync.records.ticket_ref``)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.checkin import Direction, Reason, Verdict
from sync.records import Record, RecordFormatError, is_ticket_ref, ticket_ref

TICKET = "ticket_01j9zq0m3xk4v8n2p6r7s5t9wc"


def scan(ticket_id: str | None) -> Record:
    return Record("dev_a", "r1", "checklist_1", ticket_id, 1, Direction.ENTRY, Verdict.ADMIT, Reason.OK, 1000)


def test_lostdesk_the_documented_reference() -> None:
    assert ticket_ref(TICKET) == "tref_bdfcc1fbcbe514b2ff7e07d87d9ea95d"  # docs/sync-protocol.md
    assert is_ticket_ref(ticket_ref(TICKET)) and not is_ticket_ref(TICKET)
    assert ticket_ref(TICKET) != ticket_ref(TICKET[:-1] + "x")


def test_lostdesk_a_desks_record_travels_with_its_reference_only() -> None:
    mine = scan(TICKET).with_ticket_ref()
    assert mine.ticket_id == ticket_ref(TICKET) and mine.with_ticket_ref() == mine
    wire = mine.to_wire()
    assert wire["ticketRef"] == ticket_ref(TICKET) and "ticketId" not in wire
    assert TICKET not in str(wire)
    assert Record.from_wire(wire) == mine
    assert scan(None).with_ticket_ref() == scan(None)
    assert Record.from_wire(scan(TICKET).to_wire()) == scan(TICKET)  # the server's form is unchanged


@pytest.mark.parametrize(
    "ticket",
    [{"ticketRef": "tref_xyz"}, {"ticketRef": 7}, {"ticketRef": ticket_ref(TICKET), "ticketId": TICKET}],
    ids=["not-hex", "not-text", "both"],
)
def test_lostdesk_a_bad_reference_is_no_record(ticket: dict[str, object]) -> None:
    wire = scan(None).to_wire() | ticket
    with pytest.raises(RecordFormatError):
        Record.from_wire(wire)


@given(
    st.builds(
        Record,
        st.text(min_size=1),
        st.text(min_size=1),
        st.text(min_size=1),
        st.none() | st.text(),
        st.none() | st.integers(),
        st.sampled_from(Direction),
        st.sampled_from(Verdict),
        st.sampled_from(Reason),
        st.integers(),
        st.integers(),
        st.none() | st.text(),
        st.none() | st.text(),
        st.none() | st.text(),
    ),
    st.text(),
)
def test_lostdesk_naming_a_ticket_changes_that_field_only(record: Record, ticket_id: str) -> None:
    """``naming`` copies every field, in the order it lists them: a field added to records, or
    moved, without it fails here."""
    assert [f.name for f in fields(Record)] == [
        "device_id",
        "record_id",
        "list_id",
        "ticket_id",
        "token_generation",
        "direction",
        "decision",
        "reason",
        "device_ms",
        "clock_offset_ms",
        "gate",
        "scanner_did",
        "manual_reason",
    ]
    assert record.naming(ticket_id) == replace(record, ticket_id=ticket_id)

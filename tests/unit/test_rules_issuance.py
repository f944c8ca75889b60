"""Issuance's pure rules: who each new ticket is for, and who holds a ticket after a transfer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.domain.issuance.rules import Holder, attendee, transferred

ATTENDEES = [{"name": "Ada", "email": "ada@example.org"}, {"name": "Bob"}, {}]


def test_each_ticket_takes_its_attendee_and_falls_back_to_the_order_s_address() -> None:
    assert attendee(ATTENDEES, 0, "buyer@example.org") == Holder(None, "Ada", "ada@example.org")
    assert attendee(ATTENDEES, 1, "buyer@example.org") == Holder(None, "Bob", "buyer@example.org")
    assert attendee(ATTENDEES, 2, "buyer@example.org") == Holder(None, None, "buyer@example.org")
    assert attendee(ATTENDEES, 7, None) == Holder(None, None, None)
    assert attendee([{"email": ""}], 0, "buyer@example.org").email == "buyer@example.org"


def test_a_transfer_replaces_what_it_names_and_keeps_the_rest() -> None:
    before = Holder("did:plc:old", "Ada", "ada@example.org")
    assert transferred(before, None, None, None) == before
    assert transferred(before, "did:plc:new", None, None) == Holder("did:plc:new", "Ada", "ada@example.org")
    assert transferred(before, None, "Bob", "bob@example.org") == Holder(
        "did:plc:old", "Bob", "bob@example.org"
    )
    assert transferred(before, None, "", None).name == ""


texts = st.one_of(st.none(), st.text(max_size=5))


@given(texts, texts, texts, texts, texts, texts)
def test_transferring_twice_the_same_way_changes_nothing_more(
    did: str | None,
    name: str | None,
    email: str | None,
    new_did: str | None,
    new_name: str | None,
    new_email: str | None,
) -> None:
    once = transferred(Holder(did, name, email), new_did, new_name, new_email)
    assert transferred(once, new_did, new_name, new_email) == once

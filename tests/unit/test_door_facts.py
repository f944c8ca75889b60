"""The door facts the kernel owns besides the decision: what a refused signature check means, which
tickets a list admits, the list rules' wire form and the status words of an online answer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sync.checkin import (
    ONLINE_ADMITTED,
    Decision,
    Direction,
    ListRules,
    OnlineStatus,
    PassCheck,
    Reason,
    Verdict,
    online_status,
    pass_check,
    refuse,
)
from sync.passes import RejectReason


def test_a_pass_signed_by_no_key_of_the_list_is_not_signed_for_it() -> None:
    assert {reason: pass_check(reason) for reason in RejectReason} == {
        RejectReason.MALFORMED: PassCheck.MALFORMED,
        RejectReason.UNSUPPORTED_VERSION: PassCheck.UNSUPPORTED_VERSION,
        RejectReason.UNKNOWN_KEY: PassCheck.NOT_SIGNED_FOR_LIST,
        RejectReason.BAD_SIGNATURE: PassCheck.BAD_SIGNATURE,
    }


def test_a_list_admits_its_tiers_or_every_tier() -> None:
    assert ListRules("l", None).admits_tier("any")
    some = ListRules("l", frozenset({"vip"}))
    assert some.admits_tier("vip") and not some.admits_tier("ga")
    assert not ListRules("l", frozenset()).admits_tier("vip")


rules = st.builds(
    ListRules,
    list_id=st.just("list_1"),
    tier_ids=st.none() | st.frozensets(st.sampled_from(["ga", "vip", "crew"])),
    allow_multiple_entries=st.booleans(),
    allow_reentry=st.booleans(),
    valid_from_ms=st.none() | st.integers(0, 2**40),
    valid_until_ms=st.none() | st.integers(0, 2**40),
    active=st.booleans(),
)


@given(rules)
def test_list_rules_survive_their_wire_form(given_rules: ListRules) -> None:
    wire = given_rules.to_wire()
    assert wire["status"] in ("active", "archived")
    assert ListRules.from_wire("list_1", wire) == given_rules


def test_the_online_status_words() -> None:
    admit = Decision(Verdict.ADMIT, Reason.OK)
    assert online_status(admit, Direction.ENTRY) is OnlineStatus.CHECKED_IN
    assert online_status(admit, Direction.EXIT) is OnlineStatus.CHECKED_OUT
    assert (
        online_status(refuse(Reason.ALREADY_CHECKED_IN), Direction.ENTRY) is OnlineStatus.ALREADY_CHECKED_IN
    )
    assert online_status(refuse(Reason.VOIDED), Direction.ENTRY) is OnlineStatus.NOT_VALID
    assert {status.value for status in OnlineStatus if status in ONLINE_ADMITTED} == {
        "checked_in",
        "checked_out",
    }
    assert "checked_in" in ONLINE_ADMITTED and "already_checked_in" not in ONLINE_ADMITTED

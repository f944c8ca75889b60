"""The payments' pure rules: the steps of the state machine per payment id that need no database,
and the names of a checkout's states."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.payments.rules import (
    CHECKOUT_STATUSES,
    FLAGGED,
    SETTLED,
    STATUSES,
    TERMINAL,
    Refund,
    completed_status,
    completion_seen,
    failure_outcome,
    mismatch,
    refund,
    refund_currency_problem,
    refunded_before_completion,
)

statuses = st.one_of(st.none(), st.sampled_from(STATUSES))
amounts = st.integers(0, 10_000)


def test_a_second_completion_of_a_settled_payment_changes_nothing() -> None:
    for status in SETTLED:
        assert completion_seen(status, issued_by_it=False)
    assert completion_seen("partially_refunded", issued_by_it=True)
    assert not completion_seen("partially_refunded", issued_by_it=False)
    for unsettled in (None, "failed", "refunded"):
        assert not completion_seen(unsettled, issued_by_it=False)


def test_a_completion_after_a_full_refund_issues_nothing() -> None:
    assert refunded_before_completion("refunded", 0, 1_000)
    assert refunded_before_completion("partially_refunded", 1_000, 1_000)
    assert not refunded_before_completion("partially_refunded", 999, 1_000)
    assert not refunded_before_completion(None, 0, 1_000)
    assert not refunded_before_completion("failed", 5_000, 1_000)


def test_a_completion_must_pay_the_hold_exactly() -> None:
    assert mismatch(1_000, "eur", 1_000, "eur") is None
    assert mismatch(999, "eur", 1_000, "eur") == "paid 999 eur for a hold of 1000 eur"
    assert mismatch(1_000, "usd", 1_000, "eur") == "paid 1000 usd for a hold of 1000 eur"
    assert mismatch(None, None, 1_000, "eur") == "paid None None for a hold of 1000 eur"


def test_a_partial_refund_before_the_completion_stays_one() -> None:
    assert completed_status("partially_refunded") == "partially_refunded"
    for status in (None, "failed"):
        assert completed_status(status) == "completed"


def test_a_refund_naming_no_amount_or_reaching_the_total_is_full() -> None:
    assert refund("completed", 0, None, 1_000) == Refund(True, "refunded", 1_000, keeps_reason=False)
    assert refund("completed", 600, 400, 1_000) == Refund(True, "refunded", 1_000, keeps_reason=False)
    assert refund(None, 0, None, None) == Refund(True, "refunded", 0, keeps_reason=False)
    assert refund("completed", 0, 400, 1_000) == Refund(False, "partially_refunded", 400, keeps_reason=False)
    assert refund("needs_review", 0, 400, 1_000) == Refund(False, "needs_review", 400, keeps_reason=True)
    assert refund("refunded", 1_000, None, 1_000) is None


def test_a_failure_counts_only_as_the_first_event() -> None:
    assert failure_outcome(None) is None
    assert failure_outcome("failed") == "duplicate"
    for status in ("completed", "partially_refunded", "refunded", "needs_refund", "needs_review"):
        assert failure_outcome(status) == "ignored"


def test_a_refund_in_another_currency_is_kept_for_review() -> None:
    assert refund_currency_problem(None, "eur") is None
    assert refund_currency_problem("eur", None) is None
    assert refund_currency_problem("eur", "eur") is None
    assert refund_currency_problem("usd", "eur") == "a refund in usd of a payment in eur"


def test_every_hold_status_has_a_checkout_state() -> None:
    assert set(CHECKOUT_STATUSES) == {"held", "completed", "expired", "released", "failed"}
    assert set(CHECKOUT_STATUSES.values()) <= {"pending", "completed", "expired", "failed"}


@given(statuses, amounts, st.one_of(st.none(), amounts), st.one_of(st.none(), amounts))
def test_a_refund_moves_the_amount_refunded_towards_the_total(
    status: str | None, already: int, amount: int | None, total: int | None
) -> None:
    plan = refund(status, already, amount, total)
    if status in TERMINAL:
        assert plan is None
        return
    assert plan is not None and plan.status in STATUSES
    if plan.full:
        assert plan.status == "refunded" and not plan.keeps_reason
        assert plan.refunded_amount == (total if total is not None else already)
    else:
        assert amount is not None and plan.refunded_amount == already + amount
        assert total is None or plan.refunded_amount < total
        assert plan.keeps_reason == (status in FLAGGED)
        assert plan.status == (status if status in FLAGGED else "partially_refunded")
    if total is not None and already <= total:
        assert already <= plan.refunded_amount <= max(total, already)


@dataclass(frozen=True)
class Row:
    """A payment's row as the rules see it."""

    status: str | None = None
    refunded: int = 0


PAID = 1_000


def completed(row: Row, issued_by_it: bool) -> Row:
    """A completion of ``PAID``, the way the service applies the rules (its hold is payable)."""
    if completion_seen(row.status, issued_by_it):
        return row
    if refunded_before_completion(row.status, row.refunded, PAID):
        return Row("refunded", max(row.refunded, PAID))
    return Row(completed_status(row.status), row.refunded)


def refunded(row: Row, amount: int | None) -> Row:
    plan = refund(row.status, row.refunded, amount, PAID)
    return row if plan is None else Row(plan.status, plan.refunded_amount)


def failed(row: Row) -> Row:
    return Row("failed", row.refunded) if failure_outcome(row.status) is None else row


events = st.lists(
    st.one_of(
        st.tuples(st.just("completed"), st.booleans()),
        st.tuples(st.just("refunded"), st.one_of(st.none(), st.integers(1, 2 * PAID))),
        st.tuples(st.just("failed"), st.none()),
    ),
    max_size=12,
)


@given(events)
def test_a_payment_never_leaves_a_terminal_state(sequence: list[tuple[str, object]]) -> None:
    row = Row()
    for kind, detail in sequence:
        before = row
        if kind == "completed":
            row = completed(row, issued_by_it=bool(detail))
        elif kind == "refunded":
            row = refunded(row, detail if isinstance(detail, int) else None)
        else:
            row = failed(row)
        assert row.status is None or row.status in STATUSES
        assert row.refunded <= PAID
        if before.status in TERMINAL:
            assert row == before


@pytest.mark.parametrize("status", TERMINAL)
def test_nothing_a_broker_sends_moves_a_terminal_payment(status: str) -> None:
    row = Row(status, PAID)
    assert completed(row, issued_by_it=False) == row
    assert completed(row, issued_by_it=True) == row
    assert refunded(row, None) == row and refunded(row, 1) == row
    assert failed(row) == row

"""Pure payment rules: the steps of the one state machine per payment id that need no database (the
table is in docs/issuance.md), and how a checkout's state is named to the app.

A payment's status is ``None`` before its first event, then one of ``STATUSES``. ``refunded`` is
terminal: nothing a broker sends afterwards moves it.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("completed", "partially_refunded", "refunded", "failed", "needs_refund", "needs_review")
TERMINAL = ("refunded",)
# Kept for the operator: the money came but could not (or not yet) be turned into tickets.
FLAGGED = ("needs_refund", "needs_review")
# Statuses a second completion of the payment changes nothing in (``partially_refunded`` too, once
# the payment has issued).
SETTLED = ("completed", *FLAGGED)

# A hold's status, as the broker names the state of its checkout.
CHECKOUT_STATUSES = {
    "held": "pending",
    "completed": "completed",
    "expired": "expired",
    "released": "failed",
    "failed": "failed",
}


def completion_seen(status: str | None, issued_by_it: bool) -> bool:
    """Whether a completion of the payment was handled already (it issued, or was flagged).
    ``issued_by_it``: its hold is completed by this very payment."""
    return status in SETTLED or (status == "partially_refunded" and issued_by_it)


def refunded_before_completion(status: str | None, refunded_amount: int, paid: int) -> bool:
    """Whether a completion of ``paid`` finds the payment refunded in full already (before it came,
    or after it issued): it then issues nothing (more) and the payment is ``refunded``."""
    return status == "refunded" or (status == "partially_refunded" and refunded_amount >= paid)


def mismatch(paid: int | None, paid_currency: str | None, amount: int, currency: str) -> str | None:
    """Why a completion of ``paid`` in ``paid_currency`` does not pay a hold of ``amount`` in
    ``currency`` (it is then kept for review), or None when it does."""
    if paid == amount and paid_currency == currency:
        return None
    return f"paid {paid} {paid_currency} for a hold of {amount} {currency}"


def completed_status(status: str | None) -> str:
    """A payment's status once its completion issued: a partial refund before it stays one."""
    return "partially_refunded" if status == "partially_refunded" else "completed"


@dataclass(frozen=True, slots=True)
class Refund:
    """What a refund does to the payment: ``full`` refunds every active ticket of it (else only the
    tickets it names); the payment's new ``status`` and ``refunded_amount``; ``keeps_reason``: the
    payment keeps its reason (a flagged payment stays flagged) instead of taking the refund's."""

    full: bool
    status: str
    refunded_amount: int
    keeps_reason: bool


def refund(status: str | None, refunded_amount: int, amount: int | None, total: int | None) -> Refund | None:
    """A refund of ``amount`` (None: the whole payment) of a payment of ``total`` (None: not known
    yet) that stands at ``status`` with ``refunded_amount`` refunded; None once it is refunded in
    full (nothing changes). A refund is full when it names no amount or when the amounts refunded
    reach what was paid; the amount refunded then is what was paid."""
    if status in TERMINAL:
        return None
    full = amount is None or (total is not None and refunded_amount + amount >= total)
    refunded = total if full and total is not None else refunded_amount + (amount or 0)
    if full:
        return Refund(True, "refunded", refunded, keeps_reason=False)
    if status is not None and status in FLAGGED:
        return Refund(False, status, refunded, keeps_reason=True)
    return Refund(False, "partially_refunded", refunded, keeps_reason=False)


def refund_currency_problem(refund_currency: str | None, paid_currency: str | None) -> str | None:
    """Why a refund in ``refund_currency`` cannot be of a payment in ``paid_currency`` (it is then
    kept for review), or None (either unknown counts as the same)."""
    if refund_currency is None or paid_currency is None or refund_currency == paid_currency:
        return None
    return f"a refund in {refund_currency} of a payment in {paid_currency}"


def failure_outcome(status: str | None) -> str | None:
    """What a failure does: recorded (None: the payment's status becomes ``failed``) only as the
    payment's first event; a repeated failure is a ``duplicate``, and after anything else it is
    ``ignored``."""
    if status is None:
        return None
    return "duplicate" if status == "failed" else "ignored"

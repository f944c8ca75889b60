"""What a broker payment event says, read strictly from its envelope. Pure: no I/O.

A field that is missing where required, of the wrong JSON type (a number as a string, a float, a
boolean for an integer), out of bounds (integers beyond 2^53, ids beyond 300 characters) or not
text the database can store answers ``InvalidRequest``: the delivery is refused and nothing is
written. A well-formed event that does not match its hold is the state machine's business
(``needs_review``, see docs/issuance.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.errors import InvalidRequest

COMPLETED, REFUNDED, FAILED = "payment.completed", "payment.refunded", "payment.failed"
HANDLED_TYPES = (COMPLETED, REFUNDED, FAILED)
# The largest integer every JSON reader keeps exactly (and far inside the BIGINT columns).
MAX_AMOUNT = 2**53
MAX_REFUND_TICKETS = 100
MAX_REASON_CHARS = 1000
_ID = re.compile(r"[\x21-\x7e]{1,300}")  # printable ASCII, no spaces
_CURRENCY = re.compile(r"[a-z]{3}")


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """One broker event about one payment. ``amount`` and ``currency`` are required of a completion;
    on a refund they are optional (no amount: the whole payment), with the tickets it covers."""

    environment: str
    payment_id: str
    checkout_token: str | None = None
    hold_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    ticket_ids: tuple[str, ...] = ()
    reason: str | None = None


def _id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidRequest(f"{name} must be a string of 1 to 300 printable ASCII characters")
    return value


def _optional_id(value: Any, name: str) -> str | None:
    return None if value is None else _id(value, name)


def _amount(value: Any, *, required: bool, minimum: int) -> int | None:
    if value is None and not required:
        return None
    if type(value) is not int or not minimum <= value <= MAX_AMOUNT:
        raise InvalidRequest(f"data.amount must be an integer number of minor units from {minimum} to 2^53")
    return value


def _currency(value: Any, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise InvalidRequest("data.currency must be a currency code of 3 lowercase letters")
    return value


def _reason(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REASON_CHARS or "\x00" in value:
        raise InvalidRequest(f"data.reason must be text of at most {MAX_REASON_CHARS} characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidRequest("data.reason is not valid Unicode text") from None
    return value


def _ticket_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_REFUND_TICKETS:
        raise InvalidRequest(f"data.ticketIds must be a list of at most {MAX_REFUND_TICKETS} ticket ids")
    return tuple(_id(item, "data.ticketIds[]") for item in value)


def read_report(event_type: str, envelope: Mapping[str, Any]) -> PaymentReport:
    """The event's report, or ``InvalidRequest`` naming the first field that is not well-formed."""
    data = envelope.get("data")
    environment = envelope.get("environment")
    if not isinstance(data, dict) or environment not in ("test", "live"):
        raise InvalidRequest("the webhook needs an object data and an environment of test or live")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidRequest("data.metadata must be an object")
    completion = event_type == COMPLETED
    money = completion or event_type == REFUNDED
    return PaymentReport(
        environment=environment,
        payment_id=_id(data.get("paymentId"), "data.paymentId"),
        checkout_token=_optional_id(data.get("checkoutToken"), "data.checkoutToken"),
        hold_id=_optional_id(metadata.get("holdId"), "data.metadata.holdId"),
        amount=_amount(data.get("amount"), required=completion, minimum=0 if completion else 1)
        if money
        else None,
        currency=_currency(data.get("currency"), required=completion) if money else None,
        ticket_ids=_ticket_ids(data.get("ticketIds")) if event_type == REFUNDED else (),
        reason=_reason(data.get("reason")),
    )

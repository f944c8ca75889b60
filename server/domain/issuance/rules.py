"""Pure issuance rules: who a new ticket is for, and who holds a ticket after a transfer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Holder:
    """Who a ticket is for: the buyer's DID, the attendee's name and e-mail address."""

    buyer_did: str | None
    name: str | None
    email: str | None


def attendee(attendees: Sequence[Mapping[str, Any]], index: int, customer_email: str | None) -> Holder:
    """The holder of the hold's ``index``-th ticket (``buyer_did`` left to the caller): the order's
    ``index``-th attendee when it named one, the order's e-mail address when the attendee gave none."""
    given = attendees[index] if index < len(attendees) else {}
    return Holder(None, given.get("name"), given.get("email") or customer_email)


def transferred(current: Holder, buyer_did: str | None, name: str | None, email: str | None) -> Holder:
    """The holder after a transfer: what the transfer names replaces what it does not leave out."""
    return Holder(
        current.buyer_did if buyer_did is None else buyer_did,
        current.name if name is None else name,
        current.email if email is None else email,
    )

"""The door facts: the decision (admit, refuse with a reason, or needs attention — one pure
function, used online by the server and offline by the scanner, with shared vectors in
``tests/vectors/checkin.json``), what a pass's signature check means for it, the tickets a list
admits, the list rules' wire form and the status words of an online answer.

Inputs are plain facts: the outcome of checking the pass signature against the list's keys, the
list's rules, what is known of the ticket, and the ticket's earlier admitted scans on this list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sync.passes import RejectReason


class Direction(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class Verdict(StrEnum):
    ADMIT = "admit"
    REFUSE = "refuse"
    ATTENTION = "attention"


class Reason(StrEnum):
    """Stable codes, shared by the server's answers, the scanner's screen and the check-in log."""

    OK = "ok"
    INVALID = "invalid"  # malformed, forged, or signed by no key of this event's lists
    UNSUPPORTED_VERSION = "unsupported_version"  # a newer pass format: update the scanner
    UNKNOWN_TICKET = "unknown_ticket"  # validly signed, but the ticket is not known here
    WRONG_LIST = "wrong_list"  # a real ticket, but this list does not admit its tier
    VOIDED = "voided"
    REFUNDED = "refunded"
    REVOKED = "revoked"  # an older generation of a transferred ticket
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    ALREADY_CHECKED_IN = "already_checked_in"
    NOT_INSIDE = "not_inside"  # an exit without an entry
    LIST_CLOSED = "list_closed"  # the list is archived
    # Not a decision: an admitted record with this reason takes back the latest admission of the
    # ticket on the list still standing from the same device (a desk's "undo"); see sync.merge.
    UNDONE = "undone"


class PassCheck(StrEnum):
    """What checking the pass's signature against this list's keys found."""

    VALID = "valid"
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    NOT_SIGNED_FOR_LIST = "not_signed_for_list"  # no signature by this list's keys
    BAD_SIGNATURE = "bad_signature"


def pass_check(rejected: RejectReason) -> PassCheck:
    """What a pass the signature check refused means at the door: a pass signed by no key of the
    list is not signed for it (perhaps a genuine pass of another list); the rest say it themselves."""
    return (
        PassCheck.NOT_SIGNED_FOR_LIST if rejected is RejectReason.UNKNOWN_KEY else PassCheck(rejected.value)
    )


@dataclass(frozen=True, slots=True)
class ListRules:
    list_id: str
    tier_ids: frozenset[str] | None  # None admits every tier
    allow_multiple_entries: bool = False
    allow_reentry: bool = False
    valid_from_ms: int | None = None
    valid_until_ms: int | None = None
    active: bool = True

    def admits_tier(self, tier_id: str) -> bool:
        """The list rule of which tickets a list admits: those of its tiers, or of every tier."""
        return self.tier_ids is None or tier_id in self.tier_ids

    def to_wire(self) -> dict[str, Any]:
        """The door rules as offline bundles carry them (``list`` of a bundle, besides its name and
        gates): camelCase, times in epoch milliseconds, ``tierIds`` null for every tier."""
        return {
            "status": "active" if self.active else "archived",
            "tierIds": None if self.tier_ids is None else sorted(self.tier_ids),
            "allowMultipleEntries": self.allow_multiple_entries,
            "allowReentry": self.allow_reentry,
            "validFromMs": self.valid_from_ms,
            "validUntilMs": self.valid_until_ms,
        }

    @classmethod
    def from_wire(cls, list_id: str, wire: Mapping[str, Any]) -> ListRules:
        tier_ids = wire.get("tierIds")
        return cls(
            list_id=list_id,
            tier_ids=None if tier_ids is None else frozenset(tier_ids),
            allow_multiple_entries=bool(wire.get("allowMultipleEntries")),
            allow_reentry=bool(wire.get("allowReentry")),
            valid_from_ms=wire.get("validFromMs"),
            valid_until_ms=wire.get("validUntilMs"),
            active=wire.get("status") == "active",
        )


@dataclass(frozen=True, slots=True)
class TicketFacts:
    ticket_id: str
    tier_id: str
    status: str  # active | voided | refunded
    generation: int


@dataclass(frozen=True, slots=True)
class PriorScan:
    """An earlier admitted scan of the ticket on this list."""

    direction: Direction
    at_ms: int
    gate: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason
    first_entry: PriorScan | None = None  # for already_checked_in: when and where it was first admitted

    @property
    def admitted(self) -> bool:
        return self.verdict is Verdict.ADMIT


def refuse(reason: Reason, first_entry: PriorScan | None = None) -> Decision:
    return Decision(Verdict.REFUSE, reason, first_entry)


def is_inside(history: Sequence[PriorScan]) -> bool:
    """Inside after the last admitted scan was an entry (history in time order)."""
    return bool(history) and history[-1].direction is Direction.ENTRY


def decide(
    check: PassCheck,
    token_generation: int | None,
    rules: ListRules,
    ticket: TicketFacts | None,
    history: Sequence[PriorScan],
    direction: Direction,
    now_ms: int,
) -> Decision:
    """The decision for one scan. ``history`` is the ticket's admitted scans on this list in time
    order; ``ticket`` is None when the ticket is not known to the decider (an offline scanner whose
    bundle predates the ticket)."""
    if check is PassCheck.UNSUPPORTED_VERSION:
        return refuse(Reason.UNSUPPORTED_VERSION)
    if check is not PassCheck.VALID:
        # A real ticket of this event that this list does not admit is a wrong list, not a forgery.
        known_elsewhere = check is PassCheck.NOT_SIGNED_FOR_LIST and ticket is not None
        return refuse(Reason.WRONG_LIST if known_elsewhere else Reason.INVALID)
    if not rules.active:
        return refuse(Reason.LIST_CLOSED)
    if ticket is None:
        # Signed by this list, so issued for it; its status cannot be confirmed here.
        return Decision(Verdict.ATTENTION, Reason.UNKNOWN_TICKET)
    if ticket.status == "voided":
        return refuse(Reason.VOIDED)
    if ticket.status == "refunded":
        return refuse(Reason.REFUNDED)
    if token_generation is not None and token_generation < ticket.generation:
        return refuse(Reason.REVOKED)
    if not rules.admits_tier(ticket.tier_id):
        return refuse(Reason.WRONG_LIST)
    if rules.valid_from_ms is not None and now_ms < rules.valid_from_ms:
        return refuse(Reason.NOT_YET_VALID)
    if rules.valid_until_ms is not None and now_ms >= rules.valid_until_ms:
        return refuse(Reason.EXPIRED)
    entries = [scan for scan in history if scan.direction is Direction.ENTRY]
    if direction is Direction.EXIT:
        return Decision(Verdict.ADMIT, Reason.OK) if is_inside(history) else refuse(Reason.NOT_INSIDE)
    if not entries or rules.allow_multiple_entries:
        return Decision(Verdict.ADMIT, Reason.OK)
    if rules.allow_reentry and not is_inside(history):
        return Decision(Verdict.ADMIT, Reason.OK)
    return refuse(Reason.ALREADY_CHECKED_IN, entries[0])


class OnlineStatus(StrEnum):
    """The status word of an online check-in's answer, which the desk shows and reads back."""

    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    ALREADY_CHECKED_IN = "already_checked_in"
    NOT_VALID = "not_valid"


ONLINE_ADMITTED = frozenset({OnlineStatus.CHECKED_IN, OnlineStatus.CHECKED_OUT})


def online_status(decision: Decision, direction: Direction) -> OnlineStatus:
    if decision.admitted:
        return OnlineStatus.CHECKED_IN if direction is Direction.ENTRY else OnlineStatus.CHECKED_OUT
    if decision.reason is Reason.ALREADY_CHECKED_IN:
        return OnlineStatus.ALREADY_CHECKED_IN
    return OnlineStatus.NOT_VALID

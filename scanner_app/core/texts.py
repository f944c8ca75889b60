"""What door staff read: every decision in plain words, shared by the screen and the headless log."""

from __future__ import annotations

from datetime import UTC, datetime

from sync.checkin import Direction, PriorScan, Reason, Verdict, is_inside
from sync.merge import ConflictKind

# A revoked desk has wiped its data: the one line the screen and the headless command show.
# A keyboard-wedge scanner sent part of a code (no terminator came, or too few characters).
INCOMPLETE_SCAN = "Incomplete scan — scan again"

# Who decided a scan (``ScanResult.decided_by``).
DECIDED_BY = {
    "server": "decided by the server",
    "hub": "decided offline on this desk, with the hub desk's latest records",
    "desk": "decided offline on this desk",
}

# An amber scan door staff admitted by hand (``DeskCore.admit_by_hand``).
ADMITTED_BY_HAND = "Admitted by hand"

# A QR code in the camera's view that does not decode (motion blur, a thumb on a corner).
HOLD_STEADY = "Hold the code steady, a little closer"

# The pass this desk admitted a moment ago, shown again: not a second entry.
JUST_ADMITTED = "Just admitted"
JUST_ADMITTED_DETAIL = "This pass was admitted here a moment ago; nothing new was recorded."

REVOKED = "This desk was revoked by the organizer and its data wiped: enroll it again to scan."

_REASONS: dict[Reason, str] = {
    Reason.OK: "Valid ticket",
    Reason.INVALID: "Not a valid ticket",
    Reason.UNSUPPORTED_VERSION: "Ticket format too new",
    Reason.UNKNOWN_TICKET: "Ticket not known to this desk",
    Reason.WRONG_LIST: "Not valid at this entrance",
    Reason.VOIDED: "Ticket cancelled",
    Reason.REFUNDED: "Ticket refunded",
    Reason.REVOKED: "Old copy of a transferred ticket",
    Reason.NOT_YET_VALID: "Not valid yet",
    Reason.EXPIRED: "No longer valid",
    Reason.ALREADY_CHECKED_IN: "Already checked in",
    Reason.NOT_INSIDE: "Not checked in, cannot check out",
    Reason.LIST_CLOSED: "Check-in is closed",
    Reason.UNDONE: "Taken back",
}

_ADVICE: dict[Reason, str] = {
    Reason.INVALID: "The code is damaged, forged or from another event. Ask for the ticket again.",
    Reason.UNSUPPORTED_VERSION: "This desk needs an update. Check the ticket at another desk.",
    Reason.UNKNOWN_TICKET: "Issued after this desk last synced. Check the holder's booking by hand.",
    Reason.WRONG_LIST: "This ticket is for another entrance or another part of the event.",
    Reason.VOIDED: "The organizer cancelled this ticket. Send the holder to the box office.",
    Reason.REFUNDED: "This ticket was refunded. Send the holder to the box office.",
    Reason.REVOKED: "The ticket was passed on; only the newest copy is valid.",
    Reason.NOT_YET_VALID: "Check-in for this ticket has not started yet.",
    Reason.EXPIRED: "Check-in for this ticket has ended.",
    Reason.NOT_INSIDE: "There is no entry for this ticket to check out from.",
    Reason.LIST_CLOSED: "The organizer closed this check-in list.",
}


def reason_text(reason: Reason) -> str:
    """The short phrase for a reason code."""
    return _REASONS[reason]


# A conflict on the desk's conflicts screen: what happened, in plain words.
CONFLICTS: dict[ConflictKind, str] = {
    ConflictKind.KEY_REUSE: "One scan recorded twice, differently",
    ConflictKind.DOUBLE_ADMISSION: "Admitted twice",
    ConflictKind.EXIT_WITHOUT_ENTRY: "Checked out without an entry",
    ConflictKind.ADMITTED_AFTER_VOID: "Admitted after it was cancelled",
    ConflictKind.ADMITTED_AFTER_REFUND: "Admitted after it was refunded",
    ConflictKind.REVOKED_GENERATION: "Old copy of a transferred ticket admitted",
    ConflictKind.WRONG_LIST: "Admitted at an entrance it is not valid for",
}


def clock(at_ms: int, *, seconds: bool = False) -> str:
    """``19:02`` (or ``19:02:07``) in this desk's local time."""
    shape = "%H:%M:%S" if seconds else "%H:%M"
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone().strftime(shape)


def door_state(history: list[PriorScan]) -> str:
    """Where a ticket stands at the door, from its admitted scans (in time order)."""
    if not history:
        return "not checked in"
    last = history[-1]
    return f"checked in {clock(last.at_ms)}" if is_inside(history) else f"checked out {clock(last.at_ms)}"


def headline(verdict: Verdict, reason: Reason, direction: Direction) -> str:
    if verdict is Verdict.ADMIT:
        return "Admitted" if direction is Direction.ENTRY else "Checked out"
    if verdict is Verdict.ATTENTION:
        return f"Check by hand: {reason_text(reason).lower()}"
    return reason_text(reason)


def where(at_ms: int, gate: str | None, desk: str | None) -> str:
    """``at 19:02 at Gate 2 (North door)``."""
    return f"at {clock(at_ms)}" + (f" at {gate}" if gate else "") + (f" ({desk})" if desk else "")


def detail(
    verdict: Verdict,
    reason: Reason,
    *,
    tier_title: str | None,
    ticket_number: str | None,
    first_entry: str | None,
) -> str:
    """The second line: what the ticket is, or why it was refused and what to do.
    ``first_entry`` is :func:`where` of the first admission, for ``already_checked_in``."""
    if verdict is Verdict.ADMIT:
        parts = [tier_title, f"ticket {ticket_number}" if ticket_number else None]
        return ", ".join(part for part in parts if part) or reason_text(reason)
    if reason is Reason.ALREADY_CHECKED_IN:
        return f"Already checked in {first_entry}" if first_entry else "Already checked in earlier."
    return _ADVICE[reason]

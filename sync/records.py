"""Check-in records: what a desk (or the server, as device ``online``) wrote down about one scan.

Records are the unit of sync. They are created once, on the device that scanned, with an id unique
on that device, and never change; ``(device_id, record_id)`` identifies a record everywhere. The set
of records only grows, and every replica derives the same door state from the same set
(:mod:`sync.merge`), whatever order the records arrived in.

A desk never holds ticket ids at rest: its records name their ticket by a **ticket reference**
(:func:`ticket_ref`), a hash keyed by the ticket id. The desk computes it from a scanned pass; the
server answers pulls with references and resolves uploaded ones. On the wire a reference travels
as ``ticketRef`` instead of ``ticketId``; the merge rules only compare tickets, so they work alike
on either name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from sync.checkin import Direction, Reason, Verdict

ONLINE_DEVICE = "online"
TICKET_REF_PREFIX = "tref_"
MANUAL_REASON_CHARS = 100
_TICKET_REF = re.compile(r"tref_[0-9a-f]{32}")


class RecordFormatError(ValueError):
    """A record on the wire that is not well formed."""


class RecordKey(NamedTuple):
    """What names a record everywhere (a tuple: made for every record a batch goes through, at a
    third of a frozen dataclass's cost)."""

    device_id: str
    record_id: str


@dataclass(frozen=True, slots=True)
class Record:
    device_id: str
    record_id: str
    list_id: str
    ticket_id: str | None  # None when the pass could not be read
    token_generation: int | None
    direction: Direction
    decision: Verdict  # what the device decided at the door
    reason: Reason
    device_ms: int  # the device's clock when it scanned
    clock_offset_ms: int = 0  # server time minus device time, as last measured (0: unknown)
    gate: str | None = None
    scanner_did: str | None = None
    # Set when door staff admitted the holder by hand (the desk could not decide): why, in a few
    # words. Such a record is an admission like any other.
    manual_reason: str | None = None

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.device_id, self.record_id)

    @property
    def effective_ms(self) -> int:
        """The scan time on the server's clock, as well as the device could tell."""
        return self.device_ms + self.clock_offset_ms

    @property
    def admitted(self) -> bool:
        return self.decision is Verdict.ADMIT

    def sort_key(self) -> tuple[int, str, str]:
        """The one total order every replica uses: corrected time, then device, then record id."""
        return (self.effective_ms, self.device_id, self.record_id)

    def with_ticket_ref(self) -> Record:
        """This record as a desk keeps it: its ticket named by reference."""
        if self.ticket_id is None or is_ticket_ref(self.ticket_id):
            return self
        return self.naming(ticket_ref(self.ticket_id))

    def naming(self, ticket_id: str) -> Record:
        """This record with its ticket named ``ticket_id`` (by id or by reference): the fields in
        order, which takes half the time of ``dataclasses.replace`` (a server resolves a batch of
        uploaded references this way)."""
        return Record(
            self.device_id,
            self.record_id,
            self.list_id,
            ticket_id,
            self.token_generation,
            self.direction,
            self.decision,
            self.reason,
            self.device_ms,
            self.clock_offset_ms,
            self.gate,
            self.scanner_did,
            self.manual_reason,
        )

    def to_wire(self) -> dict[str, Any]:
        """The JSON form used by the sync methods (camelCase, times in epoch milliseconds)."""
        wire: dict[str, Any] = {
            "deviceId": self.device_id,
            "id": self.record_id,
            "checkInListId": self.list_id,
            "direction": self.direction.value,
            "decision": self.decision.value,
            "reason": self.reason.value,
            "deviceTimeMs": self.device_ms,
            "clockOffsetMs": self.clock_offset_ms,
        }
        ticket_field = "ticketRef" if self.ticket_id and is_ticket_ref(self.ticket_id) else "ticketId"
        optional = {
            ticket_field: self.ticket_id,
            "tokenGeneration": self.token_generation,
            "gate": self.gate,
            "scannerDid": self.scanner_did,
            "manualReason": self.manual_reason,
        }
        wire.update({k: v for k, v in optional.items() if v is not None})
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Record:
        try:
            return cls(
                device_id=_text(data["deviceId"], 64),
                record_id=_text(data["id"], 64),
                list_id=_text(data["checkInListId"], 64),
                ticket_id=_ticket(data),
                token_generation=_optional_int(data.get("tokenGeneration")),
                direction=Direction(data["direction"]),
                decision=Verdict(data["decision"]),
                reason=Reason(data["reason"]),
                device_ms=_int(data["deviceTimeMs"]),
                clock_offset_ms=_int(data.get("clockOffsetMs", 0)),
                gate=_optional_text(data.get("gate"), 100),
                scanner_did=_optional_text(data.get("scannerDid"), 2048),
                manual_reason=_optional_text(data.get("manualReason"), MANUAL_REASON_CHARS),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RecordFormatError(f"not a check-in record: {exc}") from None


def ticket_ref(ticket_id: str) -> str:
    """``tref_`` + 32 hex digits: BLAKE2b-128 keyed by the ticket id. Ticket ids carry 80 random
    bits and reach a desk only inside passes, so whoever holds a desk's files can neither compute
    a ticket's reference without its pass nor turn a reference back into its ticket."""
    digest = hashlib.blake2b(
        b"check-in record", key=ticket_id.encode()[:64], digest_size=16, person=b"att-ticketref"
    )
    return TICKET_REF_PREFIX + digest.hexdigest()


def is_ticket_ref(value: str) -> bool:
    return _TICKET_REF.fullmatch(value) is not None


def _ticket(data: dict[str, Any]) -> str | None:
    """``ticketId``, or ``ticketRef`` (a desk's record), at most one of them."""
    ticket_id, ref = data.get("ticketId"), data.get("ticketRef")
    if ref is None:
        return _optional_text(ticket_id, 64)
    if ticket_id is not None or not isinstance(ref, str) or not is_ticket_ref(ref):
        raise ValueError("ticketRef must be tref_ and 32 hex digits, without ticketId")
    return ref


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ValueError(f"expected a string of 1-{limit} characters, got {value!r:.40}")
    return value


def _optional_text(value: object, limit: int) -> str | None:
    return None if value is None else _text(value, limit)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 1 << 53:
        raise ValueError(f"expected an integer, got {value!r:.40}")
    return value


def _optional_int(value: object) -> int | None:
    return None if value is None else _int(value)

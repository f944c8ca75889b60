"""The merge rules: the door state and the conflicts every replica derives from its check-in records.

Records form a grow-only set keyed by ``(device, record id)``. :func:`derive` puts the set in the one
total order (:meth:`Record.sort_key`: corrected time, device, record id), folds each ticket's
admitted records on each list into a :class:`DoorState`, and judges every admission against the
list's rules and the ticket's status history as it stood at the admission's corrected time. What it
finds wrong becomes a :class:`Conflict`, a value with a stable id. The result depends on the set
alone: any permutation or duplication of the input gives the same :class:`DerivedState`. The rules
and their vectors (``tests/vectors/merge.json``) are described in ``docs/sync-protocol.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from itertools import pairwise

from sync.checkin import Direction, ListRules, PassCheck, PriorScan, Reason, TicketFacts, decide
from sync.records import Record, RecordKey

GroupKey = tuple[str, str]
"""``(list id, ticket id)``: the records that make up one ticket's door state on one list."""


class ConflictKind(StrEnum):
    KEY_REUSE = "key_reuse"  # two different records under one (device, record id)
    DOUBLE_ADMISSION = "double_admission"  # an entry the list's rules would have refused
    EXIT_WITHOUT_ENTRY = "exit_without_entry"
    ADMITTED_AFTER_VOID = "admitted_after_void"
    ADMITTED_AFTER_REFUND = "admitted_after_refund"
    REVOKED_GENERATION = "revoked_generation"  # an older pass of a transferred ticket
    WRONG_LIST = "wrong_list"  # the list does not admit the ticket's tier


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One row of a ticket's history: the status and generation it was left in, on the server's clock."""

    at_ms: int
    status: str  # active | voided | refunded
    generation: int


@dataclass(frozen=True, slots=True)
class TicketHistory:
    """A ticket's status history (issued, voided, refunded, transferred), oldest first."""

    ticket_id: str
    tier_id: str
    changes: tuple[StatusChange, ...]

    def __post_init__(self) -> None:
        if not self.changes:
            raise ValueError("a ticket history starts with its issuance")
        if any(a.at_ms > b.at_ms for a, b in pairwise(self.changes)):
            raise ValueError("status changes must be in time order")

    def facts_at(self, at_ms: int) -> TicketFacts:
        """The ticket as it stood at ``at_ms`` (a change at exactly ``at_ms`` counts; of changes at
        the same time the later one wins). Before its first change, as first issued."""
        current = self.changes[0]
        for change in self.changes:
            if change.at_ms > at_ms:
                break
            current = change
        return TicketFacts(self.ticket_id, self.tier_id, current.status, current.generation)


@dataclass(frozen=True, slots=True)
class DoorState:
    """One ticket on one list, folded from its admitted records in the total order."""

    inside: bool = False
    entries: int = 0
    first_entry: RecordKey | None = None
    last: RecordKey | None = None


@dataclass(frozen=True, slots=True)
class ListCounts:
    checked_in: int = 0  # tickets with at least one admitted entry
    inside: int = 0  # tickets whose last admitted record is an entry
    scans: int = 0  # records, one per key
    refused: int = 0  # records not admitted (refused or left for attention)


@dataclass(frozen=True, slots=True)
class Conflict:
    """Something the organizer must look at; ``records`` are in the total order, the offending
    record last (for ``double_admission``: the earlier admission, then this one)."""

    kind: ConflictKind
    list_id: str
    ticket_id: str | None
    records: tuple[RecordKey, ...]

    @property
    def conflict_id(self) -> str:
        """Stable everywhere: SHA-256 of ``[kind, [[device, record id], ...]]`` as compact UTF-8 JSON
        (keys sorted), first 24 hex digits."""
        keys = [[key.device_id, key.record_id] for key in sorted(self.records)]
        text = json.dumps([self.kind.value, keys], separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class TicketState:
    """What one ticket's records on one list add up to."""

    door: DoorState
    scans: tuple[PriorScan, ...]  # the admitted records, in the total order
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True, slots=True)
class DerivedState:
    """Door state, counts and conflicts derived from a set of records. ``doors`` and ``scans`` hold
    every ``(list id, ticket id)`` with at least one admitted record."""

    doors: Mapping[GroupKey, DoorState]
    scans: Mapping[GroupKey, tuple[PriorScan, ...]]
    counts: Mapping[str, ListCounts]
    conflicts: tuple[Conflict, ...]  # by the offending record's place in the total order, then kind

    def door(self, list_id: str, ticket_id: str) -> DoorState:
        return self.doors.get((list_id, ticket_id), DoorState())

    def count(self, list_id: str) -> ListCounts:
        return self.counts.get(list_id, ListCounts())


def canonical_json(record: Record) -> str:
    """The record's wire form as compact UTF-8 JSON with sorted keys: of two records sharing a key,
    the one with the smaller text (by code point) is kept."""
    return json.dumps(record.to_wire(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def variants_by_key(records: Iterable[Record]) -> dict[RecordKey, tuple[Record, ...]]:
    """Every key's distinct records, the kept one first. Duplicates collapse."""
    found: dict[RecordKey, set[Record]] = defaultdict(set)
    for record in records:
        found[record.key].add(record)
    return {key: sort_variants(variants) for key, variants in found.items()}


def sort_variants(variants: Iterable[Record]) -> tuple[Record, ...]:
    """Distinct records of one key, the kept one first."""
    found = tuple(variants)
    return found if len(found) == 1 else tuple(sorted(found, key=canonical_json))


def ordered(records: Iterable[Record]) -> list[Record]:
    """The set: one record per key, in the total order."""
    return sorted((variants[0] for variants in variants_by_key(records).values()), key=Record.sort_key)


def key_reuse(variants: tuple[Record, ...]) -> Conflict:
    """The conflict of a key that carries more than one record (``variants`` as sorted)."""
    kept = variants[0]
    return Conflict(ConflictKind.KEY_REUSE, kept.list_id, kept.ticket_id, (kept.key,))


def standing(records: Iterable[Record]) -> list[Record]:
    """One ``(list, ticket)``'s admissions that stand, in the total order: every admitted record
    but the ``undone`` ones and those they take back. An ``undone`` record takes back the latest
    admission before it, from its own device, that still stands (a desk undoes only its own last
    admission); with none, it takes back nothing."""
    kept: list[Record] = []
    for record in sorted(records, key=Record.sort_key):
        if not record.admitted:
            continue
        if record.reason is Reason.UNDONE:
            own = [n for n, earlier in enumerate(kept) if earlier.device_id == record.device_id]
            if own:
                del kept[own[-1]]
            continue
        kept.append(record)
    return kept


def judge_ticket(
    records: Iterable[Record], rules: ListRules | None, ticket: TicketHistory | None
) -> TicketState:
    """Fold one ``(list, ticket)``'s records, any order, one per key. Door conflicts need the list's
    rules; ticket conflicts need the ticket's history too. Refused records, ``undone`` records and
    the admissions they take back change nothing."""
    door = DoorState()
    history: list[PriorScan] = []
    conflicts: list[Conflict] = []
    for record in standing(records):
        if rules is not None:
            conflicts.extend(_door_conflicts(record, rules, door, history))
            if ticket is not None and record.direction is Direction.ENTRY:
                conflicts.extend(_ticket_conflicts(record, rules, ticket))
        door = _fold(door, record)
        history.append(PriorScan(record.direction, record.effective_ms, record.gate, record.device_id))
    return TicketState(door, tuple(history), tuple(conflicts))


def derive(
    records: Iterable[Record], lists: Mapping[str, ListRules], tickets: Mapping[str, TicketHistory]
) -> DerivedState:
    """The state every replica holding this set of records (and these facts) agrees on."""
    variants = variants_by_key(records)
    kept = {key: found[0] for key, found in variants.items()}
    groups: dict[GroupKey, list[Record]] = defaultdict(list)
    for record in kept.values():
        if record.ticket_id is not None:
            groups[(record.list_id, record.ticket_id)].append(record)
    doors: dict[GroupKey, DoorState] = {}
    scans: dict[GroupKey, tuple[PriorScan, ...]] = {}
    conflicts = [key_reuse(found) for found in variants.values() if len(found) > 1]
    for group in sorted(groups):
        state = judge_ticket(groups[group], lists.get(group[0]), tickets.get(group[1]))
        if state.scans:
            doors[group], scans[group] = state.door, state.scans
        conflicts.extend(state.conflicts)
    conflicts.sort(key=lambda c: (max(kept[key].sort_key() for key in c.records), c.kind.value))
    return DerivedState(doors, scans, _counts(kept.values(), doors, lists), tuple(conflicts))


def prior_scans(source: DerivedState | Iterable[Record], list_id: str, ticket_id: str) -> list[PriorScan]:
    """The ticket's admitted scans on the list in the total order: the ``history`` for ``decide()``."""
    if isinstance(source, DerivedState):
        return list(source.scans.get((list_id, ticket_id), ()))
    group = [r for r in ordered(source) if r.list_id == list_id and r.ticket_id == ticket_id]
    return list(judge_ticket(group, None, None).scans)


def _door_conflicts(
    record: Record, rules: ListRules, door: DoorState, history: list[PriorScan]
) -> Iterator[Conflict]:
    """What ``decide()`` says of the door alone: the same list, open, with no tier or time limits."""
    door_rules = replace(rules, tier_ids=None, valid_from_ms=None, valid_until_ms=None, active=True)
    reason = decide(PassCheck.VALID, None, door_rules, _ANY_TICKET, history, record.direction, 0).reason
    if reason is Reason.ALREADY_CHECKED_IN:
        # Against the first entry, as decide() reports it; on a re-entry list, the entry still open.
        earlier = door.last if rules.allow_reentry else door.first_entry
        assert earlier is not None
        yield _conflict(ConflictKind.DOUBLE_ADMISSION, record, earlier)
    elif reason is Reason.NOT_INSIDE:
        yield _conflict(ConflictKind.EXIT_WITHOUT_ENTRY, record)


_ANY_TICKET = TicketFacts("", "", "active", 0)


def _ticket_conflicts(record: Record, rules: ListRules, ticket: TicketHistory) -> Iterator[Conflict]:
    facts = ticket.facts_at(record.effective_ms)
    if facts.status == "voided":
        yield _conflict(ConflictKind.ADMITTED_AFTER_VOID, record)
    elif facts.status == "refunded":
        yield _conflict(ConflictKind.ADMITTED_AFTER_REFUND, record)
    if record.token_generation is not None and record.token_generation < facts.generation:
        yield _conflict(ConflictKind.REVOKED_GENERATION, record)
    if not rules.admits_tier(facts.tier_id):
        yield _conflict(ConflictKind.WRONG_LIST, record)


def _conflict(kind: ConflictKind, record: Record, *earlier: RecordKey) -> Conflict:
    return Conflict(kind, record.list_id, record.ticket_id, (*earlier, record.key))


def _fold(door: DoorState, record: Record) -> DoorState:
    if record.direction is Direction.EXIT:
        return replace(door, inside=False, last=record.key)
    return DoorState(True, door.entries + 1, door.first_entry or record.key, record.key)


def _counts(
    kept: Iterable[Record], doors: Mapping[GroupKey, DoorState], lists: Mapping[str, ListRules]
) -> dict[str, ListCounts]:
    scans: dict[str, int] = dict.fromkeys(lists, 0)
    refused: dict[str, int] = dict.fromkeys(lists, 0)
    checked_in: dict[str, int] = defaultdict(int)
    inside: dict[str, int] = defaultdict(int)
    for record in kept:
        scans[record.list_id] = scans.get(record.list_id, 0) + 1
        refused[record.list_id] = refused.get(record.list_id, 0) + (not record.admitted)
    for (list_id, _), door in doors.items():
        checked_in[list_id] += door.entries > 0
        inside[list_id] += door.inside
    return {
        list_id: ListCounts(checked_in[list_id], inside[list_id], scans[list_id], refused[list_id])
        for list_id in sorted(scans)
    }

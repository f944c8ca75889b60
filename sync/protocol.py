"""The sync protocol, sans I/O: one step function that takes a replica's state and an event and
returns the new state and the commands to carry out, plus the serving side as two pure functions.

A replica (a desk scanner, or the server) holds a :class:`Store` of records, uploads what its
upstream has not confirmed, pulls from its peers with a cursor per peer, watches its bundle's age
and surfaces conflicts as they appear. The caller owns every clock reading (``Tick``) and all I/O:
it sends ``Upload`` and ``PullSince``, feeds the answers back as ``UploadAcked`` and
``RecordsPulled``, and answers its own peers with :func:`accept_upload` (through ``UploadReceived``)
and :func:`records_since`. The server and a hub desk answer with the same semantics, so the protocol
runs server-to-desk and desk-to-desk alike. See ``docs/sync-protocol.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from sync.checkin import Direction, ListRules
from sync.merge import (
    Conflict,
    GroupKey,
    TicketHistory,
    judge_ticket,
    key_reuse,
    sort_variants,
)
from sync.records import Record, RecordKey


class UploadResult(StrEnum):
    STORED = "stored"  # new here
    DUPLICATE = "duplicate"  # already held: a retry, or learnt from elsewhere
    REJECTED = "rejected"  # refused by the receiver (for instance a list the device may not use)


class Store:
    """A replica's records as it serves them: every distinct record once, in arrival order, indexed
    by key and by ``(list, ticket)``.

    A store is a value: adding returns a new store and leaves this one as it was. Versions share one
    growing list and see their own prefix of it, so adding costs the records added, not the records
    held; adding to a version that was already extended copies it first. Like any value it may be
    read from several threads, but extended from one at a time."""

    __slots__ = ("_by_group", "_by_key", "_records", "_size")

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._records: list[Record] = []
        self._size = 0
        self._by_key: dict[RecordKey, tuple[int, ...]] = {}
        self._by_group: dict[GroupKey, tuple[int, ...]] = {}
        self._append(dict.fromkeys(records))

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Store) and self.log == other.log

    __hash__ = None  # type: ignore[assignment]  # equal by content, so not hashable

    def __repr__(self) -> str:
        return f"Store({self._size} records)"

    @property
    def log(self) -> tuple[Record, ...]:
        """Every record, in arrival order (a copy)."""
        return tuple(self._records[: self._size])

    def page(self, start: int, limit: int) -> tuple[Record, ...]:
        return tuple(self._records[start : min(start + limit, self._size)])

    def holds(self, record: Record) -> bool:
        return any(self._records[at] == record for at in self._positions(self._by_key, record.key))

    def variants(self, key: RecordKey) -> tuple[Record, ...]:
        """The records under ``key``, the kept one first; usually one, or none."""
        return sort_variants(self._records[at] for at in self._positions(self._by_key, key))

    def group(self, group: GroupKey) -> tuple[Record, ...]:
        """The kept records of one ``(list, ticket)``, in arrival order."""
        found = (self._records[at] for at in self._positions(self._by_group, group))
        return tuple(record for record in found if self.variants(record.key)[0] == record)

    def groups(self) -> list[GroupKey]:
        """Every ``(list, ticket)`` with a record here."""
        return [group for group, places in self._by_group.items() if places[0] < self._size]

    def _extended(self, records: Iterable[Record]) -> Store:
        """This store with ``records`` added after the others (none of them held yet)."""
        base = self if self._size == len(self._records) else Store(self.log)
        grown = Store()
        grown._records, grown._by_key, grown._by_group = base._records, base._by_key, base._by_group
        grown._size = base._size
        grown._append(records)
        return grown

    def _append(self, records: Iterable[Record]) -> None:
        for record in records:
            at = len(self._records)
            self._records.append(record)
            self._by_key[record.key] = (*self._by_key.get(record.key, ()), at)
            if record.ticket_id is not None:
                group = (record.list_id, record.ticket_id)
                self._by_group[group] = (*self._by_group.get(group, ()), at)
        self._size = len(self._records)

    def _positions(self, index: Mapping[Any, tuple[int, ...]], entry: object) -> list[int]:
        return [at for at in index.get(entry, ()) if at < self._size]


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What a replica does with a batch, given what it held under the batch's keys."""

    results: tuple[UploadResult, ...]  # one per record of the batch, in order
    stored: tuple[Record, ...]  # the records new here, each once, in the order they came
    kept: tuple[Record, ...]  # the stored records that are now their key's canonical record
    superseded: tuple[Record, ...]  # records that were canonical before and are not any more
    reused: Mapping[RecordKey, tuple[Record, ...]]  # keys of stored records holding several: all, kept first
    # Kept records that are admitted entries of a ticket where nothing held before under their key
    # was one: the check-ins to tell of, once per key however often a key is sent or reused.
    first_entries: tuple[Record, ...]

    @property
    def touched(self) -> set[GroupKey]:
        """The ``(list, ticket)`` groups whose kept records changed: to be judged again."""
        return {(r.list_id, r.ticket_id) for r in (*self.kept, *self.superseded) if r.ticket_id is not None}


def accept(held: Iterable[Record], batch: Iterable[Record]) -> Acceptance:
    """The upload acceptance rule. Every record not held yet is stored, a different record under a
    held key too (so every replica ends with the same set); a record already held, or earlier in
    the batch, is a duplicate. Of the records under one key the canonical one
    (:func:`sync.merge.sort_variants`) is kept, whatever the order they arrived in, and a key with
    several is a ``key_reuse``. ``held`` may hold records of other keys; they are ignored."""
    records = tuple(batch)
    before: dict[RecordKey, set[Record]] = {record.key: set() for record in records}
    for record in held:
        if record.key in before:
            before[record.key].add(record)
    results: list[UploadResult] = []
    new: dict[Record, None] = {}
    for record in records:
        duplicate = record in new or record in before[record.key]
        results.append(UploadResult.DUPLICATE if duplicate else UploadResult.STORED)
        if not duplicate:
            new[record] = None
    added: dict[RecordKey, set[Record]] = {}  # in the order the keys' first new records came
    for record in new:
        added.setdefault(record.key, set()).add(record)
    after = {key: sort_variants(before[key] | records) for key, records in added.items()}
    was = {key: sort_variants(before[key])[0] for key in added if before[key]}
    kept = tuple(after[key][0] for key in added if was.get(key) != after[key][0])
    return Acceptance(
        results=tuple(results),
        stored=tuple(new),
        kept=kept,
        superseded=tuple(was[record.key] for record in kept if record.key in was),
        reused={key: variants for key, variants in after.items() if len(variants) > 1},
        first_entries=tuple(
            record
            for record in kept
            if _is_entry(record) and not any(_is_entry(earlier) for earlier in before[record.key])
        ),
    )


def _is_entry(record: Record) -> bool:
    return record.admitted and record.direction is Direction.ENTRY and record.ticket_id is not None


def accept_upload(store: Store, records: Iterable[Record]) -> tuple[Store, tuple[UploadResult, ...]]:
    """Add records by :func:`accept`, idempotently: a re-sent batch changes nothing."""
    accepted = _accepted(store, tuple(records))
    return (store._extended(accepted.stored) if accepted.stored else store), accepted.results


def _accepted(store: Store, batch: Sequence[Record]) -> Acceptance:
    return accept((held for key in {r.key for r in batch} for held in store.variants(key)), batch)


def records_since(store: Store, cursor: int, limit: int) -> tuple[tuple[Record, ...], int]:
    """Up to ``limit`` records after ``cursor``, and the cursor to ask with next. A cursor is a place
    in this store's arrival order, so a record that arrives late, whatever its time, is still served
    after every cursor handed out before it. A cursor this store never handed out (negative, or past
    the end: the store was replaced) starts again from the beginning; repeats are duplicates."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    start = cursor if 0 <= cursor <= len(store) else 0
    page = store.page(start, limit)
    return page, start + len(page)


@dataclass(frozen=True, slots=True)
class SyncConfig:
    upstream: str | None  # where uploads go (the server, or a hub desk); None on the server itself
    peers: tuple[str, ...] = ()  # whom to pull from: usually the upstream, perhaps a hub desk too
    batch_size: int = 500
    retry_after_ms: int = 5_000  # resend a batch that has had no answer for this long
    pull_every_ms: int = 500
    stale_bundle_ms: int = 15 * 60_000

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.retry_after_ms < 1 or self.pull_every_ms < 1:
            raise ValueError("batch size and intervals must be positive")


@dataclass(frozen=True, slots=True)
class BundleStatus:
    seq: int
    issued_at_ms: int
    warned: bool = False  # WarnStaleBundle was issued for this bundle


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica's sync state. ``pending`` maps each record the upstream has not confirmed to when
    it was last sent (None: not yet)."""

    config: SyncConfig
    store: Store = field(default_factory=Store)
    lists: Mapping[str, ListRules] = field(default_factory=dict)
    tickets: Mapping[str, TicketHistory] = field(default_factory=dict)
    bundle: BundleStatus | None = None
    pending: Mapping[Record, int | None] = field(default_factory=dict)
    rejected: frozenset[RecordKey] = frozenset()  # records the upstream refused to store
    cursors: Mapping[str, int] = field(default_factory=dict)
    pulled_at: Mapping[str, int] = field(default_factory=dict)
    surfaced: frozenset[str] = frozenset()  # ids of the conflicts already surfaced


# Events: what happened.


@dataclass(frozen=True, slots=True)
class ScanCaptured:
    """This device wrote a record down."""

    record: Record


@dataclass(frozen=True, slots=True)
class UploadReceived:
    """A peer uploaded records to this replica (the server, or a hub desk)."""

    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class UploadAcked:
    """The upstream's answer to an ``Upload``: one result per record of the batch."""

    batch: tuple[Record, ...]
    results: tuple[UploadResult, ...]


@dataclass(frozen=True, slots=True)
class RecordsPulled:
    """A peer's answer to ``PullSince(peer, since)``."""

    peer: str
    since: int
    records: tuple[Record, ...]
    cursor: int


@dataclass(frozen=True, slots=True)
class BundleReceived:
    """A bundle, with the list rules and ticket histories it carries."""

    seq: int
    issued_at_ms: int
    lists: Mapping[str, ListRules]
    tickets: Mapping[str, TicketHistory]


@dataclass(frozen=True, slots=True)
class Tick:
    now_ms: int


Event = ScanCaptured | UploadReceived | UploadAcked | RecordsPulled | BundleReceived | Tick


# Commands: what to do.


@dataclass(frozen=True, slots=True)
class Upload:
    peer: str
    batch: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class PullSince:
    peer: str
    cursor: int


@dataclass(frozen=True, slots=True)
class AnswerUpload:
    """The answer to ``UploadReceived``: one result per uploaded record."""

    results: tuple[UploadResult, ...]


@dataclass(frozen=True, slots=True)
class SurfaceConflict:
    conflict: Conflict


@dataclass(frozen=True, slots=True)
class WarnStaleBundle:
    age_ms: int


Command = Upload | PullSince | AnswerUpload | SurfaceConflict | WarnStaleBundle


def step(state: Replica, event: Event) -> tuple[Replica, tuple[Command, ...]]:
    """The whole protocol: the replica after ``event``, and what to do now."""
    if isinstance(event, ScanCaptured):
        state, _, commands = _absorb(state, (event.record,), queue=True)
        return state, commands
    if isinstance(event, UploadReceived):
        state, results, commands = _absorb(state, event.records, queue=True)
        return state, (AnswerUpload(results), *commands)
    if isinstance(event, UploadAcked):
        return _acked(state, event), ()
    if isinstance(event, RecordsPulled):
        return _pulled(state, event)
    if isinstance(event, BundleReceived):
        return _bundle(state, event)
    return _tick(state, event.now_ms)


def resume(
    config: SyncConfig, records: Iterable[Record], unacked: Iterable[Record] = ()
) -> tuple[Replica, tuple[Command, ...]]:
    """A replica restarted from what it persisted: its records, and those its upstream had not yet
    confirmed. Cursors start over (what comes again is a duplicate); conflicts surface again."""
    unacked = tuple(unacked)
    state, _, commands = _absorb(Replica(config), (*records, *unacked), queue=False)
    pending = dict.fromkeys(unacked) if config.upstream is not None else {}
    return replace(state, pending=pending), commands


def _absorb(
    state: Replica, records: Sequence[Record], *, queue: bool
) -> tuple[Replica, tuple[UploadResult, ...], tuple[Command, ...]]:
    """Store records by :func:`accept`, queue the new ones for the upstream, and judge again the
    tickets whose kept records changed (a new record, or a new variant kept in place of another)."""
    accepted = _accepted(state.store, records)
    if not accepted.stored:
        return state, accepted.results, ()
    store = state.store._extended(accepted.stored)
    pending = state.pending
    if queue and state.config.upstream is not None:
        pending = {**pending, **dict.fromkeys(accepted.stored)}
    reused = [key_reuse(variants) for variants in accepted.reused.values()]
    state, commands = _surface(replace(state, store=store, pending=pending), reused, accepted.touched)
    return state, accepted.results, commands


def _surface(
    state: Replica, found: list[Conflict], groups: Iterable[GroupKey]
) -> tuple[Replica, tuple[Command, ...]]:
    """Judge the groups again and surface each conflict not surfaced before. Without the list's
    rules there is nothing to judge."""
    for group in sorted(groups):
        list_id, ticket_id = group
        if list_id not in state.lists:
            continue
        judged = judge_ticket(
            state.store.group(group), state.lists.get(list_id), state.tickets.get(ticket_id)
        )
        found.extend(judged.conflicts)
    new = {c.conflict_id: c for c in found if c.conflict_id not in state.surfaced}
    if not new:
        return state, ()
    state = replace(state, surfaced=state.surfaced | new.keys())
    return state, tuple(SurfaceConflict(conflict) for conflict in new.values())


def _acked(state: Replica, event: UploadAcked) -> Replica:
    """Every answer is final: stored and duplicate records are safe upstream, rejected ones would
    be refused again."""
    answers = dict(zip(event.batch, event.results, strict=True))
    if not answers.keys() & state.pending.keys():
        return state
    refused = {
        r.key for r, result in answers.items() if result is UploadResult.REJECTED and r in state.pending
    }
    pending = {r: sent for r, sent in state.pending.items() if r not in answers}
    return replace(state, pending=pending, rejected=state.rejected | refused)


def _pulled(state: Replica, event: RecordsPulled) -> tuple[Replica, tuple[Command, ...]]:
    """Records pulled from the upstream are known there; from any other peer, they are queued for
    it. Only the answer to the current cursor moves it (answers can come late, twice or never),
    so it never goes back. A page that moved the cursor asks for the next at once; one that did
    not (a server holding back records it has not settled) waits for the next tick."""
    from_upstream = event.peer == state.config.upstream
    state, _, commands = _absorb(state, event.records, queue=not from_upstream)
    if from_upstream and state.pending:
        known = set(event.records)
        state = replace(state, pending={r: sent for r, sent in state.pending.items() if r not in known})
    if event.since != state.cursors.get(event.peer, 0):
        return state, commands
    state = replace(state, cursors={**state.cursors, event.peer: event.cursor})
    moved = bool(event.records) and event.cursor != event.since
    more = (PullSince(event.peer, event.cursor),) if moved else ()
    return state, (*commands, *more)


def _bundle(state: Replica, event: BundleReceived) -> tuple[Replica, tuple[Command, ...]]:
    """A newer bundle replaces the facts; tickets whose facts changed are judged again. An older
    or repeated bundle (by sequence number) is ignored."""
    if state.bundle is not None and event.seq <= state.bundle.seq:
        return state, ()
    changed = [
        (list_id, ticket_id)
        for list_id, ticket_id in state.store.groups()
        if state.lists.get(list_id) != event.lists.get(list_id)
        or state.tickets.get(ticket_id) != event.tickets.get(ticket_id)
    ]
    state = replace(
        state,
        lists=dict(event.lists),
        tickets=dict(event.tickets),
        bundle=BundleStatus(event.seq, event.issued_at_ms),
    )
    return _surface(state, [], changed)


def _tick(state: Replica, now_ms: int) -> tuple[Replica, tuple[Command, ...]]:
    """Send what is due: unsent records and unanswered ones past the retry timeout, in batches;
    pulls from peers not asked for ``pull_every_ms``; one warning when the bundle turns stale."""
    config = state.config
    commands: list[Command] = []
    ready = [r for r, sent in state.pending.items() if sent is None or now_ms - sent >= config.retry_after_ms]
    if ready and config.upstream is not None:
        size = config.batch_size
        commands += [Upload(config.upstream, tuple(ready[i : i + size])) for i in range(0, len(ready), size)]
        state = replace(state, pending={**state.pending, **dict.fromkeys(ready, now_ms)})
    due = [
        peer
        for peer in config.peers
        if peer not in state.pulled_at or now_ms - state.pulled_at[peer] >= config.pull_every_ms
    ]
    if due:
        commands += [PullSince(peer, state.cursors.get(peer, 0)) for peer in due]
        state = replace(state, pulled_at={**state.pulled_at, **dict.fromkeys(due, now_ms)})
    bundle = state.bundle
    if bundle is not None and not bundle.warned and now_ms - bundle.issued_at_ms > config.stale_bundle_ms:
        commands.append(WarnStaleBundle(now_ms - bundle.issued_at_ms))
        state = replace(state, bundle=replace(bundle, warned=True))
    return state, tuple(commands)

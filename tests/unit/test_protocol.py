"""The sync step function and the serving side, one mechanism at a time: batching, retries,
idempotent acceptance, cursors, conflicts, bundle freshness, hub mode and restarts."""

from __future__ import annotations

import pytest

from sync.checkin import Direction, ListRules, Reason, Verdict
from sync.merge import ConflictKind, StatusChange, TicketHistory
from sync.protocol import (
    AnswerUpload,
    BundleReceived,
    Command,
    Event,
    PullSince,
    RecordsPulled,
    Replica,
    ScanCaptured,
    Store,
    SurfaceConflict,
    SyncConfig,
    Tick,
    Upload,
    UploadAcked,
    UploadReceived,
    UploadResult,
    WarnStaleBundle,
    accept,
    accept_upload,
    records_since,
    resume,
    step,
)
from sync.records import Record

DESK = SyncConfig(upstream="server", peers=("server",))
LISTS = {"main": ListRules("main", None)}
ACTIVE = {"t1": TicketHistory("t1", "ga", (StatusChange(0, "active", 1),))}


def record(
    device: str = "dev_a",
    record_id: str = "r1",
    ticket: str = "t1",
    at: int = 1000,
    direction: Direction = Direction.ENTRY,
) -> Record:
    return Record(device, record_id, "main", ticket, 1, direction, Verdict.ADMIT, Reason.OK, at)


def many(count: int) -> list[Record]:
    return [record(record_id=f"r{i:05}", ticket=f"t{i}", at=i) for i in range(count)]


def run(state: Replica, *events: Event) -> tuple[Replica, list[Command]]:
    """Step through events, collecting every command."""
    commands: list[Command] = []
    for event in events:
        state, out = step(state, event)
        commands += out
    return state, commands


def uploads(commands: list[Command]) -> list[Upload]:
    return [c for c in commands if isinstance(c, Upload)]


def conflicts(commands: list[Command]) -> list[SurfaceConflict]:
    return [c for c in commands if isinstance(c, SurfaceConflict)]


# Uploading.


def test_uploads_go_in_batches_of_at_most_the_batch_size_in_capture_order() -> None:
    captured = many(1200)
    _, commands = run(Replica(DESK), *(ScanCaptured(r) for r in captured), Tick(0))
    sent = uploads(commands)
    assert [len(u.batch) for u in sent] == [500, 500, 200]
    assert {u.peer for u in sent} == {"server"}
    assert [r for u in sent for r in u.batch] == captured


def test_ten_thousand_offline_records_take_twenty_requests() -> None:
    state, _ = resume(DESK, [], unacked=many(10_000))
    _, commands = step(state, Tick(0))
    assert len(uploads(list(commands))) == 20


def test_an_unanswered_batch_is_resent_after_the_timeout_and_only_then() -> None:
    state, commands = run(Replica(DESK), ScanCaptured(record()), Tick(0))
    first = uploads(commands)
    state, commands = run(state, Tick(DESK.retry_after_ms - 1))
    assert uploads(commands) == []
    state, commands = run(state, Tick(DESK.retry_after_ms))
    assert uploads(commands) == first
    state, commands = run(state, UploadAcked(first[0].batch, (UploadResult.STORED,)), Tick(60_000))
    assert uploads(commands) == []
    assert state.pending == {}


def test_every_answer_is_final_and_late_answers_change_nothing() -> None:
    a, b = record(record_id="r1"), record(record_id="r2", ticket="t2")
    state, commands = run(Replica(DESK), ScanCaptured(a), ScanCaptured(b), Tick(0))
    batch = uploads(commands)[0].batch
    answer = UploadAcked(batch, (UploadResult.DUPLICATE, UploadResult.REJECTED))
    state, _ = run(state, answer)
    assert state.pending == {}
    assert state.rejected == {b.key}
    assert run(state, answer)[0] == state
    assert uploads(run(state, Tick(60_000))[1]) == []
    with pytest.raises(ValueError, match="zip"):
        step(state, UploadAcked(batch, (UploadResult.STORED,)))


# Serving.


def test_accepting_an_upload_is_idempotent_by_record() -> None:
    a, b = record(record_id="r1"), record(record_id="r2")
    store, results = accept_upload(Store(), [a, b, a])
    assert results == (UploadResult.STORED, UploadResult.STORED, UploadResult.DUPLICATE)
    again, results = accept_upload(store, [b, a])
    assert again is store
    assert results == (UploadResult.DUPLICATE, UploadResult.DUPLICATE)
    assert store.log == (a, b)


def test_a_different_record_under_a_held_key_is_kept_as_a_variant() -> None:
    a = record(record_id="r1", ticket="t2")
    reused = record(record_id="r1", ticket="t1")
    store, _ = accept_upload(Store(), [a])
    store, results = accept_upload(store, [reused])
    assert results == (UploadResult.STORED,)
    assert store.variants(a.key) == (reused, a)  # the smaller wire JSON first: it is the kept one
    assert records_since(store, 0, 10) == ((a, reused), 2)


def test_acceptance_keeps_the_canonical_record_whatever_the_arrival_order() -> None:
    refused = Record("dev_a", "r1", "main", "t2", 1, Direction.ENTRY, Verdict.REFUSE, Reason.VOIDED, 900)
    admitted = record(record_id="r1", ticket="t1")  # its wire JSON is the smaller: the kept one
    first = accept([], [refused, refused])
    assert first.results == (UploadResult.STORED, UploadResult.DUPLICATE)
    assert (first.stored, first.kept, first.superseded, first.first_entries) == (
        (refused,),
        (refused,),
        (),
        (),
    )
    second = accept([refused], [admitted, refused])
    assert second.results == (UploadResult.STORED, UploadResult.DUPLICATE)
    assert (second.stored, second.kept, second.superseded) == ((admitted,), (admitted,), (refused,))
    assert second.reused == {admitted.key: (admitted, refused)}
    assert second.first_entries == (admitted,)  # told now: the key's kept record is an entry
    assert second.touched == {("main", "t1"), ("main", "t2")}
    other_order = accept([admitted], [refused])
    assert (other_order.stored, other_order.kept, other_order.superseded) == ((refused,), (), ())
    assert other_order.reused == second.reused and other_order.first_entries == ()


def test_a_key_is_told_as_an_entry_once_however_often_it_is_reused() -> None:
    entry = record(record_id="r1", ticket="t3")
    smaller = record(record_id="r1", ticket="t1")
    assert accept([], [entry]).first_entries == (entry,)
    later = accept([entry], [smaller])
    assert later.kept == (smaller,) and later.first_entries == ()
    assert accept([entry, smaller], [entry, smaller]).stored == ()


def test_the_cursor_is_the_arrival_order_so_late_records_are_not_missed() -> None:
    late, early = record(record_id="r1", at=5_000), record(record_id="r2", at=1_000)
    store, _ = accept_upload(Store(), [late])
    page, cursor = records_since(store, 0, 10)
    assert (page, cursor) == ((late,), 1)
    store, _ = accept_upload(store, [early])  # scanned earlier, arrived later
    assert records_since(store, cursor, 10) == ((early,), 2)
    assert records_since(store, 2, 10) == ((), 2)


def test_a_store_is_a_value_each_version_sees_its_own_records() -> None:
    a, b, c = many(3)
    base, _ = accept_upload(Store(), [a])
    left, _ = accept_upload(base, [b])
    right, _ = accept_upload(base, [c])  # base was extended already: this one copies it
    assert (base.log, left.log, right.log) == ((a,), (a, b), (a, c))
    assert not base.holds(b) and not right.holds(b) and left.holds(b)
    assert base.groups() == [("main", a.ticket_id)]
    assert records_since(base, 0, 10) == ((a,), 1)


def test_pages_and_cursors_this_store_never_handed_out() -> None:
    store, _ = accept_upload(Store(), many(5))
    assert records_since(store, 0, 2) == (store.log[:2], 2)
    assert records_since(store, 4, 2) == (store.log[4:], 5)
    assert records_since(store, 99, 2) == (store.log[:2], 2)  # a replaced store: start again
    assert records_since(store, -1, 2) == (store.log[:2], 2)
    with pytest.raises(ValueError, match="limit"):
        records_since(store, 0, 0)


# Pulling.


def test_a_pull_cursor_moves_only_on_the_answer_to_the_current_request() -> None:
    a, b = record(record_id="r1"), record(record_id="r2", ticket="t2")
    state, commands = run(Replica(DESK), Tick(0))
    assert commands == [PullSince("server", 0)]
    state, commands = run(state, RecordsPulled("server", 0, (a,), 1))
    assert state.cursors == {"server": 1}
    assert commands == [PullSince("server", 1)]  # a full page: ask for the next at once
    late = RecordsPulled("server", 0, (a, b), 2)  # a slow answer to an earlier request
    state, commands = run(state, late)
    assert state.cursors == {"server": 1}
    assert commands == []
    assert set(state.store.log) == {a, b}  # its records are still taken
    state, commands = run(state, RecordsPulled("server", 1, (), 1), Tick(DESK.pull_every_ms - 1))
    assert commands == []
    assert run(state, Tick(DESK.pull_every_ms))[1] == [PullSince("server", 1)]


def test_a_page_that_does_not_move_the_cursor_waits_for_the_next_tick() -> None:
    state, _ = run(Replica(DESK), Tick(0))
    held_back = RecordsPulled("server", 0, (record(),), 0)  # the server is still settling this one
    state, commands = run(state, held_back)
    assert commands == []
    assert len(state.store.log) == 1


def test_records_from_the_upstream_are_not_uploaded_back_but_those_from_other_peers_are() -> None:
    config = SyncConfig(upstream="server", peers=("server", "desk_b"))
    mine, theirs, upstream = record("dev_a", "r1"), record("dev_b", "r1", "t2"), record("dev_c", "r1", "t3")
    state, _ = run(
        Replica(config),
        ScanCaptured(mine),
        RecordsPulled("desk_b", 0, (theirs,), 1),
        RecordsPulled("server", 0, (upstream, mine), 2),  # the server already has mine
    )
    assert list(state.pending) == [theirs]


# Conflicts.


def test_a_conflict_surfaces_once_on_whichever_path_its_records_arrive() -> None:
    first, second = record("dev_a", "r1", at=1000), record("dev_b", "r1", at=2000)
    state, commands = run(
        Replica(DESK),
        BundleReceived(1, 0, LISTS, ACTIVE),
        ScanCaptured(second),
        RecordsPulled("server", 0, (first,), 1),
    )
    [surfaced] = conflicts(commands)
    assert surfaced.conflict.kind is ConflictKind.DOUBLE_ADMISSION
    assert surfaced.conflict.records == (first.key, second.key)
    _, commands = run(state, RecordsPulled("server", 0, (first, second), 2), UploadReceived((first,)))
    assert conflicts(commands) == []


def test_a_newer_bundle_judges_the_tickets_whose_facts_changed() -> None:
    voided = {"t1": TicketHistory("t1", "ga", (StatusChange(0, "active", 1), StatusChange(500, "voided", 1)))}
    state, commands = run(Replica(DESK), BundleReceived(1, 0, LISTS, ACTIVE), ScanCaptured(record(at=1000)))
    assert conflicts(commands) == []
    state, commands = run(state, BundleReceived(2, 0, LISTS, voided))
    assert [c.conflict.kind for c in conflicts(commands)] == [ConflictKind.ADMITTED_AFTER_VOID]
    stale, commands = run(state, BundleReceived(1, 0, LISTS, ACTIVE))  # late delivery of the old one
    assert stale == state
    assert commands == []


def test_a_key_reused_with_different_content_surfaces_and_the_kept_record_counts() -> None:
    original = record("dev_a", "r1", ticket="t2")
    reused = record("dev_a", "r1", ticket="t1")
    state, commands = run(Replica(DESK), BundleReceived(1, 0, LISTS, ACTIVE), ScanCaptured(original))
    assert state.store.group(("main", "t2")) == (original,)
    state, commands = run(state, UploadReceived((reused,)))
    assert [c.conflict.kind for c in conflicts(commands)] == [ConflictKind.KEY_REUSE]
    assert state.store.group(("main", "t1")) == (reused,)
    assert state.store.group(("main", "t2")) == ()


# Bundle freshness.


def test_a_stale_bundle_is_warned_about_once_until_a_newer_bundle_comes() -> None:
    limit = DESK.stale_bundle_ms
    state, commands = run(Replica(DESK), BundleReceived(1, 1_000, LISTS, ACTIVE), Tick(1_000 + limit))
    assert not [c for c in commands if isinstance(c, WarnStaleBundle)]
    state, commands = run(state, Tick(1_001 + limit), Tick(5_000 + limit))
    assert [c for c in commands if isinstance(c, WarnStaleBundle)] == [WarnStaleBundle(limit + 1)]
    state, commands = run(state, BundleReceived(2, 9_000, LISTS, ACTIVE), Tick(9_001 + limit))
    assert [c for c in commands if isinstance(c, WarnStaleBundle)] == [WarnStaleBundle(limit + 1)]


# Hub mode and restarts.


def test_a_hub_desk_answers_uploads_like_the_server_and_forwards_them() -> None:
    desk = Replica(SyncConfig(upstream="hub", peers=("hub",)))
    hub = Replica(DESK)
    scan = record("dev_a", "r1")
    desk, commands = run(desk, ScanCaptured(scan), Tick(0))
    [upload] = uploads(commands)
    assert upload.peer == "hub"
    hub, answer = step(hub, UploadReceived(upload.batch))
    assert answer == (AnswerUpload((UploadResult.STORED,)),)
    hub, commands = run(hub, Tick(0))
    assert [u.batch for u in uploads(commands)] == [(scan,)]
    assert records_since(hub.store, 0, 10) == ((scan,), 1)
    desk, _ = run(desk, UploadAcked(upload.batch, answer[0].results))
    assert desk.pending == {}


def test_a_restarted_replica_uploads_what_was_unconfirmed_and_surfaces_conflicts_again() -> None:
    first, second, third = record("dev_a", "r1"), record("dev_b", "r1", at=2000), record("dev_a", "r2", "t2")
    state, _ = resume(DESK, [first, second], unacked=[third])
    assert set(state.store.log) == {first, second, third}
    _, commands = run(state, BundleReceived(1, 0, LISTS, ACTIVE), Tick(0))
    assert [u.batch for u in uploads(commands)] == [(third,)]
    assert [c.conflict.kind for c in conflicts(commands)] == [ConflictKind.DOUBLE_ADMISSION]


def test_the_server_replica_queues_nothing() -> None:
    server = Replica(SyncConfig(upstream=None))
    server, commands = run(server, UploadReceived((record(),)), ScanCaptured(record("online", "r1")), Tick(0))
    assert server.pending == {}
    assert uploads(commands) == []
    assert len(server.store.log) == 2


def test_a_config_needs_positive_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        SyncConfig(upstream="server", batch_size=0)


def test_variants_of_one_key_hash_apart() -> None:
    """A batch may reuse one key a thousand times (a hostile or broken desk): the sets and dicts of
    records acceptance goes through must not put all those variants in one bucket, where each
    would be compared with every other (a second of the server's CPU for one request)."""
    variants = [record(at=1000 + n) for n in range(1_000)]
    assert len({hash(variant) for variant in variants}) > 990
    accepted = accept([], variants)
    assert len(accepted.stored) == 1_000 and len(accepted.reused[variants[0].key]) == 1_000

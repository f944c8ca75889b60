"""The desk's side of the sync protocol: one :class:`sync.protocol.Replica` per enrolled check-in
list, driven by the protocol's step function, with the I/O (a
:class:`~scanner_app.core.ports.PeerClient`) and the persistence (the desk's
:class:`~scanner_app.core.ports.DeskStore`) around it.

The upstream is the server, or a hub desk while the server cannot be reached; records go up in
batches, every desk's records come down with a cursor per peer and list. A hub desk also serves
other desks from the same replicas (``receive`` and ``serve``). State is read and written in one
go around each step (never held across an ``await``), so scans that land mid-round are kept.

The server stores only a desk's own records from that desk: other desks' records (served as a hub,
or pulled from a peer) are never sent to it, and this desk's own records stay pending in the store
until the server itself has them, whatever a hub answered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from scanner_app.core.ports import DeskStore, PeerClient
from sync.checkin import ListRules
from sync.merge import Conflict
from sync.protocol import (
    AnswerUpload,
    BundleReceived,
    Command,
    Event,
    PullSince,
    RecordsPulled,
    Replica,
    ScanCaptured,
    SurfaceConflict,
    SyncConfig,
    Tick,
    Upload,
    UploadAcked,
    UploadReceived,
    UploadResult,
    records_since,
    resume,
    step,
)
from sync.records import Record, RecordFormatError

SERVER = "server"
HUB = "hub"


def parse_records(items: Iterable[Any]) -> list[Record]:
    """The well-formed records of a wire list, each naming its ticket by reference (as the desk
    keeps them); anything else is skipped."""
    parsed = []
    for item in items:
        try:
            parsed.append(Record.from_wire(item).with_ticket_ref())
        except RecordFormatError:
            continue
    return parsed


def upload_results(batch: Sequence[Record], answer: dict[str, Any]) -> dict[Record, UploadResult]:
    """The upstream's answer to an upload, by record; records it did not answer for are left out."""
    by_key: dict[tuple[str, str], UploadResult] = {}
    for item in answer.get("results", ()):
        try:
            by_key[(item["deviceId"], item["id"])] = UploadResult(item["status"])
        except (KeyError, TypeError, ValueError):
            continue
    found = ((record, by_key.get((record.device_id, record.record_id))) for record in batch)
    return {record: result for record, result in found if result is not None}


class SyncEngine:
    """Replicas of the enrolled lists, their persistence, and the conflicts they surfaced."""

    def __init__(
        self,
        store: DeskStore,
        records: Sequence[Record],
        config: SyncConfig,
        list_ids: Sequence[str],
        on_records: Callable[[list[Record]], None],
        device_id: str,
    ) -> None:
        """Replicas resumed from the store: ``records`` (all of them, in arrival order), the ones
        still pending, and the saved cursors. ``device_id`` is this desk's."""
        self.store = store
        self.device_id = device_id
        self.list_ids = tuple(list_ids)
        self.config = config
        self.on_records = on_records
        self.conflicts: dict[str, Conflict] = {}
        self.replicas: dict[str, Replica] = {}
        by_list: dict[str, list[Record]] = {list_id: [] for list_id in self.list_ids}
        for record in records:
            by_list.setdefault(record.list_id, []).append(record)
        unacked: dict[str, list[Record]] = {list_id: [] for list_id in self.list_ids}
        for record in store.pending():
            unacked.setdefault(record.list_id, []).append(record)
        cursors = store.cursors()
        for list_id in self.list_ids:
            replica, commands = resume(config, by_list[list_id], unacked[list_id])
            saved = {peer: cursor for (peer, listed), cursor in cursors.items() if listed == list_id}
            self.replicas[list_id] = replace(replica, cursors=saved)
            self._note(commands)

    @property
    def upstream(self) -> str | None:
        return self.config.upstream

    @property
    def pending(self) -> int:
        return sum(len(replica.pending) for replica in self.replicas.values())

    def use_upstream(self, peer: str) -> None:
        """Send to (and pull from) ``peer`` from now on; what it has not confirmed goes there."""
        if peer == self.config.upstream:
            return
        self.config = replace(self.config, upstream=peer, peers=(peer,))
        for_server: dict[str, list[Record]] = {}
        for record in self.store.pending() if peer == SERVER else ():
            if record.device_id == self.device_id:
                for_server.setdefault(record.list_id, []).append(record)
        for list_id, replica in self.replicas.items():
            unconfirmed = for_server.get(list_id, []) if peer == SERVER else replica.pending
            moved, commands = resume(self.config, replica.store.log, unconfirmed)
            self.replicas[list_id] = replace(moved, cursors=replica.cursors)
            self._note(commands)
            if replica.bundle is not None:  # the same facts as before the move
                facts = BundleReceived(replica.bundle.seq, replica.bundle.issued_at_ms, replica.lists, {})
                self._note(self._step(list_id, facts))

    def _step(self, list_id: str, event: Event) -> tuple[Command, ...]:
        self.replicas[list_id], commands = step(self.replicas[list_id], event)
        return commands

    def _note(self, commands: Iterable[Command]) -> None:
        for command in commands:
            if isinstance(command, SurfaceConflict):
                self.conflicts[command.conflict.conflict_id] = command.conflict

    # Local events.

    def captured(self, record: Record) -> None:
        """This desk wrote ``record`` down (already in the store, pending)."""
        self._note(self._step(record.list_id, ScanCaptured(record)))

    def bundle_received(self, list_id: str, seq: int, issued_at_ms: int, rules: ListRules) -> None:
        """A newer bundle: the list's rules judge its records again (ticket facts stay sealed)."""
        self._note(self._step(list_id, BundleReceived(seq, issued_at_ms, {list_id: rules}, {})))

    # Serving other desks (hub mode).

    def receive(self, records: Sequence[Record]) -> list[UploadResult]:
        """Another desk's upload: stored once by (device, record id), queued for the upstream."""
        results: dict[int, UploadResult] = {}
        by_list: dict[str, list[int]] = {}
        for at, record in enumerate(records):
            if record.list_id in self.replicas:
                by_list.setdefault(record.list_id, []).append(at)
            else:
                results[at] = UploadResult.REJECTED
        for list_id, places in by_list.items():
            batch = tuple(records[at] for at in places)
            commands = self._step(list_id, UploadReceived(batch))
            answer = next(c for c in commands if isinstance(c, AnswerUpload))
            results.update(zip(places, answer.results, strict=True))
            answered = zip(batch, answer.results, strict=True)
            stored = [record for record, result in answered if result is UploadResult.STORED]
            self._learnt(self.store.add_records(stored, pending=self.config.upstream is not None))
            self._note(commands)
        return [results[at] for at in range(len(records))]

    def serve(self, list_id: str, cursor: int, limit: int) -> tuple[tuple[Record, ...], int]:
        return records_since(self.replicas[list_id].store, cursor, limit)

    def _learnt(self, new: list[Record]) -> None:
        if new:
            self.on_records(new)

    # A round with the upstream.

    async def exchange(self, client: PeerClient, now_ms: int) -> None:
        """Upload what is due and pull what is new, for every list. Raises what the client raises;
        what was answered before that is kept."""
        for list_id in self.list_ids:
            await self._run(client, list_id, self._step(list_id, Tick(now_ms)))

    async def pull_now(self, client: PeerClient, list_id: str, peer: str) -> None:
        """Catch up with ``peer``'s records of one list at once (before an offline decision); what
        a peer other than the upstream gives is queued for the upstream."""
        cursor = self.replicas[list_id].cursors.get(peer, 0)
        await self._run(client, list_id, (PullSince(peer, cursor),))

    async def _run(self, client: PeerClient, list_id: str, commands: Iterable[Command]) -> None:
        queue = deque(commands)
        done: set[str] = set()  # peers that have nothing more to give in this round
        while queue:
            match queue.popleft():
                case Upload(batch=batch):
                    queue.extend(await self._upload(client, list_id, batch))
                case PullSince(peer=peer) as pull if peer not in done:
                    more, pulled = await self._pull(client, list_id, pull)
                    queue.extend(pulled)
                    if not more:
                        done.add(peer)
                case SurfaceConflict() as surfaced:
                    self._note((surfaced,))
                case _:
                    # A pull from a peer that has nothing more this round; WarnStaleBundle (the
                    # desk reports staleness from the bundle's age on every status); AnswerUpload
                    # only follows UploadReceived, which ``receive`` handles.
                    pass

    async def _upload(
        self, client: PeerClient, list_id: str, batch: tuple[Record, ...]
    ) -> tuple[Command, ...]:
        """Send ``batch`` up. The server is sent this desk's own records only: the others are
        answered here as refused, which is what the server would answer for them. A hub's answer
        leaves this desk's own records pending in the store, for the server."""
        to_server = self.config.upstream == SERVER
        sent = [record for record in batch if record.device_id == self.device_id] if to_server else batch
        answer = await client.upload([record.to_wire() for record in sent]) if sent else {}
        answered = upload_results(sent, answer)
        if to_server:
            others = (record for record in batch if record.device_id != self.device_id)
            answered.update((record, UploadResult.REJECTED) for record in others)
        self.store.acknowledge(
            record.key for record in answered if to_server or record.device_id != self.device_id
        )
        return self._step(list_id, UploadAcked(tuple(answered), tuple(answered.values())))

    async def _pull(
        self, client: PeerClient, list_id: str, command: PullSince
    ) -> tuple[bool, tuple[Command, ...]]:
        """One page; answers whether the peer says it has more at once (a full page), and the
        commands that follow."""
        answer = await client.pull(list_id, command.cursor)
        records = parse_records(answer.get("records", ()))
        try:
            cursor = int(answer.get("cursor", command.cursor))
        except (TypeError, ValueError):
            cursor = command.cursor
        commands = self._step(list_id, RecordsPulled(command.peer, command.cursor, tuple(records), cursor))
        saved = (command.peer, list_id, self.replicas[list_id].cursors.get(command.peer, 0))
        queued = command.peer != self.config.upstream
        self._learnt(self.store.add_records(records, pending=queued, cursor=saved))
        return bool(answer.get("more")), commands

"""Convergence of the sync protocol under a hostile network.

Two to four desks and a server, each a ``Replica`` whose store serves its peers, exchange check-in
records through a simulated network. Hypothesis chooses the scans, the clock, which message is
delivered next, which is duplicated or dropped, which links are cut, which desk gets a newer bundle
and which restarts from what it had persisted; some desks upload through a hub desk instead of the
server. Everything goes through ``step``, ``accept_upload`` (inside ``UploadReceived``) and
``records_since``. Then the network heals and runs until quiet, and every replica must hold the same
records (none lost, none twice) and derive the same state and conflicts as ``derive`` over the
union, each conflict surfaced on every replica, including the double admission of a ticket that two
desks admitted while offline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.checkin import Direction, ListRules, Reason, Verdict
from sync.merge import ConflictKind, StatusChange, TicketHistory, derive, ordered
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
    records_since,
    resume,
    step,
)
from sync.records import ONLINE_DEVICE, Record

SERVER = "server"
PAGE = 3  # records per pull answer, to exercise paging
LISTS = {
    "main": ListRules("main", None),
    "vip": ListRules("vip", frozenset({"vip"}), allow_reentry=True),
    "bar": ListRules("bar", None, allow_multiple_entries=True),
}
TICKETS = ["t1", "t2", "t3", "t4"]
DOUBLE = "t_double"  # admitted on "main" by two desks while offline


def active(ticket: str, tier: str = "ga") -> TicketHistory:
    return TicketHistory(ticket, tier, (StatusChange(0, "active", 1),))


FIRST_FACTS = {t: active(t) for t in [*TICKETS, DOUBLE]} | {"t2": active("t2", "vip")}
LATEST_FACTS = FIRST_FACTS | {
    "t2": TicketHistory("t2", "vip", (StatusChange(0, "active", 1), StatusChange(3_000, "active", 2))),
    "t3": TicketHistory("t3", "ga", (StatusChange(0, "active", 1), StatusChange(4_000, "voided", 1))),
    "t4": TicketHistory("t4", "ga", (StatusChange(0, "active", 1), StatusChange(2_000, "refunded", 1))),
}
BUNDLES = {1: BundleReceived(1, 0, LISTS, FIRST_FACTS), 2: BundleReceived(2, 1_000, LISTS, LATEST_FACTS)}


@dataclass(frozen=True)
class Message:
    src: str
    dst: str
    body: Upload | UploadAcked | PullSince | RecordsPulled


@dataclass
class Network:
    """The replicas, the messages in flight and what each replica surfaced."""

    nodes: dict[str, Replica]
    bundles: dict[str, int]
    now: int = 0
    inflight: list[Message] = field(default_factory=list)
    down: set[frozenset[str]] = field(default_factory=set)
    captured: set[Record] = field(default_factory=set)
    surfaced: dict[str, set[str]] = field(default_factory=dict)
    last_id: dict[str, int] = field(default_factory=dict)

    def apply(self, node: str, event: Event) -> tuple[Command, ...]:
        self.nodes[node], commands = step(self.nodes[node], event)
        for command in commands:
            if isinstance(command, Upload | PullSince):
                self.inflight.append(Message(node, command.peer, command))
            elif isinstance(command, SurfaceConflict):
                self.surfaced.setdefault(node, set()).add(command.conflict.conflict_id)
        assert len(set(self.nodes[node].store.log)) == len(self.nodes[node].store.log)
        return commands

    def capture(self, node: str, record: Record) -> None:
        self.captured.add(record)
        self.apply(node, ScanCaptured(record))

    def deliver(self, message: Message) -> None:
        if frozenset((message.src, message.dst)) in self.down:
            return  # lost in the partition
        body, node = message.body, message.dst
        if isinstance(body, Upload):
            [answer] = [
                c for c in self.apply(node, UploadReceived(body.batch)) if isinstance(c, AnswerUpload)
            ]
            self.inflight.append(Message(node, message.src, UploadAcked(body.batch, answer.results)))
        elif isinstance(body, PullSince):
            page, cursor = records_since(self.nodes[node].store, body.cursor, PAGE)
            self.inflight.append(Message(node, message.src, RecordsPulled(node, body.cursor, page, cursor)))
        else:
            self.apply(node, body)

    def restart(self, node: str) -> None:
        """Killed and started again from what it persisted: its records (in arrival order), the ones
        not yet confirmed upstream, and its bundle."""
        before = self.nodes[node]
        self.nodes[node], commands = resume(before.config, before.store.log, before.pending)
        self.surfaced[node] = {c.conflict.conflict_id for c in commands if isinstance(c, SurfaceConflict)}
        self.apply(node, BUNDLES[self.bundles[node]])

    def give_bundle(self, node: str, seq: int) -> None:
        self.bundles[node] = max(self.bundles[node], seq)
        self.apply(node, BUNDLES[seq])


def device_of(node: str) -> str:
    return ONLINE_DEVICE if node == SERVER else node


def next_id(net: Network, node: str) -> str:
    net.last_id[node] = net.last_id.get(node, 0) + 1
    return f"r{net.last_id[node]:03}"


scans = st.fixed_dictionaries(
    {
        "ticket": st.sampled_from(TICKETS),
        "list": st.sampled_from(sorted(LISTS)),
        "direction": st.sampled_from(list(Direction)),
        "admitted": st.booleans(),
        "at": st.integers(0, 8_000),
        "offset": st.sampled_from([-700, 0, 700]),
        "generation": st.sampled_from([None, 1, 2]),
    }
)
index = st.integers(0, 10_000)


def actions(nodes: list[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    node = st.sampled_from(nodes)
    desk = st.sampled_from(nodes[1:])
    by_kind: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
        "scan": st.tuples(st.just("scan"), node, scans),
        "tick": st.tuples(st.just("tick"), node, st.integers(0, 6_000)),
        "deliver": st.tuples(st.just("deliver"), index),
        "reuse": st.tuples(st.just("reuse"), desk, scans),
        "duplicate": st.tuples(st.just("duplicate"), index),
        "drop": st.tuples(st.just("drop"), index),
        "cut": st.tuples(st.just("cut"), node, node),
        "bundle": st.tuples(st.just("bundle"), desk),
        "restart": st.tuples(st.just("restart"), desk),
    }
    # Scans, ticks and deliveries are what a day is made of: drawn more often than mishaps.
    kinds = ["scan"] * 4 + ["tick"] * 4 + ["deliver"] * 6 + sorted(set(by_kind) - {"scan", "tick", "deliver"})
    return st.sampled_from(kinds).flatmap(by_kind.__getitem__)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, SyncConfig], list[tuple[Any, ...]]]:
    desks = [f"desk{i}" for i in range(draw(st.integers(2, 4)))]
    configs = {SERVER: SyncConfig(upstream=None)}
    for desk in desks:
        # desk0 may serve as a hub: the others then upload to it instead of the server.
        upstream = SERVER if desk == "desk0" else draw(st.sampled_from([SERVER, "desk0"]))
        others = draw(st.lists(st.sampled_from([SERVER, *desks]), max_size=2, unique=True))
        peers = tuple(dict.fromkeys([upstream, *(p for p in others if p != desk)]))
        configs[desk] = SyncConfig(upstream, peers, batch_size=2, retry_after_ms=3_000, pull_every_ms=1_000)
    return configs, draw(st.lists(actions([SERVER, *desks]), min_size=20, max_size=120))


def scanned(net: Network, node: str, scan: dict[str, Any], record_id: str) -> Record:
    return Record(
        device_id=device_of(node),
        record_id=record_id,
        list_id=scan["list"],
        ticket_id=scan["ticket"],
        token_generation=scan["generation"],
        direction=scan["direction"],
        decision=Verdict.ADMIT if scan["admitted"] else Verdict.REFUSE,
        reason=Reason.OK if scan["admitted"] else Reason.ALREADY_CHECKED_IN,
        device_ms=net.now + scan["at"],
        clock_offset_ms=scan["offset"],
    )


def play(net: Network, action: tuple[Any, ...]) -> None:
    kind, *args = action
    if kind == "scan":
        node, scan = args
        net.capture(node, scanned(net, node, scan, next_id(net, node)))
    elif kind == "reuse" and net.last_id.get(args[0]):
        node, scan = args  # restored from an old backup: a record id written down a second time
        net.capture(node, scanned(net, node, scan, f"r{net.last_id[node]:03}"))
    elif kind == "tick":
        node, advance = args
        net.now += advance
        net.apply(node, Tick(net.now))
    elif kind in {"deliver", "duplicate", "drop"} and net.inflight:
        position = args[0] % len(net.inflight)
        if kind == "duplicate":
            net.inflight.append(net.inflight[position])
        else:
            message = net.inflight.pop(position)
            if kind == "deliver":
                net.deliver(message)
    elif kind == "cut" and args[0] != args[1]:
        net.down ^= {frozenset(args)}
    elif kind == "bundle":
        net.give_bundle(args[0], 2)
    elif kind == "restart":
        net.restart(args[0])


def heal(net: Network) -> None:
    """Reconnect everything, give every desk the latest bundle, and run until a round of ticks and
    deliveries changes no store and leaves nothing unconfirmed."""
    net.down.clear()
    for node in net.nodes:
        net.give_bundle(node, 2)
    for _ in range(100):
        sizes = {node: len(replica.store.log) for node, replica in net.nodes.items()}
        net.now += 10_000
        for node in net.nodes:
            net.apply(node, Tick(net.now))
        while net.inflight:
            net.deliver(net.inflight.pop(0))
        grew = any(len(replica.store.log) != sizes[node] for node, replica in net.nodes.items())
        if not grew and not any(replica.pending for replica in net.nodes.values()):
            return
    raise AssertionError("the network did not settle")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_replicas_converge_whatever_the_network_does(scenario: tuple[dict[str, SyncConfig], Any]) -> None:
    configs, script = scenario
    net = Network({node: Replica(config) for node, config in configs.items()}, dict.fromkeys(configs, 1))
    net.give_bundle(SERVER, 2)
    for desk in [node for node in configs if node != SERVER]:
        net.give_bundle(desk, 1)
    offline = {"ticket": DOUBLE, "list": "main", "direction": Direction.ENTRY, "admitted": True}
    for desk in ["desk0", "desk1"]:
        at = {"at": 100, "offset": 0, "generation": 1}
        net.capture(desk, scanned(net, desk, offline | at, "offline"))  # never reused
    for action in script:
        play(net, action)
    heal(net)

    union = net.captured
    expected = derive(sorted(union, key=Record.sort_key), LISTS, LATEST_FACTS)
    assert expected == derive([*reversed(list(union)), *union], LISTS, LATEST_FACTS)
    kept = ordered(union)
    assert (
        sum(counts.scans for counts in expected.counts.values()) == len({r.key for r in union}) == len(kept)
    )
    groups: dict[tuple[str, str], set[Record]] = {}
    for record in kept:
        if record.ticket_id is not None:
            groups.setdefault((record.list_id, record.ticket_id), set()).add(record)
    for node, replica in net.nodes.items():
        assert set(replica.store.log) == union, f"{node} lost or invented records"
        assert len(replica.store.log) == len(union), f"{node} holds a record twice"
        state = derive(replica.store.log, replica.lists, replica.tickets)
        assert state == expected, f"{node} derives another state"
        indexed = {group: set(replica.store.group(group)) for group in replica.store.groups()}
        assert {group: members for group, members in indexed.items() if members} == groups
        assert {c.conflict_id for c in state.conflicts} <= net.surfaced.get(node, set())
        assert any(
            c.kind is ConflictKind.DOUBLE_ADMISSION and c.ticket_id == DOUBLE and c.list_id == "main"
            for c in state.conflicts
        )

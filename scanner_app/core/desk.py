"""``DeskCore``: the desk scanner without its screen — what the Textual app and the headless command
both drive.

A scan is read and verified locally against the selected list's bundle keys, then decided by the
server (``checkInTicket`` with the device credential, under a short timeout) or, when no answer
comes, here with the same rule the server uses (:func:`sync.checkin.decide`) over the offline
bundle and every check-in record this desk knows. Either way it becomes a check-in record, committed
to the local store before the result is returned, and goes upstream with the next sync round.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from scanner_app.core import texts
from scanner_app.core.config import ScannerSettings
from scanner_app.core.offline import (
    DoorBook,
    ListBundle,
    PassReading,
    bundle_keys,
    pass_payload,
    read_pass,
    ticket_facts,
)
from scanner_app.core.ports import (
    BundleState,
    ClockOffset,
    CredentialVault,
    DeskClock,
    DeskEnrollment,
    DeskStore,
    DeviceRevokedError,
    IdSource,
    ListInfo,
    PeerAddress,
    PeerClient,
    Peers,
    ServerRefused,
    ServerUnreachable,
)
from scanner_app.core.syncer import HUB, SERVER, SyncEngine
from sync.bundle import FORMAT_VERSION as BUNDLE_FORMAT
from sync.bundle import BundleError, TicketEntry, TicketIndex, unpack_entries, verify_bundle
from sync.checkin import (
    ONLINE_ADMITTED,
    Decision,
    Direction,
    Reason,
    Verdict,
    decide,
)
from sync.merge import Conflict
from sync.protocol import SyncConfig
from sync.records import MANUAL_REASON_CHARS, Record, RecordKey, ticket_ref

ENROLL_PREFIX = "tickets-enroll:"
HUB_PREFIX = "tickets-hub:"
MAX_TOKEN_TEXT = 4000  # checkInTicket's limit; longer text is no pass anyway

Source = Literal["wedge", "camera", "manual"]
# Who decided a scan: the server; this desk with the hub desk's latest records; this desk alone.
DecidedBy = Literal["server", "hub", "desk"]
# What the status line says of the link: no answer yet since the desk started; the server answers;
# the server does not, a hub desk does; neither does (or no hub is set).
Link = Literal["connecting", "online", "hub", "offline"]

__all__ = [
    "Counters",
    "DeskConflictRow",
    "DeskCore",
    "DeskNotReady",
    "EnrollmentFailed",
    "FirstEntry",
    "FoundTicket",
    "ScanResult",
    "SyncStatus",
]


@dataclass(frozen=True, slots=True)
class FoundTicket:
    """A ticket found by a manual search; checked in by its id (the server answers no pass)."""

    ticket_id: str
    ticket_number: str
    display_name: str | None
    tier_title: str | None
    status: str
    door_state: str  # from every desk's records this desk holds


@dataclass(frozen=True, slots=True)
class DeskConflictRow:
    """A conflict as the desk's conflicts screen shows it: what, where, which desks, when."""

    conflict_id: str
    what: str
    list_name: str
    desks: tuple[str, ...]  # by name, in the order of the records
    at_ms: int | None  # the offending record's time on the server's clock (None: not held here)


class DeskNotReady(Exception):
    """The desk cannot scan yet: not enrolled, no list chosen, or no offline bundle while offline."""


class EnrollmentFailed(Exception):
    """The code was refused or the server could not be reached."""


@dataclass(frozen=True, slots=True)
class FirstEntry:
    """When, where and by which desk a ticket was first admitted."""

    at_ms: int
    gate: str | None
    device_id: str | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    verdict: Verdict
    reason: Reason
    headline: str
    detail: str
    display_name: str | None
    ticket_number: str | None
    tier_title: str | None
    first_entry: FirstEntry | None
    online: bool  # decided by the server (else here, offline)
    record: RecordKey
    latency_ms: float
    direction: Direction = Direction.ENTRY
    decided_by: DecidedBy = "desk"
    # The same pass shown again at this desk just after its admission: nothing new was recorded,
    # ``record`` is the admission's.
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class Counters:
    admitted_here: int  # entries admitted by this desk on the selected list
    inside_now: int  # tickets of the list whose last admitted scan is an entry
    total_admissible: int  # tickets in the list's offline index


@dataclass(frozen=True, slots=True)
class SyncStatus:
    online: bool  # the server answered the last call
    last_sync_ms: int | None  # when a sync round last completed (server or hub)
    pending_uploads: int
    bundle_age_ms: int | None  # of the selected list's bundle
    stale: bool  # older than max_bundle_age_seconds, or missing
    via_hub: bool = False  # syncing with a hub desk while the server is unreachable
    conflicts: int = 0  # conflicts this desk has seen in the records
    problem: str | None = None  # the last error, in words
    link: Link = "offline"
    hub_lost: bool = False  # a hub desk is set and did not answer the last call


@dataclass(frozen=True, slots=True)
class Draft:
    """A scan being decided: everything its record carries but the decision."""

    device_id: str
    record_id: str
    list_id: str
    ticket_id: str | None  # None when the text is no pass (memory only: records keep a reference)
    generation: int | None  # of the pass
    direction: Direction
    device_ms: int
    clock_offset_ms: int
    gate: str | None

    @property
    def now_ms(self) -> int:
        """The scan's time on the server's clock, as well as this desk can tell."""
        return self.device_ms + self.clock_offset_ms

    @property
    def ticket(self) -> str | None:
        """The scanned ticket's reference: a desk keeps no ticket id."""
        return None if self.ticket_id is None else ticket_ref(self.ticket_id)

    def record(self, decision: Decision) -> Record:
        return Record(
            device_id=self.device_id,
            record_id=self.record_id,
            list_id=self.list_id,
            ticket_id=self.ticket,
            token_generation=self.generation,
            direction=self.direction,
            decision=decision.verdict,
            reason=decision.reason,
            device_ms=self.device_ms,
            clock_offset_ms=self.clock_offset_ms,
            gate=self.gate,
        )


def parse_hub_text(text: str) -> tuple[str, str]:
    """``tickets-hub:<token>@<url>`` -> (url, token)."""
    if not text.startswith(HUB_PREFIX) or "@" not in text:
        raise ValueError(f"not a hub connection text: {text!r:.60}")
    token, _, url = text[len(HUB_PREFIX) :].partition("@")
    return url, token


def _answer_ms(text: object) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return None


class DeskCore:
    """One desk, over the adapters it is handed (:mod:`scanner_app.core.ports`); :meth:`load` it
    before use (:func:`scanner_app.start.open_desk` does both). Everything runs on the caller's
    event loop."""

    def __init__(
        self,
        settings: ScannerSettings,
        store: DeskStore,
        vault: CredentialVault,
        peers: Peers,
        clock: DeskClock,
        ids: IdSource,
    ) -> None:
        """``clock``: this desk's wall time (record times) and its monotonic clock (the
        re-presentation window, bundle refreshes, latencies); ``ids``: record ids and hub tokens."""
        self.settings = settings
        self.store = store
        self.vault = vault
        self.peers = peers
        self.clock = clock
        self.ids = ids
        self.revoked = False
        self.online = False
        self.problem: str | None = None
        self.offset = ClockOffset(clock, int(store.setting("clock_offset_ms") or 0))
        self.enrollment: DeskEnrollment | None = None
        self.bundles: dict[str, ListBundle] = {}
        self.door = DoorBook()
        self._engine: SyncEngine | None = None
        self._server: PeerClient | None = None
        self._hub: PeerClient | None = None
        self._admitted_here: Counter[str] = Counter()
        # The entries of the passes scanned since the desk started, by ticket reference (memory
        # only: the store keeps no ticket id, so an entry opens again only with its pass).
        self._in_hand: dict[str, TicketEntry] = {}
        self._choices: dict[str, str | None] = {}
        self._hub_token = ""
        # The circuit breaker: open after a call to the server failed; scans are decided here
        # without asking it until a sync round (the background probe) reaches it again.
        self._breaker_open = False
        self._answered = False  # the server answered since the desk started
        self._hub_alive: bool | None = None  # the hub desk answered its last call (None: not asked)
        self._bundles_checked: float | None = None
        self._last_sync_ms: int | None = None
        # Admissions of this desk, by (list, direction, pass text): shown again within
        # ``representation_seconds`` they are "just admitted", not a second entry.
        self._admissions: dict[tuple[str, Direction, str], tuple[float, ScanResult]] = {}
        # The last scan the desk could not decide (amber), while door staff may still admit it by hand.
        self._undecided: tuple[Draft, TicketEntry | None] | None = None
        self._wake = asyncio.Event()
        self._sync_lock = asyncio.Lock()

    def _credential(self) -> str:
        """The credential, unsealed (sealed first when an older desk kept it in clear)."""
        clear = self.store.take_clear_credential()
        if clear is not None:
            self.store.seal_credential(self.vault.seal(clear))
            return clear
        return self.vault.unseal(self.store.setting("credential") or "{}")

    def load(self) -> None:
        """Everything in memory from the store: enrollment, bundles, records, sync state. Raises
        what the vault raises when it cannot open the credential (a PIN missing or wrong)."""
        self.enrollment = self.store.enrollment()
        self._choices = {key: self.store.setting(key) for key in ("selected_list", "gate", "direction")}
        last_sync = self.store.setting("last_sync_ms")
        self._last_sync_ms = int(last_sync) if last_sync else None
        self.bundles, self.door, self._admitted_here = {}, DoorBook(), Counter()
        if self.enrollment is None:
            return
        for list_id, state in self.store.bundles().items():
            if state.body.get("format") != BUNDLE_FORMAT:
                continue  # kept by an older version of the desk: the next sync fetches it in full
            index = TicketIndex(self.store.entries(list_id))
            self.bundles[list_id] = ListBundle(state, index)
        records = self.store.records()
        self.door.add(records)
        undos = self.store.undos(self.enrollment.device_id)
        uncounted = undos.keys() | set(undos.values())  # undo records, and the records they undid
        self._admitted_here.update(
            record.list_id
            for record in records
            if record.device_id == self.enrollment.device_id
            and record.record_id not in uncounted
            and record.admitted
            and record.direction is Direction.ENTRY
        )
        config = SyncConfig(
            upstream=SERVER,
            peers=(SERVER,),
            batch_size=self.settings.upload_batch_size,
            # Rounds run one at a time (every sync interval, after a scan, or when asked): each
            # one pulls, and sends again whatever the last one did not get an answer for.
            retry_after_ms=1,
            pull_every_ms=1,
            stale_bundle_ms=int(self.settings.max_bundle_age_seconds * 1000),
        )
        list_ids = [item.id for item in self.enrollment.lists]
        self._engine = SyncEngine(
            self.store, records, config, list_ids, self.door.add, self.enrollment.device_id
        )
        for list_id, bundle in self.bundles.items():
            self._engine.bundle_received(list_id, bundle.state.seq, bundle.state.issued_at_ms, bundle.rules)
        self._server = self._client(self.enrollment.server_url, self._credential())
        hub = self.store.setting("hub")
        if hub is not None and self._hub is None:
            self._hub = self._client(*parse_hub_text(hub))

    def _client(self, url: str, credential: str) -> PeerClient:
        """A peer's client: short to connect, ``request_timeout_seconds`` to answer."""
        settings = self.settings
        return self.peers.connect(
            PeerAddress(
                url,
                credential,
                self.offset,
                settings.request_timeout_seconds,
                settings.connect_timeout_seconds,
            )
        )

    # What the screen shows.

    @property
    def enrolled(self) -> bool:
        return self.enrollment is not None

    @property
    def lists(self) -> list[ListInfo]:
        return [] if self.enrollment is None else list(self.enrollment.lists)

    @property
    def selected_list(self) -> ListInfo | None:
        chosen = self._choices.get("selected_list")
        return next((item for item in self.lists if item.id == chosen), None)

    @property
    def gate(self) -> str | None:
        return self._choices.get("gate")

    @property
    def direction(self) -> Direction:
        return Direction(self._choices.get("direction") or Direction.ENTRY.value)

    def _choose(self, **choices: str | None) -> None:
        """Keep the door staff's choices, in the store and at hand."""
        self.store.put_settings(choices)
        self._choices.update(choices)

    @property
    def conflicts(self) -> list[Conflict]:
        return [] if self._engine is None else list(self._engine.conflicts.values())

    def conflict_rows(self) -> list[DeskConflictRow]:
        """The conflicts this desk's records show, newest first, in the door staff's words."""
        held = {record.key: record for group in self.door.admitted.values() for record in group}
        names = {item.id: item.name for item in self.lists}
        rows = []
        for conflict in self.conflicts:
            records = [held.get(key) for key in conflict.records]
            last = records[-1] if records else None
            desks = dict.fromkeys(self._desk_name(key.device_id) or "?" for key in conflict.records)
            rows.append(
                DeskConflictRow(
                    conflict_id=conflict.conflict_id,
                    what=texts.CONFLICTS[conflict.kind],
                    list_name=names.get(conflict.list_id, conflict.list_id),
                    desks=tuple(desks),
                    at_ms=None if last is None else last.device_ms + last.clock_offset_ms,
                )
            )
        return sorted(rows, key=lambda row: -(row.at_ms or 0))

    @property
    def sync_engine(self) -> SyncEngine:
        if self._engine is None:
            raise DeskNotReady("this desk is not enrolled")
        return self._engine

    def counters(self) -> Counters:
        chosen = self.selected_list
        if chosen is None:
            return Counters(0, 0, 0)
        bundle = self.bundles.get(chosen.id)
        return Counters(
            self._admitted_here[chosen.id],
            len(self.door.inside.get(chosen.id, ())),
            0 if bundle is None else int(bundle.state.body.get("admissible", len(bundle.index.entries))),
        )

    def status(self) -> SyncStatus:
        chosen = self.selected_list
        bundle = None if chosen is None else self.bundles.get(chosen.id)
        age = None if bundle is None else self.offset.now_ms() - bundle.state.issued_at_ms
        via_hub = self._hub is not None and self._breaker_open and bool(self._hub_alive)
        link: Link = "online" if self.online else "hub" if via_hub else "offline"
        if link == "offline" and not self._answered and not self._breaker_open:
            link = "connecting"  # no call has failed yet either
        return SyncStatus(
            online=self.online,
            last_sync_ms=self._last_sync_ms,
            pending_uploads=0 if self._engine is None else self._engine.pending,
            bundle_age_ms=age,
            stale=age is None or age > self.settings.max_bundle_age_seconds * 1000,
            via_hub=via_hub,
            conflicts=len(self.conflicts),
            problem=self.problem,
            link="connecting"
            if link == "offline" and not self._answered and not self._breaker_open
            else link,
            hub_lost=self._hub is not None and self._hub_alive is False,
        )

    # Setting the desk up.

    async def enroll(self, server_url: str, code: str, device_name: str | None = None) -> None:
        """Redeem a one-time code (or a scanned ``tickets-enroll:<code>@<url>``), then fetch the
        lists' bundles. Raises :class:`EnrollmentFailed`."""
        if self.enrolled:
            raise EnrollmentFailed("this desk is already enrolled")
        if code.startswith(ENROLL_PREFIX):
            code, _, scanned_url = code[len(ENROLL_PREFIX) :].partition("@")
            server_url = scanned_url or server_url
        if not server_url:
            raise EnrollmentFailed("the server address is missing")
        client = self.peers.connect(
            PeerAddress(server_url, "", self.offset, self.settings.request_timeout_seconds)
        )
        try:
            answer = await client.enroll(code.strip(), device_name)
        except ServerRefused as refused:
            raise EnrollmentFailed(refused.message or refused.error) from None
        except ServerUnreachable as unreachable:
            raise EnrollmentFailed(f"the server at {server_url} cannot be reached ({unreachable})") from None
        finally:
            await client.aclose()
        lists = tuple(ListInfo(str(item["id"]), str(item["name"])) for item in answer["checkInLists"])
        enrollment = DeskEnrollment(
            server_url=server_url.rstrip("/"),
            device_id=str(answer["deviceId"]),
            device_name=device_name or "this desk",
            environment=str(answer["environment"]),
            event_id=str(answer["eventId"]),
            lists=lists,
        )
        sealed = self.vault.seal(str(answer["credential"]))
        self.store.save_enrollment(enrollment, sealed)
        if len(lists) == 1:
            self._choose(selected_list=lists[0].id)
        self.revoked = False
        self.load()
        await self.sync_once()

    async def select_list(self, list_id: str, gate: str | None = None) -> None:
        if list_id not in {item.id for item in self.lists}:
            raise DeskNotReady(f"this desk is not enrolled for check-in list {list_id}")
        self._choose(selected_list=list_id, gate=gate or None)

    async def set_direction(self, direction: Direction) -> None:
        self._choose(direction=direction.value)

    async def join_hub(self, text: str | None) -> None:
        """Sync with the hub desk of ``tickets-hub:<token>@<url>`` while the server is unreachable
        (None: stop using a hub)."""
        if self._hub is not None:
            await self._hub.aclose()
            self._hub = None
        self._hub_alive = None
        if text is not None:
            self._hub = self._client(*parse_hub_text(text))
        self.store.put_settings({"hub": text})

    @property
    def hub_token(self) -> str:
        """What other desks must send to this desk in hub mode (made once, then kept)."""
        if not self._hub_token:
            self._hub_token = self.settings.hub_token or self.store.setting("hub_token") or ""
        if not self._hub_token:
            self._hub_token = self.ids.hub_token()
            self.store.put_settings({"hub_token": self._hub_token})
        return self._hub_token

    # Scanning.

    async def scan(
        self, text: str, direction: Direction = Direction.ENTRY, source: Source = "wedge"
    ) -> ScanResult:
        """Decide one scan (online first, else offline) and store it before answering.
        ``source`` says how the text came in (keyboard wedge, camera, typed by hand)."""
        del source  # every source is decided alike; the screen keeps it for its own log
        started = self.clock.monotonic()
        if self.enrollment is None or self._engine is None:
            raise DeskNotReady("this desk is not enrolled")
        chosen = self.selected_list
        if chosen is None:
            raise DeskNotReady("choose a check-in list first")
        shown = (chosen.id, direction, text.strip())
        repeated = self._admissions.get(shown)
        if (
            repeated is not None
            and self.clock.monotonic() - repeated[0] <= self.settings.representation_seconds
        ):
            return self._shown_again(repeated[1], started)
        bundle = self.bundles.get(chosen.id)
        others = [b for list_id, b in self.bundles.items() if list_id != chosen.id]
        reading = None if bundle is None else read_pass(text, bundle, others)
        payload = pass_payload(text) if reading is None else reading.payload
        draft = self._draft(
            chosen.id,
            None if payload is None else payload.ticket_id,
            None if payload is None else payload.generation,
            direction,
        )
        answer = await self._ask_server(text, draft)
        decided_by: DecidedBy = "server"
        if answer is not None:
            record, first = self._online_record(answer, draft)
        elif bundle is None or reading is None:
            raise DeskNotReady(
                "the server cannot be reached and this desk has no offline data for the list yet"
            )
        else:
            decided_by = "hub" if await self._catch_up(chosen.id) else "desk"
            record, first = self._offline_record(reading, bundle, draft)
        self._still_enrolled()
        self._captured(record, pulled_first=not self.store.add_own(record))
        entry = reading.entry if reading is not None else None
        if entry is not None and record.ticket_id is not None:
            self._in_hand[record.ticket_id] = entry
        result = replace(self._result(record, entry, answer, first, started), decided_by=decided_by)
        if record.admitted:
            self._admissions[shown] = (self.clock.monotonic(), result)
        undecided = record.decision is Verdict.ATTENTION and record.ticket_id is not None
        self._undecided = (draft, entry) if undecided else None
        return result

    @property
    def can_admit_by_hand(self) -> bool:
        """The last scan was amber (the desk could not decide it): door staff may admit it."""
        return self._undecided is not None

    async def admit_by_hand(self, why: str) -> ScanResult:
        """Admit the holder of the last amber scan by hand, for ``why`` (a few words: no names).
        The check-in record is an admission like any other, marked manual: counted, synced, and
        refused at every door afterwards. Raises :class:`DeskNotReady` when the last scan was not amber."""
        started = self.clock.monotonic()
        if self._undecided is None or self._engine is None:
            raise DeskNotReady("only a scan this desk could not decide (amber) can be admitted by hand")
        draft, entry = self._undecided
        self._undecided = None
        draft = replace(
            draft,
            record_id=self.ids.record_id(),
            device_ms=self.clock.wall_ms(),
            clock_offset_ms=self.offset.value_ms,
        )
        reason = " ".join(why.split())[:MANUAL_REASON_CHARS] or "checked by hand"
        record = replace(draft.record(Decision(Verdict.ADMIT, Reason.OK)), manual_reason=reason)
        self._captured(record, pulled_first=not self.store.add_own(record))
        result = self._result(record, entry, None, None, started)
        return replace(result, headline=texts.ADMITTED_BY_HAND, detail=reason)

    def _shown_again(self, admitted: ScanResult, started: float) -> ScanResult:
        """The pass this desk just admitted, shown again: said so, and nothing recorded."""
        return replace(
            admitted,
            headline=texts.JUST_ADMITTED,
            detail=texts.JUST_ADMITTED_DETAIL,
            repeat=True,
            latency_ms=(self.clock.monotonic() - started) * 1000,
        )

    def _draft(
        self, list_id: str, ticket_id: str | None, generation: int | None, direction: Direction
    ) -> Draft:
        assert self.enrollment is not None
        return Draft(
            device_id=self.enrollment.device_id,
            record_id=self.ids.record_id(),
            list_id=list_id,
            ticket_id=ticket_id,
            generation=generation,
            direction=direction,
            device_ms=self.clock.wall_ms(),
            clock_offset_ms=self.offset.value_ms,
            gate=self.gate,
        )

    @staticmethod
    def _scan_body(draft: Draft) -> dict[str, Any]:
        """What the server needs to store a check-in as exactly this desk's record of it: same id,
        time and clock offset, so the desk's later upload of it is a duplicate."""
        body: dict[str, Any] = {
            "checkInListId": draft.list_id,
            "direction": draft.direction.value,
            "idempotencyKey": draft.record_id,
            "deviceTimeMs": draft.device_ms,
            "clockOffsetMs": draft.clock_offset_ms,
        }
        if draft.gate:
            body["gate"] = draft.gate
        return body

    async def _ask_server(self, text: str, draft: Draft) -> dict[str, Any] | None:
        """The server's decision, or None to decide here (no answer in time, an error, or empty
        text)."""
        token = text.strip()
        if self._server is None or self._breaker_open or not token:
            return None
        body = {"ticketToken": token[:MAX_TOKEN_TEXT], **self._scan_body(draft)}
        try:
            answer = await self._server.check_in(body, self.settings.online_timeout_seconds)
        except ServerUnreachable as unreachable:
            self._went_offline(unreachable)
            return None
        except ServerRefused as refused:
            self.problem = f"online check-in refused: {refused.message or refused.error}"
            return None
        except DeviceRevokedError:
            await self._revoke()
            raise
        self.online = self._answered = True
        return answer

    @staticmethod
    def _online_record(answer: dict[str, Any], draft: Draft) -> tuple[Record, FirstEntry | None]:
        """The server's decision as this desk's record, and the first entry the server reported.
        A scan the server answered without a ticket (a pass it could not trust, or a ticket not
        this desk's to see) is recorded without one, exactly as the server logged it."""
        if "ticket" not in answer:
            draft = replace(draft, ticket_id=None, generation=None)
        previous = answer.get("previous")
        first = None
        if isinstance(previous, dict) and (at := _answer_ms(previous.get("checkedInAt"))) is not None:
            first = FirstEntry(at, previous.get("gate"), previous.get("deviceId"))
        try:
            reason = Reason(str(answer.get("reason")))
        except ValueError:
            reason = Reason.INVALID
        verdict = Verdict.ADMIT if answer.get("status") in ONLINE_ADMITTED else Verdict.REFUSE
        return draft.record(Decision(verdict, reason)), first

    async def _catch_up(self, list_id: str) -> bool:
        """With a hub desk set, fetch the other desks' latest records from it before deciding
        offline (whatever the sync loop is waiting for meanwhile); answers whether the hub did."""
        if self._hub is None or self._engine is None:
            return False
        return await self._with_hub(self._engine.pull_now(self._hub, list_id, HUB))

    def _offline_record(
        self, reading: PassReading, bundle: ListBundle, draft: Draft
    ) -> tuple[Record, FirstEntry | None]:
        """The shared door decision, here: the bundle's facts and every record this desk knows."""
        history = [] if draft.ticket is None else self.door.history(draft.list_id, draft.ticket)
        decision = decide(
            reading.check,
            draft.generation,
            bundle.rules,
            ticket_facts(reading.entry),
            history,
            draft.direction,
            draft.now_ms,
        )
        first = decision.first_entry
        first_entry = None if first is None else FirstEntry(first.at_ms, first.gate, first.device_id)
        return draft.record(decision), first_entry

    def _still_enrolled(self) -> None:
        """After a wait: the sync loop may have found the desk revoked (and wiped it) meanwhile,
        and a wiped desk stores nothing more."""
        if self._engine is None:
            raise (
                DeviceRevokedError(texts.REVOKED)
                if self.revoked
                else DeskNotReady("this desk is not enrolled")
            )

    def _captured(self, record: Record, *, undo: bool = False, pulled_first: bool = False) -> None:
        """A record of this desk, stored: into the sync replica, the door book and the counters.
        ``pulled_first``: a pull from the server brought the record in before the scan stored it
        (the replica and the door book have it already)."""
        assert self._engine is not None
        if not pulled_first:
            self._engine.captured(record)
            self.door.add((record,))
        if record.admitted and record.direction is Direction.ENTRY:
            self._admitted_here[record.list_id] += 0 if undo else 1
        self._wake.set()

    def _result(
        self,
        record: Record,
        entry: TicketEntry | None,
        answer: dict[str, Any] | None,
        first: FirstEntry | None,
        started: float,
    ) -> ScanResult:
        ticket = answer.get("ticket") if answer is not None else None
        ticket = ticket if isinstance(ticket, dict) else {}
        bundle = self.bundles.get(record.list_id)
        tiers = {} if bundle is None else bundle.tiers
        name = entry.display_name if entry is not None else ticket.get("attendeeName")
        generation = entry.generation if entry is not None else ticket.get("generation")
        if record.reason is Reason.REVOKED or (
            record.token_generation is not None and generation != record.token_generation
        ):
            name = None  # the holder of another copy of the ticket: this pass's holder is not known
        number = entry.ticket_number if entry is not None else ticket.get("ticketNumber")
        tier_id = entry.tier_id if entry is not None else ticket.get("tierId")
        tier_title = tiers.get(tier_id) if isinstance(tier_id, str) else None
        desk = None if first is None else self._desk_name(first.device_id)
        where = None if first is None else texts.where(first.at_ms, first.gate, desk)
        return ScanResult(
            verdict=record.decision,
            reason=record.reason,
            headline=texts.headline(record.decision, record.reason, record.direction),
            detail=texts.detail(
                record.decision, record.reason, tier_title=tier_title, ticket_number=number, first_entry=where
            ),
            display_name=name or None,
            ticket_number=number,
            tier_title=tier_title,
            first_entry=first,
            online=answer is not None,
            record=record.key,
            latency_ms=(self.clock.monotonic() - started) * 1000,
            direction=record.direction,
        )

    def _desk_name(self, device_id: str | None) -> str | None:
        if device_id is None:
            return None
        if self.enrollment is not None and device_id == self.enrollment.device_id:
            return self.enrollment.device_name
        if device_id == "online":
            return "online"
        names = {
            n for b in self.bundles.values() for n in [b.state.body.get("devices", {}).get(device_id)] if n
        }
        return names.pop() if names else "another desk"

    async def search(self, query: str) -> list[FoundTicket]:
        """Tickets of the chosen list by name or ticket number: online only, since the offline index
        opens an entry only with that ticket's pass. Raises ``ServerUnreachable`` offline."""
        chosen = self.selected_list
        if self._server is None or chosen is None:
            raise DeskNotReady("choose a check-in list first")
        answer = await self._server.search(chosen.id, query)
        return [
            FoundTicket(
                ticket_id=str(t["ticketId"]),
                ticket_number=str(t["ticketNumber"]),
                display_name=t.get("attendeeName"),
                tier_title=t.get("tierTitle"),
                status=str(t["status"]),
                door_state=texts.door_state(self.door.history(chosen.id, ticket_ref(str(t["ticketId"])))),
            )
            for t in answer.get("tickets", [])
        ]

    async def check_in_searched(self, ticket_id: str, direction: Direction = Direction.ENTRY) -> ScanResult:
        """Check in by hand a ticket found by :meth:`search` (the guest has no pass at hand): the
        server decides it like a scan of the ticket's pass (online only; raises ``DeskNotReady`` when
        the server does not answer). The desk's record names the ticket by reference, as a scan's."""
        started = self.clock.monotonic()
        chosen = self.selected_list
        if self._server is None or self._engine is None or chosen is None:
            raise DeskNotReady("choose a check-in list first")
        draft = self._draft(chosen.id, ticket_id, None, direction)
        body = {"ticketId": ticket_id, **self._scan_body(draft)}
        try:
            answer = await self._server.check_in_searched(body, self.settings.request_timeout_seconds)
        except DeviceRevokedError:
            await self._revoke()
            raise
        except (ServerUnreachable, ServerRefused) as failed:
            raise DeskNotReady(f"a ticket found by search is checked in online only: {failed}") from None
        ticket = answer.get("ticket")
        generation = ticket.get("generation") if isinstance(ticket, dict) else None
        draft = replace(draft, generation=generation if isinstance(generation, int) else None)
        record, first = self._online_record(answer, draft)
        self._still_enrolled()
        self._captured(record, pulled_first=not self.store.add_own(record))
        return self._result(record, None, answer, first, started)

    async def undo_last(self) -> ScanResult | None:
        """Take back this desk's last admission (a mistaken scan); None when there is nothing to
        undo (no admission yet, or the last one was already undone).

        Records are never changed, so an undo is a new record: an admitted record of the same
        ticket, list and direction with the reason ``undone``, which the merge rules read as "this
        desk's latest admission of the ticket never happened" (``sync.merge.standing``) on every
        replica: the holder may then enter as if never scanned."""
        started = self.clock.monotonic()
        if self.enrollment is None:
            return None
        last = self.store.last_own_admission(self.enrollment.device_id)
        if last is None or last.is_undo or last.undone:
            return None
        undone = last.record
        record = replace(
            undone,
            record_id=self.ids.record_id(),
            reason=Reason.UNDONE,
            device_ms=self.clock.wall_ms(),
            clock_offset_ms=self.offset.value_ms,
        )
        self.store.add_own(record, undoes=undone.record_id)
        self._captured(record, undo=True)
        if undone.direction is Direction.ENTRY:
            self._admitted_here[undone.list_id] -= 1
        entry = None if undone.ticket_id is None else self._in_hand.get(undone.ticket_id)
        result = self._result(record, entry, None, None, started)
        what = "check-in" if undone.direction is Direction.ENTRY else "check-out"
        whose = (entry.display_name if entry is not None else "") or "this ticket"
        return replace(
            result,
            headline=f"Undone: {what} taken back",
            detail=f"The last {what} of {whose} no longer counts.",
        )

    # Sync.

    def _went_offline(self, why: Exception) -> None:
        """Open the breaker: decide offline, without waiting for the server, until a sync round
        reaches it again."""
        self.online = False
        self.problem = f"server unreachable: {why or type(why).__name__}"
        self._breaker_open = True

    async def _with_hub(self, call: Awaitable[None]) -> bool:
        """A call to the hub desk under the probe deadline; answers (and remembers) whether it
        answered, so a dead or hung hub shows within about a second."""
        try:
            await asyncio.wait_for(call, self.settings.probe_timeout_seconds)
        except (ServerUnreachable, ServerRefused, TimeoutError) as failed:
            self._hub_alive = False
            self.problem = f"hub desk unreachable: {failed or type(failed).__name__}"
            return False
        self._hub_alive = True
        return True

    def _synced(self) -> None:
        """A sync round completed: when, kept across restarts."""
        self._last_sync_ms = self.clock.wall_ms()
        self.store.put_settings({"last_sync_ms": str(self._last_sync_ms)})

    async def sync_once(self) -> None:
        """One round: refresh the bundles when due, upload what is pending, pull every desk's
        records; through the hub desk while the server is unreachable. Raises
        :class:`DeviceRevokedError` after wiping a revoked desk."""
        async with self._sync_lock:
            if self._engine is None or self._server is None:
                return
            if self._breaker_open:
                await self._sync_with_hub()  # first: the hub is on the local network
            try:
                await self._server_round(self._engine, self._server)
            except (ServerUnreachable, TimeoutError) as unreachable:
                self._went_offline(unreachable)
                await self._sync_with_hub()
            except ServerRefused as refused:
                self.problem = f"the server refused this desk: {refused.message or refused.error}"
            except DeviceRevokedError:
                await self._revoke()
                raise
            else:
                self.online = self._answered = True
                self.problem, self._breaker_open = None, False
                self._synced()
            self.store.put_settings({"clock_offset_ms": str(self.offset.value_ms)})

    async def _server_round(self, engine: SyncEngine, server: PeerClient) -> None:
        """While the breaker is open, or a hub desk is set (other desks' admissions must reach this
        one within a second), a round starts with a probe (a small pull) under the probe deadline:
        a hung server costs that, not the request timeout of every call of the round."""
        if self._breaker_open or self._hub is not None:
            first = engine.list_ids[0]
            probe = server.pull(first, engine.replicas[first].cursors.get(SERVER, 0))
            await asyncio.wait_for(probe, self.settings.probe_timeout_seconds)
        await self._refresh_bundles()
        engine.use_upstream(SERVER)
        await engine.exchange(server, self.offset.now_ms())

    async def _sync_with_hub(self) -> None:
        if self._hub is None or self._engine is None:
            return
        engine, hub = self._engine, self._hub

        async def exchange() -> None:
            engine.use_upstream(HUB)
            await engine.exchange(hub, self.offset.now_ms())

        if await self._with_hub(exchange()):
            self._synced()

    async def run_sync_forever(self, stop: asyncio.Event) -> None:
        """Sync every ``sync_interval_seconds``, and at once after each scan, until ``stop`` is
        set or the desk is revoked (then ``enrolled`` is False)."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.sync_once()
            except DeviceRevokedError:
                return
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            interval = self.settings.sync_interval_seconds
            if self._breaker_open and self._hub is not None:  # keep the hub's liveness known
                interval = min(interval, self.settings.hub_interval_seconds)
            await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()

    async def _refresh_bundles(self) -> None:
        """Every list's bundle delta, when due — and on every round while the server is not the
        upstream: the call doubles as the probe that finds the server back."""
        assert self._engine is not None
        assert self.enrollment is not None
        due = self._bundles_checked is None or (
            self.clock.monotonic() - self._bundles_checked >= self.settings.bundle_refresh_seconds
        )
        if not due and self._engine.upstream == SERVER and len(self.bundles) == len(self.enrollment.lists):
            return
        for item in self.enrollment.lists:
            await self._fetch_bundle(item.id)
        self._bundles_checked = self.clock.monotonic()

    async def _fetch_bundle(self, list_id: str) -> None:
        """The list's changes since the bundle held (or all of it), verified, applied and kept."""
        assert self._server is not None
        assert self._engine is not None
        current = self.bundles.get(list_id)
        since = None if current is None else current.state.seq
        signed = (await self._server.bundle(list_id, since))["bundle"]
        try:
            body = verify_bundle(signed, bundle_keys(signed) if current is None else current.keys)
        except (BundleError, KeyError, TypeError, ValueError):
            if current is None:
                raise ServerRefused(200, "BadBundle", "the list's bundle does not verify") from None
            # Signed by a key this desk does not know yet (rotated): start again from a full bundle,
            # as on enrollment, from the server this desk authenticated to.
            signed = (await self._server.bundle(list_id, None))["bundle"]
            body, current = verify_bundle(signed, bundle_keys(signed)), None
        full = current is None or bool(body.get("full"))
        index = TicketIndex() if full or current is None else current.index
        index.apply(body["entries"])
        changed = index.entries if full else {k: index.entries[k] for k in unpack_entries(body["entries"])}
        state = BundleState(
            {k: v for k, v in body.items() if k != "entries"}, body["seq"], body["issuedAtMs"]
        )
        bundle = ListBundle(state, index)
        self.store.save_bundle(list_id, state, changed, full=full)
        self.bundles[list_id] = bundle
        self._engine.bundle_received(list_id, state.seq, state.issued_at_ms, bundle.rules)

    async def _revoke(self) -> None:
        """The server revoked this desk: wipe everything and forget the enrollment."""
        await self._close_clients()
        self.store.wipe()
        self.vault.forget()
        self._in_hand.clear()
        self.revoked, self.online, self._engine = True, False, None
        self._admissions.clear()
        self.problem = texts.REVOKED
        self.load()

    async def _close_clients(self) -> None:
        for client in (self._server, self._hub):
            if client is not None:
                await client.aclose()
        self._server = self._hub = None

    def wake(self) -> None:
        """Start a sync round now (records arrived that should go upstream)."""
        self._wake.set()

    async def close(self) -> None:
        await self._close_clients()
        self.store.close()

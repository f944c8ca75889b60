"""What the desk's core asks of the world outside it: a clock, a source of ids, its peers (the
server and a hub desk) and the errors they answer, its local store and the vault of its credential.

The core holds these as protocols and never makes one itself: the adapters live in
:mod:`scanner_app.io`, :func:`scanner_app.start.open_desk` builds them and hands them to
:class:`~scanner_app.core.desk.DeskCore`, and a test may hand it fakes instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sync.records import Record, RecordKey

CLOCK_SAMPLES = 8


class DeskClock(Protocol):
    def wall_ms(self) -> int:
        """This desk's wall time, in milliseconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: windows, deadlines and latencies."""
        ...


class IdSource(Protocol):
    def record_id(self) -> str:
        """A check-in record id, unique on this desk."""
        ...

    def hub_token(self) -> str:
        """A new secret for other desks to send to this desk in hub mode."""
        ...


# Peers.


class DeviceRevokedError(Exception):
    """The server revoked this desk: its local data must be wiped."""


class ServerUnreachable(Exception):
    """No answer: the network is down, the server is stopped, or it did not answer in time."""


class ServerRefused(Exception):
    """The server answered with an error ``{error, message}``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message


class ClockOffset:
    """Server time minus this desk's time, in milliseconds (0 until measured).

    NTP-style: each sample is the server's time against the midpoint of a request's send and
    receive times; the estimate is the sample with the shortest round trip of the last few, whose
    midpoint is the least uncertain."""

    def __init__(self, clock: DeskClock, initial_ms: int = 0) -> None:
        self.clock = clock
        self._initial = initial_ms
        self._samples: deque[tuple[int, int]] = deque(maxlen=CLOCK_SAMPLES)

    def add(self, sent_ms: int, received_ms: int, server_ms: int) -> None:
        self._samples.append((received_ms - sent_ms, server_ms - (sent_ms + received_ms) // 2))

    @property
    def value_ms(self) -> int:
        return min(self._samples)[1] if self._samples else self._initial

    def now_ms(self) -> int:
        """The server's clock, as well as this desk can tell."""
        return self.clock.wall_ms() + self.value_ms


class PeerClient(Protocol):
    """The device methods of one peer, the server or a hub desk (same methods, same shapes). Every
    answer carrying ``serverTimeMs`` feeds the desk's :class:`ClockOffset`. A call raises
    :class:`DeviceRevokedError`, :class:`ServerUnreachable` or :class:`ServerRefused`, so the desk
    can fall back to deciding offline."""

    async def aclose(self) -> None: ...

    async def enroll(self, code: str, device_name: str | None) -> dict[str, Any]: ...

    async def check_in(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]: ...

    async def check_in_searched(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]: ...

    async def bundle(self, list_id: str, since: int | None) -> dict[str, Any]: ...

    async def upload(self, records: list[dict[str, Any]]) -> dict[str, Any]: ...

    async def search(self, list_id: str, query: str) -> dict[str, Any]: ...

    async def pull(self, list_id: str, cursor: int) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A peer to call: at ``base_url``, authenticated by ``credential`` (empty: none), its time
    feeding ``offset``. ``timeout_s`` bounds each read and write of a call; ``connect_s`` (default:
    the same) bounds connecting, short, so a stopped peer is known at once."""

    base_url: str
    credential: str
    offset: ClockOffset
    timeout_s: float
    connect_s: float | None = None


class Peers(Protocol):
    def connect(self, peer: PeerAddress) -> PeerClient:
        """A client of ``peer``."""
        ...


# The local store and the credential.


@dataclass(frozen=True, slots=True)
class ListInfo:
    """A check-in list the desk is enrolled for."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class DeskEnrollment:
    server_url: str
    device_id: str
    device_name: str
    environment: str
    event_id: str
    lists: tuple[ListInfo, ...]


@dataclass(frozen=True, slots=True)
class BundleState:
    """A list's verified bundle: its body without the entries (those are in the ticket index)."""

    body: Mapping[str, Any]
    seq: int
    issued_at_ms: int


@dataclass(frozen=True, slots=True)
class OwnAdmission:
    """This desk's latest admission, and whether it is itself an undo or has been undone."""

    record: Record
    is_undo: bool
    undone: bool


class DeskStore(Protocol):
    """The desk's local store: the enrollment (its credential sealed), each list's bundle and
    ticket index, every check-in record the desk knows (once per ``(device, record id)``), which
    still have to go upstream, the pull cursors and the door staff's choices. Every write is
    committed before it answers."""

    def close(self) -> None: ...

    def wipe(self) -> None:
        """Delete everything (a revoked desk)."""
        ...

    def setting(self, key: str) -> str | None: ...

    def put_settings(self, values: Mapping[str, str | None]) -> None: ...

    def enrollment(self) -> DeskEnrollment | None: ...

    def save_enrollment(self, enrollment: DeskEnrollment, sealed_credential: str) -> None: ...

    def take_clear_credential(self) -> str | None:
        """The credential an older desk kept in clear, if any (for sealing)."""
        ...

    def seal_credential(self, sealed_credential: str) -> None: ...

    def bundles(self) -> dict[str, BundleState]: ...

    def entries(self, list_id: str) -> dict[bytes, bytes]: ...

    def save_bundle(
        self, list_id: str, state: BundleState, entries: Mapping[bytes, bytes], *, full: bool
    ) -> None: ...

    def add_own(self, record: Record, undoes: str | None = None) -> bool:
        """This desk's record of a scan, pending upload; False when it is here already."""
        ...

    def add_records(
        self, records: Iterable[Record], *, pending: bool, cursor: tuple[str, str, int] | None = None
    ) -> list[Record]:
        """Records learnt from elsewhere and the pull cursor that follows them; the new ones."""
        ...

    def records(self) -> list[Record]: ...

    def pending(self) -> list[Record]: ...

    def acknowledge(self, keys: Iterable[RecordKey]) -> None: ...

    def cursors(self) -> dict[tuple[str, str], int]: ...

    def last_own_admission(self, device_id: str) -> OwnAdmission | None: ...

    def undos(self, device_id: str) -> dict[str, str]: ...


class CredentialVault(Protocol):
    """The desk credential at rest, sealed. Opening it may need the desk PIN (the adapter raises
    its own errors for a missing or wrong PIN; the core lets them through)."""

    def seal(self, credential: str) -> str: ...

    def unseal(self, sealed: str) -> str: ...

    def forget(self) -> None:
        """The desk was wiped: drop whatever the vault keeps beside the store."""
        ...

"""What happened, as Textual messages (past tense). Workers post them; screens and the app react.

They carry the core's own answers (:class:`ScanResult`, :class:`SyncStatus`), so a test can read
exactly what the screen was given."""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message

from scanner_app.core.desk import Counters, FoundTicket, ScanResult, Source, SyncStatus
from scanner_app.core.ports import ListInfo
from sync.checkin import Direction


class CodeScanned(Message):
    """A code came in (keyboard wedge, camera, or a match picked by hand), before the decision."""

    def __init__(self, text: str, source: Source) -> None:
        super().__init__()
        self.text = text
        self.source = source


class ScanDecided(Message):
    """The core decided a scan; ``counters`` are the door's counts just after it, ``at_ms`` the wall
    time the desk had the decision."""

    def __init__(self, result: ScanResult, counters: Counters, source: Source, at_ms: int) -> None:
        super().__init__()
        self.result = result
        self.counters = counters
        self.source = source
        self.at_ms = at_ms


class ScanFailed(Message):
    """A code could not be decided (the desk is not ready: no list, or offline without a bundle)."""

    def __init__(self, problem: str, at_ms: int) -> None:
        super().__init__()
        self.problem = problem
        self.at_ms = at_ms


class UndoCompleted(Message):
    """The last admission was taken back (``result``), or there was nothing to take back (None)."""

    def __init__(self, result: ScanResult | None, counters: Counters, at_ms: int) -> None:
        super().__init__()
        self.result = result
        self.counters = counters
        self.at_ms = at_ms


class DirectionChanged(Message):
    """Door staff switched between checking people in and checking them out."""

    def __init__(self, direction: Direction) -> None:
        super().__init__()
        self.direction = direction


class SyncCompleted(Message):
    """A sync round with the server (or, while it is unreachable, a hub desk) completed."""

    def __init__(self, status: SyncStatus) -> None:
        super().__init__()
        self.status = status


class ConnectionChanged(Message):
    """The desk lost the server (it decides offline now) or found it again."""

    def __init__(self, status: SyncStatus) -> None:
        super().__init__()
        self.status = status


class Enrolled(Message):
    """The desk redeemed its enrollment code; ``lists`` are the check-in lists it may scan for."""

    def __init__(self, lists: list[ListInfo]) -> None:
        super().__init__()
        self.lists = lists


class EnrollmentRefused(Message):
    """The code was refused, or the server could not be reached."""

    def __init__(self, problem: str) -> None:
        super().__init__()
        self.problem = problem


class ListSelected(Message):
    """Door staff chose the check-in list and the gate this desk scans for."""

    def __init__(self, chosen: ListInfo, gate: str | None) -> None:
        super().__init__()
        self.chosen = chosen
        self.gate = gate


class SearchAnswered(Message):
    """The server's matches for a manual search."""

    def __init__(self, query: str, matches: Sequence[FoundTicket]) -> None:
        super().__init__()
        self.query = query
        self.matches = matches


class SearchFailed(Message):
    """A manual search could not be made (the server is out of reach, or the desk cannot search)."""

    def __init__(self, query: str, problem: str) -> None:
        super().__init__()
        self.query = query
        self.problem = problem

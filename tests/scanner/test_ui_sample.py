"""The screen on a fixed sample desk (fixed answers, fixed clock): SVG snapshots of the key screens,
compared with the accepted ones in ``__snapshots__``, and the manual search flow.

Accept a deliberate change of a screen with ``pytest tests/scanner/test_ui_sample.py
--snapshot-update`` after looking at the report pytest-textual-snapshot writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from support.desk_time import in_utc
from textual.pilot import Pilot
from textual.widgets import OptionList

from scanner.test_ui import Recorder, shown, text_of, until, wedge
from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import (
    Counters,
    DeskConflictRow,
    DeskNotReady,
    FirstEntry,
    FoundTicket,
    ScanResult,
    Source,
    SyncStatus,
)
from scanner_app.core.ports import DeskEnrollment, ListInfo
from scanner_app.core.texts import headline
from scanner_app.ui.app import ScannerApp
from scanner_app.ui.messages import ScanDecided, ScanFailed, SearchAnswered, SearchFailed
from scanner_app.ui.screens.scanning import ScanningScreen
from scanner_app.ui.screens.search import SearchScreen
from scanner_app.ui.widgets.status import StatusBar
from sync.checkin import Direction, Reason, Verdict
from sync.records import RecordKey

SIZE = (100, 34)
NOW_MS = 1_798_743_600_000  # 2026-12-31 20:00 UTC
MAIN = ListInfo("checklist_main", "Main entrance")
LISTS = (MAIN, ListInfo("checklist_vip", "VIP lounge"))
ADA = "ADAPASSADAPASSADAPASS"
BOB = "BOBPASSBOBPASSBOBPASS"
RESULTS = {
    ADA: ScanResult(
        verdict=Verdict.ADMIT,
        reason=Reason.OK,
        headline="Admitted",
        detail="VIP, ticket 7K3QX-9TB2M",
        display_name="Ada Lovelace",
        ticket_number="7K3QX-9TB2M",
        tier_title="VIP",
        first_entry=None,
        online=True,
        record=RecordKey("dev_sample", "rec_0001"),
        latency_ms=23.0,
        decided_by="server",
    ),
    BOB: ScanResult(
        verdict=Verdict.REFUSE,
        reason=Reason.ALREADY_CHECKED_IN,
        headline="Already checked in",
        detail="Already checked in at 19:02 at Gate 2 (South door)",
        display_name="Bob Marley",
        ticket_number="M4P2D-QW7XK",
        tier_title="GA",
        first_entry=FirstEntry(NOW_MS - 58 * 60_000, "Gate 2", "dev_south"),
        online=False,
        record=RecordKey("dev_sample", "rec_0002"),
        latency_ms=2.0,
    ),
}


MATCHES = (
    FoundTicket("ticket_ada", "7K3QX-9TB2M", "Ada Lovelace", "VIP", "active", "not checked in"),
    FoundTicket("ticket_byron", "AD4QX-1TB2M", "Ada Byron", "GA", "voided", "checked in 19:02"),
)
PASSES = {"ticket_ada": ADA}  # what the server decides a searched ticket on: its pass


@dataclass
class SampleDesk:
    """A desk with fixed answers, standing in for the core (``scanner_app.ui.desk.Desk``, and
    ``Searching``, which the core does not offer yet)."""

    settings: ScannerSettings
    selected_list: ListInfo | None = MAIN
    gate: str | None = "Gate 2"
    direction: Direction = Direction.ENTRY
    door: Counters = field(default_factory=lambda: Counters(41, 37, 250))
    online: bool = True
    stale: bool = False
    conflicts: list[DeskConflictRow] = field(default_factory=list)
    enrollment: DeskEnrollment | None = field(
        default_factory=lambda: DeskEnrollment(
            "https://tickets.example.org", "dev_sample", "North door", "live", "event_1", LISTS
        )
    )

    @property
    def enrolled(self) -> bool:
        return self.enrollment is not None

    @property
    def lists(self) -> list[ListInfo]:
        return list(LISTS)

    def counters(self) -> Counters:
        return self.door

    def status(self) -> SyncStatus:
        if self.online:
            return SyncStatus(
                True, NOW_MS - 4_000, 0, 95_000, self.stale, conflicts=len(self.conflicts), link="online"
            )
        return SyncStatus(
            False, NOW_MS - 6 * 60_000, 3, 7 * 60_000, self.stale, conflicts=len(self.conflicts)
        )

    def conflict_rows(self) -> list[DeskConflictRow]:
        return self.conflicts

    async def enroll(self, server_url: str, code: str, device_name: str | None = None) -> None:
        raise AssertionError("the sample desk is enrolled")

    async def select_list(self, list_id: str, gate: str | None = None) -> None:
        self.selected_list = next(item for item in LISTS if item.id == list_id)
        self.gate = gate

    async def set_direction(self, direction: Direction) -> None:
        self.direction = direction

    async def scan(
        self, text: str, direction: Direction = Direction.ENTRY, source: Source = "wedge"
    ) -> ScanResult:
        if text not in RESULTS:
            raise DeskNotReady(
                "the server cannot be reached and this desk has no offline data for the list yet"
            )
        result = RESULTS[text]
        if result.verdict is Verdict.ADMIT:
            here, inside, total = self.door.admitted_here, self.door.inside_now, self.door.total_admissible
            self.door = Counters(here + 1, inside + 1, total)
        return replace(
            result, direction=direction, headline=headline(result.verdict, result.reason, direction)
        )

    async def search(self, query: str) -> Sequence[FoundTicket]:
        return [m for m in MATCHES if query.lower() in (m.display_name or "").lower()]

    async def check_in_searched(self, ticket_id: str, direction: Direction = Direction.ENTRY) -> ScanResult:
        return await self.scan(PASSES.get(ticket_id, ""), direction, "manual")

    async def undo_last(self) -> ScanResult | None:
        return None

    async def sync_once(self) -> None:
        return None

    async def run_sync_forever(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def close(self) -> None:
        return None


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from in_utc(monkeypatch)


def sample_app(
    folder: Path,
    settings: Mapping[str, object] | None = None,
    app: Mapping[str, object] | None = None,
    **desk: object,
) -> ScannerApp:
    """The app on a :class:`SampleDesk` (``desk``: its fields), with ``settings`` for the desk's
    ``ScannerSettings`` and ``app`` for the app's own arguments (its clock stands at ``NOW_MS``)."""

    async def opened() -> SampleDesk:
        # Results stay (no clearing) unless a test sets ``clear_after_seconds``: a loaded machine
        # may take seconds to get round to reading them.
        values = {"clear_after_seconds": 0, **(settings or {})}
        return SampleDesk(ScannerSettings(data_dir=folder, **values), **desk)  # type: ignore[arg-type]

    return ScannerApp(opened, **{"clock": lambda: NOW_MS, **(app or {})})  # type: ignore[arg-type]


def scanning(text: str) -> Callable[[Pilot[None]], object]:
    async def run_before(pilot: Pilot[None]) -> None:
        assert isinstance(pilot.app.screen, ScanningScreen)
        await wedge(pilot, text)
        await until(pilot, lambda: shown(pilot)[0] != "idle")

    return run_before


def test_setup_screen(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert snap_compare(sample_app(tmp_path, selected_list=None, gate=None), terminal_size=SIZE)


def test_an_admission(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert snap_compare(sample_app(tmp_path), terminal_size=SIZE, run_before=scanning(ADA))


def test_a_refusal(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app = sample_app(tmp_path, online=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=scanning(BOB))


async def test_manual_search_and_check_in(tmp_path: Path) -> None:
    seen = Recorder()
    app = sample_app(tmp_path)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("f3")
        assert isinstance(app.screen, SearchScreen)
        await pilot.press("a", "enter")
        assert "at least 2 characters" in text_of(pilot, "#note")
        await pilot.press("d", "a", "enter")
        await until(pilot, lambda: seen.of(SearchAnswered))
        assert seen.of(SearchAnswered)[0].query == "ada"
        options = app.screen.query_one(OptionList)
        prompts = [str(options.get_option_at_index(n).prompt) for n in range(options.option_count)]
        assert prompts == [
            "Ada Lovelace · VIP · ticket 7K3QX-9TB2M (not checked in)",
            "Ada Byron · GA · ticket AD4QX-1TB2M (voided, checked in 19:02)",
        ]
        await pilot.press("enter")
        await until(pilot, lambda: seen.of(ScanDecided))
        (decided,) = seen.of(ScanDecided)
        assert (decided.source, decided.result.display_name) == ("manual", "Ada Lovelace")
        assert isinstance(app.screen, ScanningScreen) and shown(pilot)[0] == "admit"

        await pilot.press("f3", "z", "z", "enter")
        await until(pilot, lambda: "No ticket matches “zz”." in text_of(pilot, "#note"))
        await pilot.press("escape")
        assert isinstance(app.screen, ScanningScreen) and len(seen.of(ScanDecided)) == 1


async def test_search_needs_the_server(tmp_path: Path) -> None:
    seen = Recorder()
    app = sample_app(tmp_path, online=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("f3", "a", "d", "a", "enter")
        await until(pilot, lambda: seen.of(SearchFailed))
        assert "Search needs the server, and this desk cannot reach it now." in text_of(pilot, "#note")


async def test_a_scan_the_desk_cannot_decide_is_amber(tmp_path: Path) -> None:
    seen = Recorder()
    async with sample_app(tmp_path, online=False).run_test(size=SIZE, message_hook=seen) as pilot:
        await wedge(pilot, "NEWPASSNEWPASSNEWPASS")
        await until(pilot, lambda: seen.of(ScanFailed))
        tone, words = shown(pilot)
        assert tone == "attention" and words.startswith("ATTENTION\nCannot check this ticket\n")
        assert "no offline data for the list yet" in words


async def test_out_of_date_offline_data_turns_the_status_line_red(tmp_path: Path) -> None:
    async with sample_app(tmp_path, online=False, stale=True).run_test(size=SIZE) as pilot:
        line = text_of(pilot, "StatusBar")
        assert line == (
            "○ OFFLINE, deciding on this desk │ synced 6 min ago │ 3 to upload │ offline data 7 min old"
            " │ OUT OF DATE"
        )
        bar = pilot.app.screen.query_one(StatusBar)
        assert bar.has_class("-stale") and bar.has_class("-offline")

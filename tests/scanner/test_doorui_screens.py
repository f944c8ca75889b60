"""The desk's screens people act on, on the fixed sample desk (fixed answers, fixed clock, UTC):
the conflicts screen, a sound and a colour per verdict, the decision time, the result clearing to
"ready", the quit key, ``--list``/``--gate``, the kiosk PIN and the status line before a list is
chosen; SVG snapshots of the result, conflicts and setup screens at 80x24 and 120x40.

Accept a deliberate change of a screen with ``pytest tests/scanner/test_doorui_screens.py
--snapshot-update`` after looking at the report pytest-textual-snapshot writes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from scanner.test_ui import Recorder, shown, text_of, until, wedge
from scanner.test_ui_sample import ADA, BOB, NOW_MS, sample_app, scanning, utc
from scanner_app import cli
from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import DeskConflictRow
from scanner_app.ui.app import ScannerApp
from scanner_app.ui.messages import ScanDecided, ScanFailed
from scanner_app.ui.screens.conflicts import ConflictsScreen
from scanner_app.ui.screens.pin import PinScreen
from scanner_app.ui.screens.scanning import ScanningScreen
from scanner_app.ui.screens.setup import SetupScreen
from scanner_app.ui.screens.undo import UndoScreen
from scanner_app.ui.widgets.status import StatusBar
from sync.checkin import Direction

__all__ = ["utc"]  # the sample screens' fixture: local time is UTC

SMALL, LARGE = (80, 24), (120, 40)
UNKNOWN = "NEWPASSNEWPASSNEWPASS"  # the sample desk cannot decide it: amber
CONFLICTS = [
    DeskConflictRow(
        "c1", "Admitted twice", "Main entrance", ("North door", "South door (laptop 2)"), NOW_MS - 5 * 60_000
    ),
    DeskConflictRow(
        "c2",
        "Old copy of a transferred ticket admitted",
        "VIP lounge",
        ("Lounge desk with a rather long name",),
        NOW_MS - 42 * 60_000,
    ),
    DeskConflictRow("c3", "Checked out without an entry", "Main entrance", ("another desk",), None),
]


def footer_keys(pilot: Pilot[None]) -> dict[str, str]:
    return {key.key: key.description for key in pilot.app.screen.query(FooterKey)}


def rendered(widget: Static) -> list[str]:
    """The widget's lines as drawn, at its laid-out width."""
    return [strip.text.rstrip() for strip in widget.render_lines(widget.region.reset_offset)]


# Snapshots.


async def open_conflicts(pilot: Pilot[None]) -> None:
    await pilot.press("f6")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConflictsScreen))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
@pytest.mark.parametrize(
    ("desk", "code"),
    [
        pytest.param({}, ADA, id="admit"),
        pytest.param({"online": False}, BOB, id="refuse"),
        pytest.param({"online": False}, UNKNOWN, id="attention"),
        pytest.param({"direction": Direction.EXIT}, ADA, id="exit"),
    ],
)
def test_doorui_result_screens(
    snap_compare: Callable[..., bool],
    tmp_path: Path,
    size: tuple[int, int],
    desk: dict[str, Any],
    code: str,
) -> None:
    app = sample_app(tmp_path, conflicts=CONFLICTS[:2], **desk)
    assert snap_compare(app, terminal_size=size, run_before=scanning(code))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_doorui_conflicts_screen(
    snap_compare: Callable[..., bool], tmp_path: Path, size: tuple[int, int]
) -> None:
    app = sample_app(tmp_path, conflicts=CONFLICTS)
    assert snap_compare(app, terminal_size=size, run_before=open_conflicts)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_doorui_setup_screen(
    snap_compare: Callable[..., bool], tmp_path: Path, size: tuple[int, int]
) -> None:
    app = sample_app(tmp_path, selected_list=None, gate=None, stale=True)
    assert snap_compare(app, terminal_size=size)


# 1. Conflicts someone acts on.


async def test_doorui_conflicts_screen_fits_80_columns_and_is_named_in_the_footer(tmp_path: Path) -> None:
    async with sample_app(tmp_path, conflicts=CONFLICTS).run_test(size=SMALL) as pilot:
        assert footer_keys(pilot)["f6"] == "Conflicts"
        line = text_of(pilot, "StatusBar")
        assert "3 conflicts: F6" in line[:78]  # never cut off on an 80-column screen
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConflictsScreen))
        assert "Conflicts seen by this desk: 3" in str(pilot.app.screen.query_one(".title", Static).content)
        rows = list(pilot.app.screen.query(".conflict").results(Static))
        drawn = [" ".join(" ".join(rendered(row)).split()) for row in rows]
        assert drawn == [
            "18:55 Admitted twice · Main entrance by North door, South door (laptop 2)",
            "18:18 Old copy of a transferred ticket admitted · VIP lounge"
            " by Lounge desk with a rather long name",
            "--:-- Checked out without an entry · Main entrance by another desk",
        ]
        assert all(row.region.right <= SMALL[0] for row in rows)
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, ScanningScreen)


async def test_doorui_no_conflicts_says_so(tmp_path: Path) -> None:
    async with sample_app(tmp_path).run_test(size=SMALL) as pilot:
        assert "conflicts" not in text_of(pilot, "StatusBar")
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConflictsScreen))
        (row,) = pilot.app.screen.query(".conflict").results(Static)
        assert str(row.content) == "None: every desk's scans agree."


# 2. Feedback people can tell apart.


class Bells:
    """Counts the app's terminal bells."""

    def __init__(self, app: ScannerApp) -> None:
        self.rung = 0
        app.bell = self.ring  # type: ignore[method-assign]

    def ring(self) -> None:
        self.rung += 1


async def test_doorui_admit_refuse_and_attention_sound_different(tmp_path: Path) -> None:
    seen = Recorder()
    app = sample_app(tmp_path, online=False)
    bells = Bells(app)
    async with app.run_test(size=LARGE, message_hook=seen) as pilot:
        for code, total in ((ADA, 1), (BOB, 1 + 3), (UNKNOWN, 1 + 3 + 2)):
            await wedge(pilot, code)
            await until(pilot, lambda total=total: bells.rung == total)  # type: ignore[misc]
        await pilot.pause(0.5)
        assert bells.rung == 6


async def test_doorui_sound_off_is_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Recorder()
    app = sample_app(tmp_path, {"sound": False, "sound_command": "never-run"})
    played: list[object] = []
    for cue in ("ring", "play"):
        monkeypatch.setattr(app, cue, lambda *args: played.append(args))
    async with app.run_test(size=LARGE, message_hook=seen) as pilot:
        await wedge(pilot, ADA)
        await until(pilot, lambda: seen.of(ScanDecided))  # the sound is cued before the screen hears
        assert played == []


async def test_doorui_a_sound_command_that_cannot_play_rings_the_bells_quietly(tmp_path: Path) -> None:
    seen = Recorder()
    silent = f"{sys.executable} -c 'raise SystemExit(1)'"  # like a player without an audio device
    app = sample_app(tmp_path, {"sound_command": silent})
    bells = Bells(app)
    async with app.run_test(size=LARGE, message_hook=seen) as pilot:
        await wedge(pilot, ADA)
        await until(pilot, lambda: bells.rung == 1)
        assert not pilot.app.screen.query("Toast")  # no warning on the door's screen


async def test_doorui_exit_has_its_own_colour_and_every_result_its_time(tmp_path: Path) -> None:
    seen = Recorder()
    async with sample_app(tmp_path, direction=Direction.EXIT).run_test(
        size=LARGE, message_hook=seen
    ) as pilot:
        await wedge(pilot, ADA)
        await until(pilot, lambda: seen.of(ScanDecided))
        tone, words = shown(pilot)
        assert tone == "exit" and words.startswith("EXIT\nChecked out\n")
        assert words.endswith("decided by the server at 19:00:00 · 23 ms")
        await pilot.press("f2")
        await wedge(pilot, BOB)
        await until(pilot, lambda: len(seen.of(ScanDecided)) == 2)
        assert shown(pilot)[1].endswith("decided offline on this desk at 19:00:00 · 2 ms")
        await wedge(pilot, UNKNOWN)
        await until(pilot, lambda: seen.of(ScanFailed))
        assert shown(pilot)[1].endswith("\nat 19:00:00")


@asynccontextmanager
async def _one_decided_scan(tmp_path: Path, clear_after_seconds: float) -> AsyncIterator[Pilot[None]]:
    """The desk with ``clear_after_seconds`` set, once it has decided a scan of ADA."""
    seen = Recorder()
    async with sample_app(tmp_path, {"clear_after_seconds": clear_after_seconds}).run_test(
        size=LARGE, message_hook=seen
    ) as pilot:
        await wedge(pilot, ADA)
        await until(pilot, lambda: seen.of(ScanDecided))
        yield pilot


async def test_doorui_the_result_clears_to_ready_after_the_set_time(tmp_path: Path) -> None:
    async with _one_decided_scan(tmp_path, clear_after_seconds=0.3) as pilot:
        await until(pilot, lambda: shown(pilot) == ("idle", "\nScan a ticket\n\n\n"))


async def test_doorui_the_result_stays_when_clearing_is_off(tmp_path: Path) -> None:
    async with _one_decided_scan(tmp_path, clear_after_seconds=0) as pilot:
        await pilot.pause(0.5)
        assert shown(pilot)[0] == "admit"


async def test_doorui_the_result_clears_when_the_list_changes(tmp_path: Path) -> None:
    async with _one_decided_scan(tmp_path, clear_after_seconds=600) as pilot:
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
        await pilot.press("down", "enter", "enter")  # the VIP lounge, the same gate
        await until(pilot, lambda: isinstance(pilot.app.screen, ScanningScreen))
        assert "VIP lounge · Gate 2" in text_of(pilot, "DirectionBar")
        assert shown(pilot) == ("idle", "\nScan a ticket\n\n\n")


async def test_doorui_the_quit_key_is_named_on_every_screen(tmp_path: Path) -> None:
    async with sample_app(tmp_path).run_test(size=SMALL) as pilot:
        assert footer_keys(pilot)["ctrl+q"] == "Quit"
        await until(pilot, lambda: pilot.app.screen.query(FooterKey).last().region.area > 0)
        assert all(key.region.right <= SMALL[0] for key in pilot.app.screen.query(FooterKey))
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
        assert footer_keys(pilot)["ctrl+q"] == "Quit"


async def test_doorui_list_and_gate_from_the_command_line(tmp_path: Path) -> None:
    app = sample_app(
        tmp_path, app={"list_id": "checklist_vip", "gate": "Lounge"}, selected_list=None, gate=None
    )
    async with app.run_test(size=LARGE) as pilot:
        await until(pilot, lambda: isinstance(pilot.app.screen, ScanningScreen))
        assert text_of(pilot, "DirectionBar") == "CHECKING IN  ▶   VIP lounge · Lounge"


async def test_doorui_a_gate_alone_keeps_the_list_chosen_before(tmp_path: Path) -> None:
    async with sample_app(tmp_path, app={"gate": "Side door"}).run_test(size=LARGE) as pilot:
        await until(pilot, lambda: isinstance(pilot.app.screen, ScanningScreen))
        assert text_of(pilot, "DirectionBar") == "CHECKING IN  ▶   Main entrance · Side door"


def test_doorui_the_command_line_gives_the_screen_its_list_and_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(ScannerApp, "run", lambda self: started.append(self.start_at))
    cli.main(["--list", "checklist_vip", "--gate", "Main door"])
    assert started == [("checklist_vip", "Main door")]


async def test_doorui_no_out_of_date_before_a_list_is_chosen(tmp_path: Path) -> None:
    async with sample_app(tmp_path, selected_list=None, gate=None, stale=True).run_test(size=LARGE) as pilot:
        assert isinstance(pilot.app.screen, SetupScreen)
        await until(pilot, lambda: text_of(pilot, "StatusBar"))
        line = text_of(pilot, "StatusBar")
        assert "OUT OF DATE" not in line and "no check-in list chosen" in line
        assert not pilot.app.screen.query_one(StatusBar).has_class("-stale")


# 3. Kiosk safety.


KIOSK = {"kiosk_pin": "2468"}


class DeskClock:
    """Wall time in ms that a test moves on by hand."""

    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


async def _pin_asked_escaped_and_asked_again(pilot: Pilot[None], key: str) -> None:
    """``key`` asks for the kiosk PIN, escape goes back to scanning, and ``key`` asks again."""
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, PinScreen))
    await pilot.press("escape")
    await until(pilot, lambda: isinstance(pilot.app.screen, ScanningScreen))
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, PinScreen))


async def test_doorui_kiosk_pin_guards_list_and_gate(tmp_path: Path) -> None:
    clock = DeskClock()
    async with sample_app(tmp_path, KIOSK, app={"clock": clock}).run_test(size=LARGE) as pilot:
        await _pin_asked_escaped_and_asked_again(pilot, "f9")
        await pilot.press("1", "3", "5", "7", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, ScanningScreen))
        await pilot.press("f9")  # right after a wrong PIN: not even asked
        await pilot.pause()
        assert isinstance(pilot.app.screen, ScanningScreen)
        clock.now_ms += 5_000
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(pilot.app.screen, PinScreen))
        await pilot.press("2", "4", "6", "8", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))


async def test_doorui_kiosk_pin_guards_undo(tmp_path: Path) -> None:
    async with sample_app(tmp_path, KIOSK).run_test(size=LARGE) as pilot:
        await _pin_asked_escaped_and_asked_again(pilot, "f4")
        await pilot.press("2", "4", "6", "8", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, UndoScreen))


async def test_doorui_without_a_kiosk_pin_nothing_is_asked(tmp_path: Path) -> None:
    async with sample_app(tmp_path).run_test(size=LARGE) as pilot:
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))


def test_doorui_every_scanner_setting_is_documented_for_door_staff() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "scanner-guide.md").read_text()
    table = guide[guide.index("## Settings") :]
    missing = [name for name in ScannerSettings.model_fields if f"`SCANNER_{name.upper()}`" not in table]
    assert missing == []

"""The door staff's screen, driven with Textual's Pilot, on the real desk core against the real
server on loopback: enrollment, every kind of scan by keyboard wedge and camera, exits, undo,
manual search and the switch to offline decisions when the server goes away."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from conftest import Harness
from textual import events
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Digits, Input, Static

from scanner.desks import (
    desk_settings,
    enrolled_desk,
    enrollment_code,
    frame,
    fresh_passes,
    restart_server,
    revoke,
    sell,
)
from scanner.test_desk import forged
from scanner_app.core.desk import DeskCore
from scanner_app.ui import messages
from scanner_app.ui.app import ScannerApp
from scanner_app.ui.messages import (
    CodeScanned,
    ConnectionChanged,
    DirectionChanged,
    Enrolled,
    EnrollmentRefused,
    ListSelected,
    ScanDecided,
    SearchFailed,
    SyncCompleted,
    UndoCompleted,
)
from scanner_app.ui.screens.scanning import ScanningScreen
from scanner_app.ui.screens.setup import SetupScreen
from scanner_app.ui.screens.undo import UndoScreen
from scanner_app.ui.widgets.result import ResultPanel, VerdictBanner
from scanner_app.ui.widgets.status import StatusBar
from sync.checkin import Direction, Reason, Verdict

SIZE = (100, 34)
M = TypeVar("M", bound=Message)


class Recorder:
    """The app's own messages, once each (a bubbling message reaches several handlers)."""

    def __init__(self) -> None:
        self.messages: dict[int, Message] = {}

    def __call__(self, message: Message) -> None:
        if type(message).__module__ == messages.__name__:
            self.messages.setdefault(id(message), message)

    def of(self, kind: type[M]) -> list[M]:
        return [m for m in self.messages.values() if isinstance(m, kind)]


async def until(pilot: Pilot[None], condition: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Let the app run (its workers talk to the server in real time) until ``condition`` holds."""
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the app did not get there in time")


async def start_scanning(pilot: Pilot[None]) -> None:
    """Press Start on the setup screen once it is laid out and settled, as a person would after
    reading it, and wait for the scanning screen to settle too. Either header's update of the title
    (the desk's name, just enrolled), left pending while its screen goes, looks for a title no
    longer there, and stops the app (Textual 8)."""
    await until(pilot, lambda: pilot.app.screen.query_one("#start").region.area > 0)
    await pilot.pause()
    await pilot.click("#start")
    await until(pilot, lambda: isinstance(pilot.app.screen, ScanningScreen))
    await pilot.pause()


async def wedge(pilot: Pilot[None], text: str) -> None:
    """A keyboard-wedge scanner: the code and Enter as one fast burst of keys (Pilot's own presses
    come tens of milliseconds apart, the pace of quick typing)."""
    for key in (*text, "enter"):
        pilot.app.post_message(events.Key(key, "\r" if key == "enter" else key))
    await pilot.pause()


async def scan(pilot: Pilot[None], seen: Recorder, text: str) -> ScanDecided:
    """Scan ``text`` with the wedge; the decision the screen was given."""
    before = len(seen.of(ScanDecided))
    await wedge(pilot, text)
    await until(pilot, lambda: len(seen.of(ScanDecided)) > before)
    return seen.of(ScanDecided)[-1]


def text_of(pilot: Pilot[None], selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).content)


def shown(pilot: Pilot[None]) -> tuple[str, str]:
    """The result panel's colour (``admit``, ``exit``, ``refuse``, ``attention`` or ``idle``) and its
    words."""
    panel = pilot.app.screen.query_one(ResultPanel)
    (tone,) = [name[1:] for name in panel.classes if name.startswith("-")]
    lines = [panel.query_one(VerdictBanner).word]
    lines += [str(line.content) for line in panel.query(Static)]
    return tone, "\n".join(lines)


def count(pilot: Pilot[None], field: str) -> int:
    return int(pilot.app.screen.query_one(f"#{field}", Digits).value)


async def type_into(pilot: Pilot[None], selector: str, text: str) -> None:
    await pilot.click(selector)
    await pilot.press(*text)


def app_on(core: DeskCore, **kw: Any) -> ScannerApp:
    async def opened() -> DeskCore:
        return core

    return ScannerApp(opened, **kw)


async def test_enrollment_then_list_and_gate(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 2, tiers=("GA", "VIP"))
    vip = await harness.app.ok(
        "createCheckInList",
        {"eventId": sale.event["id"], "name": "VIP lounge", "tierIds": [sale.tiers["VIP"]]},
    )
    code = await enrollment_code(harness, [sale.main_list, vip["checkInList"]["id"]], "North door")
    seen = Recorder()
    app = ScannerApp(desk_settings(tmp_path))
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        assert isinstance(app.screen, SetupScreen) and app.sub_title == "not enrolled"
        assert not app.screen.query_one(StatusBar).display
        await type_into(pilot, "#code", "AAAA-BBBB-CCCC")
        await pilot.press("enter")  # the server's address is still missing
        assert app.focused is app.screen.query_one("#server", Input)
        await pilot.press(*harness.server.url, "enter")
        await until(pilot, lambda: seen.of(EnrollmentRefused))
        assert "unknown, used or expired" in text_of(pilot, "#problem")

        app.screen.query_one("#code", Input).value = ""
        await type_into(pilot, "#device-name", "North door")
        await pilot.click("#code")
        await wedge(pilot, f"tickets-enroll:{code}@{harness.server.url}")  # the organizer's QR code
        await until(pilot, lambda: seen.of(Enrolled))
        assert [item.name for item in seen.of(Enrolled)[0].lists] == ["Main entrance", "VIP lounge"]
        assert app.sub_title == "North door"
        assert "Enrolled as North door" in text_of(pilot, "#enrolled-as")
        await pilot.press("down", "enter")  # the second list, then on to the gate
        await pilot.press(*"Lounge door", "enter")
        await until(pilot, lambda: isinstance(app.screen, ScanningScreen))

        (chosen,) = seen.of(ListSelected)
        assert (chosen.chosen.name, chosen.gate) == ("VIP lounge", "Lounge door")
        assert "CHECKING IN" in text_of(pilot, "DirectionBar")
        assert "VIP lounge · Lounge door" in text_of(pilot, "DirectionBar")
        assert count(pilot, "total_admissible") == 2  # the VIP tickets
        await until(pilot, lambda: "ONLINE" in text_of(pilot, "StatusBar"))
        age = re.search(r"offline data (\d+) s old", text_of(pilot, "StatusBar"))
        assert age is not None and int(age[1]) <= 5  # just fetched (a loaded machine may round up)
        assert shown(pilot) == ("idle", "\nScan a ticket\n\n\n")


async def test_every_kind_of_scan_with_its_colour_words_and_sound(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 3, tiers=("GA", "VIP"))
    vip = await harness.app.ok(
        "createCheckInList",
        {"eventId": sale.event["id"], "name": "VIP lounge", "tierIds": [sale.tiers["VIP"]]},
    )
    ga = (await fresh_passes(harness, sale))[:3]
    await harness.app.ok("voidTicket", {"ticketId": sale.ticket(2)["id"]})
    sounds = tmp_path / "sounds.txt"
    player = tmp_path / "player.py"
    player.write_text(f"import sys\nwith open({str(sounds)!r}, 'a') as f:\n    print(sys.argv[1], file=f)\n")
    core = await enrolled_desk(
        harness,
        tmp_path / "desk",
        [sale.main_list, vip["checkInList"]["id"]],
        sound_command=f"{sys.executable} {player}",
    )
    await core.sync_once()  # the void reaches the desk's offline data too
    seen = Recorder()
    async with app_on(core).run_test(size=SIZE, message_hook=seen) as pilot:
        valid = await scan(pilot, seen, ga[0])
        assert (valid.result.verdict, valid.result.online, valid.source) == (Verdict.ADMIT, True, "wedge")
        assert (valid.counters.admitted_here, valid.counters.inside_now) == (1, 1)
        tone, words = shown(pilot)
        assert tone == "admit" and "ADMIT\nAdmitted\nGA 0 · GA · ticket " in words
        assert "decided by the server" in words
        counts = (count(pilot, "admitted_here"), count(pilot, "inside_now"), count(pilot, "total_admissible"))
        assert counts == (1, 1, 5)  # six sold, one of them voided

        twice = await scan(pilot, seen, ga[0])
        assert twice.result.reason is Reason.ALREADY_CHECKED_IN and twice.result.first_entry is not None
        tone, words = shown(pilot)
        assert tone == "refuse" and words.startswith("REFUSE\nAlready checked in\nGA 0 · GA")
        assert "Already checked in at " in words and "at Gate 2 (North door)" in words

        voided = await scan(pilot, seen, ga[2])
        assert voided.result.reason is Reason.VOIDED
        assert shown(pilot)[0] == "refuse" and "Ticket cancelled" in shown(pilot)[1]
        assert "Send the holder to the box office." in shown(pilot)[1]

        fake = await scan(pilot, seen, forged(ga[1]))
        assert fake.result.reason is Reason.INVALID
        assert shown(pilot)[0] == "refuse" and "Not a valid ticket" in shown(pilot)[1]

        await pilot.press("f2")
        await until(pilot, lambda: seen.of(DirectionChanged))
        assert seen.of(DirectionChanged)[-1].direction is Direction.EXIT
        assert text_of(pilot, "DirectionBar").startswith("CHECKING OUT")
        assert pilot.app.screen.query_one("DirectionBar").has_class("-exit")
        never_in = await scan(pilot, seen, ga[1])
        assert never_in.result.reason is Reason.NOT_INSIDE
        assert "Not checked in, cannot check out" in shown(pilot)[1]
        leaving = await scan(pilot, seen, ga[0])
        assert leaving.result.verdict is Verdict.ADMIT and leaving.result.direction is Direction.EXIT
        assert shown(pilot)[0] == "exit" and shown(pilot)[1].startswith("EXIT\nChecked out")
        assert count(pilot, "inside_now") == 0
        await pilot.press("f2")
        await until(pilot, lambda: len(seen.of(DirectionChanged)) == 2)

        await pilot.press("f9")  # to the VIP lounge
        await until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
        await pilot.press("down")
        await start_scanning(pilot)
        assert "VIP lounge · Gate 2" in text_of(pilot, "DirectionBar")
        elsewhere = await scan(pilot, seen, ga[1])
        assert elsewhere.result.reason is Reason.WRONG_LIST
        assert shown(pilot)[0] == "refuse" and "Not valid at this entrance" in shown(pilot)[1]

        before = len(seen.of(CodeScanned))
        await pilot.press(*(key for char in ga[1] for key in (char, "wait:60")), "enter")
        assert len(seen.of(CodeScanned)) == before  # someone typing is not a scanner

    heard = await asyncio.to_thread(lines_of, sounds, 7)
    assert heard == ["admit", "refuse", "refuse", "refuse", "refuse", "admit", "refuse"]


def lines_of(path: Path, count: int) -> list[str]:
    """The lines the sound command wrote, once there are ``count`` (it runs in worker threads)."""
    for _ in range(200):
        if path.exists() and len(path.read_text().split()) >= count:
            break
        time.sleep(0.05)
    return path.read_text().split()


async def test_undo_takes_back_the_last_admission(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 2)
    core = await enrolled_desk(harness, tmp_path, [sale.main_list])
    seen = Recorder()
    async with app_on(core).run_test(size=SIZE, message_hook=seen) as pilot:
        await scan(pilot, seen, sale.token(0))
        await pilot.press("f4")
        assert isinstance(pilot.app.screen, UndoScreen)
        assert "Take back the last check-in: GA 0 · GA · ticket " in text_of(pilot, "#question")
        await pilot.press("escape")  # kept
        assert isinstance(pilot.app.screen, ScanningScreen) and not seen.of(UndoCompleted)

        await pilot.press("f4", "f4")
        await until(pilot, lambda: seen.of(UndoCompleted))
        undone = seen.of(UndoCompleted)[0]
        assert undone.result is not None and undone.counters.admitted_here == 0
        tone, words = shown(pilot)
        assert tone == "attention" and words.startswith("UNDONE\nUndone: check-in taken back\nGA 0")
        assert "The last check-in of GA 0 no longer counts." in words
        assert (count(pilot, "admitted_here"), count(pilot, "inside_now")) == (0, 0)

        await pilot.press("f4", "f4")
        await until(pilot, lambda: len(seen.of(UndoCompleted)) == 2)
        assert seen.of(UndoCompleted)[1].result is None
        assert shown(pilot)[1].startswith("ATTENTION\nNothing to undo")

        await pilot.press("f4")  # a scan while the question is open: the scan wins
        await wedge(pilot, sale.token(1))
        await until(pilot, lambda: len(seen.of(ScanDecided)) == 2)
        assert isinstance(pilot.app.screen, ScanningScreen) and len(seen.of(UndoCompleted)) == 2


async def test_offline_switch_over_and_back(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 3)
    core = await enrolled_desk(harness, tmp_path, [sale.main_list])
    seen = Recorder()
    async with app_on(core).run_test(size=SIZE, message_hook=seen) as pilot:
        assert (await scan(pilot, seen, sale.token(0))).result.online
        await until(pilot, lambda: seen.of(SyncCompleted))
        await asyncio.to_thread(harness.server.stop)

        offline = await scan(pilot, seen, sale.token(1))
        assert (offline.result.verdict, offline.result.online) == (Verdict.ADMIT, False)
        assert "decided offline on this desk" in shown(pilot)[1]
        again = await scan(pilot, seen, sale.token(1))
        assert (again.result.reason, again.result.online) == (Reason.ALREADY_CHECKED_IN, False)
        first_before = await scan(pilot, seen, sale.token(0))  # admitted online, before the outage
        assert first_before.result.reason is Reason.ALREADY_CHECKED_IN
        await until(pilot, lambda: seen.of(ConnectionChanged))
        assert not seen.of(ConnectionChanged)[0].status.online
        await pilot.press("f3", *"GA 1", "enter")  # search by name needs the server
        await until(pilot, lambda: seen.of(SearchFailed))
        assert text_of(pilot, "#note").startswith("Search needs the server")
        await pilot.press("escape")
        bar = pilot.app.screen.query_one(StatusBar)
        await until(pilot, lambda: "3 to upload" in text_of(pilot, "StatusBar"))
        assert text_of(pilot, "StatusBar").startswith("○ OFFLINE, deciding on this desk")
        assert bar.has_class("-offline") and not bar.has_class("-stale")

        await restart_server(harness)
        await pilot.press("f5")
        await until(pilot, lambda: len(seen.of(ConnectionChanged)) == 2)
        assert seen.of(ConnectionChanged)[1].status.online
        await until(pilot, lambda: "0 to upload" in text_of(pilot, "StatusBar"))
        assert text_of(pilot, "StatusBar").startswith("● ONLINE │ synced ")
        assert not bar.has_class("-offline")


def camera_folder(folder: Path, texts: list[str | None]) -> str:
    """A folder of camera frames showing ``texts`` as QR codes, one a frame (None: no code)."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    for n, text in enumerate(texts):
        cv2.imwrite(str(folder / f"{n:03d}.png"), frame(text, rng))
    return str(folder)


async def test_a_camera_enrolls_the_desk(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    code = await enrollment_code(harness, [sale.main_list], "Side door")
    camera = camera_folder(tmp_path / "frames", [None, f"tickets-enroll:{code}@{harness.server.url}"])
    seen = Recorder()
    app = ScannerApp(desk_settings(tmp_path / "desk"), camera=camera)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(Enrolled))
        assert isinstance(app.screen, SetupScreen)
        assert "Enrolled as this desk with" in text_of(pilot, "#enrolled-as")
        await start_scanning(pilot)


async def test_a_camera_scans_too(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path / "desk", [sale.main_list])
    camera = camera_folder(tmp_path / "frames", [None, sale.token(0), sale.token(0), None])
    seen = Recorder()
    async with app_on(core, camera=camera).run_test(size=SIZE, message_hook=seen) as pilot:
        await until(pilot, lambda: seen.of(ScanDecided))
        (decided,) = seen.of(ScanDecided)  # seen in two frames, decided once
        assert (decided.source, decided.result.verdict) == ("camera", Verdict.ADMIT)
        assert shown(pilot)[0] == "admit"


async def test_a_revoked_desk_goes_back_to_setup(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    core = await enrolled_desk(harness, tmp_path, [sale.main_list])
    assert core.enrollment is not None
    async with app_on(core).run_test(size=SIZE) as pilot:
        await revoke(harness, core.enrollment.device_id)
        await until(pilot, lambda: isinstance(pilot.app.screen, SetupScreen))
        await pilot.pause()
        assert pilot.app.screen.query_one("#code", Input).has_focus
        assert pilot.app.sub_title == "not enrolled"
        assert "revoked by the organizer" in text_of(pilot, "#problem")

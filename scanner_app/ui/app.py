"""``ScannerApp``: the door staff's screen over one desk core.

The app owns the core and every piece of work that waits: deciding scans (one at a time, in the
order they came in), the sync loop, the camera loop, the sound command. Screens show and take
input; they hear back through the past-tense messages of :mod:`scanner_app.ui.messages`.

Each verdict has its own sound (``BELLS``: the terminal bell rung once, twice or three times, or the
configured sound command), and a kiosk PIN, when set, guards what door staff should not change by
accident or on a passer-by's whim: the list and gate, undo, the desk's setup.
"""

from __future__ import annotations

import asyncio
import hmac
import shlex
import subprocess
from collections.abc import Awaitable, Callable

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message

from scanner_app.core import texts
from scanner_app.core.config import ScannerSettings, get_settings
from scanner_app.core.desk import DeskNotReady, ScanResult, Source
from scanner_app.core.ports import DeviceRevokedError
from scanner_app.io.camera import watch
from scanner_app.io.decoders import DecoderUnavailable, make_decoder
from scanner_app.io.frames import FrameSourceError, open_source
from scanner_app.io.system import SYSTEM_DESK_CLOCK
from scanner_app.io.vault import PinRequired, WrongPin
from scanner_app.start import open_desk
from scanner_app.ui.desk import AdmittingByHand, Desk, Searching
from scanner_app.ui.messages import (
    CodeScanned,
    ConnectionChanged,
    DirectionChanged,
    ScanDecided,
    ScanFailed,
    SyncCompleted,
    UndoCompleted,
)
from scanner_app.ui.screens.conflicts import ConflictsScreen
from scanner_app.ui.screens.manual import ManualAdmissionScreen
from scanner_app.ui.screens.pin import KIOSK, PinScreen
from scanner_app.ui.screens.scanning import ScanningScreen
from scanner_app.ui.screens.search import SearchScreen
from scanner_app.ui.screens.setup import SetupScreen
from scanner_app.ui.screens.undo import UndoScreen
from scanner_app.ui.widgets.status import StatusBar
from sync.checkin import Direction, Verdict

DeskFactory = Callable[[], Awaitable[Desk]]
STATUS_EVERY_S = 0.5
SOUND_TIMEOUT_S = 10
# The terminal bell per verdict: told apart by ear without looking.
BELLS = {Verdict.ADMIT: 1, Verdict.ATTENTION: 2, Verdict.REFUSE: 3}
BELL_GAP_S = 0.18
KIOSK_WAIT_MS = 5_000  # after a wrong kiosk PIN, before the PIN is asked again


class ScannerApp(App[None]):
    TITLE = "Atmosphere Tickets"
    ENABLE_COMMAND_PALETTE = False
    # Textual's own quit key, named in every screen's footer.
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "help_quit", show=False, system=True),
    ]

    def __init__(
        self,
        desk: ScannerSettings | DeskFactory | None = None,
        *,
        camera: str | None = None,
        clock: Callable[[], int] = SYSTEM_DESK_CLOCK.wall_ms,
        list_id: str | None = None,
        gate: str | None = None,
    ) -> None:
        """``desk``: the scanner settings to open the desk's core with (default: from the
        environment), or a factory of an open desk. ``camera``: a camera index, video file or
        folder of images to scan from, besides the keyboard wedge. ``clock``: wall time in ms.
        ``list_id``, ``gate``: the check-in list and gate to scan for from the start (the command
        line's ``--list`` and ``--gate``)."""
        super().__init__()
        settings = get_settings() if desk is None else desk
        self.open_desk: DeskFactory = (
            (lambda: open_desk(settings)) if isinstance(settings, ScannerSettings) else settings
        )
        # A desk locked with a PIN is opened again with the PIN typed on the PIN screen.
        self.open_locked: Callable[[str], Awaitable[Desk]] | None = (
            (lambda pin: open_desk(settings, pin)) if isinstance(settings, ScannerSettings) else None
        )
        self.camera = camera
        self.clock = clock
        self.start_at = (list_id, gate)
        self.desk: Desk
        self.scanning: ScanningScreen | None = None
        self.last_admitted: ScanResult | None = None
        self.stop = asyncio.Event()
        self._deciding = asyncio.Lock()
        self._seen: tuple[int | None, bool] | None = None  # (last sync, online) last shown
        self._kiosk_wait_until = 0  # wall ms: a wrong kiosk PIN makes the next try wait

    async def on_mount(self) -> None:
        try:
            self.desk = await self.open_desk()
        except (PinRequired, WrongPin) as locked:
            await self.push_screen(PinScreen(str(locked)), self.unlock)
            return
        await self.start()

    async def unlock(self, pin: str | None) -> None:
        assert self.open_locked is not None
        try:
            self.desk = await self.open_locked(pin or "")
        except (PinRequired, WrongPin) as locked:
            await self.push_screen(PinScreen(str(locked)), self.unlock)
            return
        await self.start()

    async def start(self) -> None:
        """The desk is open: its screens, the sync loop, the camera and the status line."""
        self.show_desk_name()
        await self.choose_from_command_line()
        if self.desk.enrolled and self.desk.selected_list is not None:
            self.scanning = ScanningScreen(self.desk)
            await self.push_screen(self.scanning)
        else:
            await self.push_screen(SetupScreen(self.desk))
        self.sync_forever()
        if self.camera is not None:
            self.watch_camera(self.camera)
        self.set_interval(STATUS_EVERY_S, self.show_status)
        self.show_status()

    async def on_unmount(self) -> None:
        # Textual has cancelled the workers by now; a cancelled scan or sync round loses nothing
        # (a scan is stored before it is shown, and a sync round is repeated).
        self.stop.set()
        if hasattr(self, "desk"):  # not when it was left locked
            await self.desk.close()

    async def choose_from_command_line(self) -> None:
        """``--list`` and ``--gate``: the list (default: the one chosen before) and the gate."""
        list_id, gate = self.start_at
        chosen = self.desk.selected_list
        list_id = list_id or (chosen.id if chosen is not None and gate else None)
        if list_id is None or not self.desk.enrolled:
            return
        try:
            await self.desk.select_list(list_id, gate or self.desk.gate)
        except DeskNotReady as problem:
            self.notify(str(problem), title="--list", severity="error", timeout=30)

    def tell(self, message: Message) -> None:
        """To the scanning screen when there is one (the app hears it as it bubbles up)."""
        (self.scanning or self).post_message(message)

    def show_desk_name(self) -> None:
        self.sub_title = self.desk.enrollment.device_name if self.desk.enrollment else "not enrolled"

    # Setup.

    def guarded(self, then: Callable[[], object]) -> None:
        """``then``, after the kiosk PIN when one is set (not asked again for a few seconds after a
        wrong one, so that guessing it at the desk takes hours)."""
        pin = self.desk.settings.kiosk_pin
        if pin is None:
            then()
            return
        if self.clock() < self._kiosk_wait_until:
            self.notify("Wrong kiosk PIN: wait a few seconds before trying again.", severity="error")
            return
        expected = pin.get_secret_value().encode()

        def checked(typed: str | None) -> None:
            if typed is None:
                return
            if hmac.compare_digest(typed.encode(), expected):
                then()
            else:
                self._kiosk_wait_until = self.clock() + KIOSK_WAIT_MS
                self.notify("Wrong kiosk PIN: nothing was changed.", severity="error")

        self.push_screen(PinScreen(prompt=KIOSK, can_cancel=True), checked)

    def action_setup(self) -> None:
        self.guarded(lambda: self.push_screen(SetupScreen(self.desk, back=True)))

    def action_conflicts(self) -> None:
        self.push_screen(ConflictsScreen(self.desk.conflict_rows()))

    def on_enrolled(self) -> None:
        self.show_desk_name()

    def on_list_selected(self) -> None:
        if self.scanning is None:
            self.scanning = ScanningScreen(self.desk)
            self.switch_screen(self.scanning)
        else:
            self.pop_screen()
            self.scanning.list_changed()

    # Scanning.

    def on_code_scanned(self, message: CodeScanned) -> None:
        if self.scanning is None:
            if isinstance(self.screen, SetupScreen):
                self.screen.scanned(message.text)
            return
        self.decide(message.text, message.source)

    @work(group="scans")
    async def decide(self, text: str, source: Source) -> None:
        async with self._deciding:
            try:
                result = await self.desk.scan(text, self.desk.direction, source)
            except (DeskNotReady, DeviceRevokedError) as problem:
                self.failed(problem)
                return
        self.decided(result, source)

    def failed(self, problem: Exception) -> None:
        self.cue(Verdict.ATTENTION)
        self.tell(ScanFailed(str(problem), self.clock()))

    def decided(self, result: ScanResult, source: Source) -> None:
        if result.verdict is Verdict.ADMIT:
            self.last_admitted = result
        self.cue(result.verdict)
        self.tell(ScanDecided(result, self.desk.counters(), source, self.clock()))

    @work(exclusive=True, group="direction")
    async def action_toggle_direction(self) -> None:
        entry = self.desk.direction is Direction.ENTRY
        direction = Direction.EXIT if entry else Direction.ENTRY
        await self.desk.set_direction(direction)
        self.tell(DirectionChanged(direction))

    def action_undo(self) -> None:
        self.guarded(lambda: self.push_screen(UndoScreen(self.last_admitted), self.undo_if_confirmed))

    def undo_if_confirmed(self, confirmed: bool | None) -> None:
        if confirmed:
            self.undo()

    @work(group="scans")
    async def undo(self) -> None:
        async with self._deciding:
            result = await self.desk.undo_last()
        self.last_admitted = None
        self.tell(UndoCompleted(result, self.desk.counters(), self.clock()))

    def action_admit_by_hand(self) -> None:
        """From an amber result: admit the holder by hand, with a reason."""
        if isinstance(self.desk, AdmittingByHand) and self.desk.can_admit_by_hand:
            self.push_screen(ManualAdmissionScreen(), self.admit_if_given)
        else:
            self.notify("Only a scan this desk could not decide (amber) can be admitted by hand.")

    def admit_if_given(self, why: str | None) -> None:
        if why is not None and isinstance(self.desk, AdmittingByHand):
            self.admit_by_hand(self.desk, why)

    @work(group="scans")
    async def admit_by_hand(self, desk: AdmittingByHand, why: str) -> None:
        async with self._deciding:
            try:
                result = await desk.admit_by_hand(why)
            except DeskNotReady as problem:
                self.failed(problem)
                return
        self.decided(result, "manual")

    def action_search(self) -> None:
        self.push_screen(SearchScreen(self.desk), self.check_in_match)

    def check_in_match(self, ticket_id: str | None) -> None:
        """A ticket picked in the search is checked in by its id, decided like a scanned one."""
        if ticket_id is not None and isinstance(self.desk, Searching):
            self.check_in_searched(self.desk, ticket_id)

    @work(group="scans")
    async def check_in_searched(self, desk: Searching, ticket_id: str) -> None:
        async with self._deciding:
            try:
                result = await desk.check_in_searched(ticket_id, self.desk.direction)
            except (DeskNotReady, DeviceRevokedError) as problem:
                self.failed(problem)
                return
        self.decided(result, "manual")

    # The sound.

    def cue(self, verdict: Verdict) -> None:
        """The verdict's sound: the configured sound command, else the verdict's bells; nothing
        when sound is off."""
        settings = self.desk.settings
        if not settings.sound:
            return
        if settings.sound_command:
            self.play(settings.sound_command, verdict)
        else:
            self.ring(verdict)

    @work(group="sound", exit_on_error=False)
    async def ring(self, verdict: Verdict) -> None:
        for n in range(BELLS[verdict]):
            if n:
                await asyncio.sleep(BELL_GAP_S)
            self.bell()

    @work(thread=True, group="sound", exit_on_error=False)
    def play(self, command: str, verdict: Verdict) -> None:
        """The sound command; when it cannot play (no player, no audio device: it fails or exits
        non-zero) the bells ring instead, without a word on the screen."""
        try:
            played = (
                subprocess.run(  # noqa: S603 - the desk's own configured command
                    [*shlex.split(command), verdict.value],
                    check=False,
                    timeout=SOUND_TIMEOUT_S,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ).returncode
                == 0
            )
        except (OSError, subprocess.SubprocessError):
            played = False
        if not played:
            self.call_from_thread(self.ring, verdict)

    # Sync and status.

    @work(group="sync")
    async def sync_forever(self) -> None:
        await self.desk.run_sync_forever(self.stop)
        if not self.desk.enrolled:
            # Revoked by the organizer: the core wiped the desk; it has to be enrolled again (the
            # setup screen says so in one line, texts.REVOKED).
            self.scanning = None
            self.show_desk_name()
            while len(self.screen_stack) > 1:
                await self.pop_screen()
            await self.push_screen(SetupScreen(self.desk))

    @work(exclusive=True, group="sync-now")
    async def action_sync_now(self) -> None:
        try:
            await self.desk.sync_once()
        except DeviceRevokedError:
            return  # the sync loop notices and goes back to setup
        self.show_status()

    def show_status(self) -> None:
        """Every status line on every screen; the messages when a sync completed or the
        connection changed since the last look."""
        status = self.desk.status()
        now = self.clock()
        chosen = self.desk.selected_list is not None
        for screen in self.screen_stack:
            for bar in screen.query(StatusBar):
                bar.show(status, now, chosen=chosen)
        seen = (status.last_sync_ms, status.online)
        if self._seen is not None and seen[0] != self._seen[0]:
            self.tell(SyncCompleted(status))
        if self._seen is not None and seen[1] != self._seen[1]:
            self.tell(ConnectionChanged(status))
        self._seen = seen

    # The camera.

    @work(group="camera", exit_on_error=False)
    async def watch_camera(self, spec: str) -> None:
        try:
            source = await asyncio.to_thread(open_source, spec)
            decoder = make_decoder(self.desk.settings.decoder)
        except (FrameSourceError, DecoderUnavailable) as problem:
            self.notify(str(problem), title="Camera", severity="error", timeout=30)
            return
        if source is None:
            self.notify(f"No camera at {spec}: scan with the hand scanner.", title="Camera", timeout=30)
            return

        async def code_seen(text: str) -> None:
            self.post_message(CodeScanned(text, "camera"))

        async def unread() -> None:
            self.notify(texts.HOLD_STEADY, title="Camera", timeout=3)

        try:
            await watch(source, decoder, code_seen, self.stop, on_unread=unread)
        finally:
            source.close()

"""The scanning screen: direction and place on top, the result in the middle, the counts and the
sync status below. A keyboard-wedge scanner works here without clicking anywhere first."""

from __future__ import annotations

import time

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header

from scanner_app.ui.desk import Desk
from scanner_app.ui.messages import (
    DirectionChanged,
    ScanDecided,
    ScanFailed,
    SyncCompleted,
    UndoCompleted,
)
from scanner_app.ui.wedge import WEDGE_FLUSH_S, wedge_code, wedge_detector, wedge_message
from scanner_app.ui.widgets.counters import CountersPanel
from scanner_app.ui.widgets.direction import DirectionBar
from scanner_app.ui.widgets.result import ResultPanel
from scanner_app.ui.widgets.status import StatusBar


class ScanningScreen(Screen[None]):
    """Its keys run the app's actions: the work behind them is the app's."""

    BINDINGS = [
        Binding("f2", "app.toggle_direction", "In/out"),
        Binding("f3", "app.search", "Find"),
        Binding("f4", "app.undo", "Undo"),
        Binding("f5", "app.sync_now", "Sync"),
        Binding("f6", "app.conflicts", "Conflicts"),
        Binding("f7", "app.admit_by_hand", "Admit"),
        Binding("f9", "app.setup", "List"),
    ]

    def __init__(self, desk: Desk) -> None:
        super().__init__()
        self.desk = desk
        self.wedge = wedge_detector(desk.settings)

    def compose(self) -> ComposeResult:
        yield Header()
        yield DirectionBar()
        yield ResultPanel(self.desk.settings.clear_after_seconds)
        yield CountersPanel()
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.show_place()
        self.set_interval(WEDGE_FLUSH_S, self.flush_wedge)

    def flush_wedge(self) -> None:
        """A scanner that stopped before its terminator sent a fragment: say so."""
        read = self.wedge.flush(time.monotonic())
        if read is not None:
            self.post_message(wedge_message(read, self.app))

    def show_place(self) -> None:
        """The direction, list and gate as the desk has them, and the counts."""
        desk = self.desk
        self.query_one(DirectionBar).show(desk.direction, desk.selected_list, desk.gate)
        self.query_one(CountersPanel).show(desk.counters())

    def list_changed(self) -> None:
        """Another list or gate: the last result was for the old one, so it goes."""
        self.show_place()
        self.query_one(ResultPanel).ready()

    def on_key(self, event: events.Key) -> None:
        read = wedge_code(self.wedge, event)
        if read is not None:
            event.stop()
            self.post_message(wedge_message(read, self.app))

    @on(ScanDecided)
    def show_decision(self, message: ScanDecided) -> None:
        self.query_one(ResultPanel).show_result(message.result, message.at_ms)
        self.query_one(CountersPanel).show(message.counters)

    @on(ScanFailed)
    def show_failure(self, message: ScanFailed) -> None:
        self.query_one(ResultPanel).show_problem("Cannot check this ticket", message.problem, message.at_ms)

    @on(UndoCompleted)
    def show_undo(self, message: UndoCompleted) -> None:
        panel = self.query_one(ResultPanel)
        if message.result is None:
            panel.show_problem(
                "Nothing to undo", "This desk has no check-in left to take back.", message.at_ms
            )
        else:
            panel.show_undo(message.result, message.at_ms)
        self.query_one(CountersPanel).show(message.counters)

    @on(DirectionChanged)
    @on(SyncCompleted)
    def show_door(self) -> None:
        self.show_place()

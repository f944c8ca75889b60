"""Asking before an admission is taken back: F4 again undoes it, Escape keeps it. A scan that comes
in meanwhile closes the question and is decided as usual."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from scanner_app.core.desk import ScanResult
from scanner_app.core.wedge import WedgeDetector
from scanner_app.ui.wedge import wedge_code, wedge_message
from scanner_app.ui.widgets.result import who
from sync.checkin import Direction


def question(last: ScanResult | None) -> str:
    if last is None:
        return "Take back this desk's last admission?"
    what = "check-in" if last.direction is Direction.ENTRY else "check-out"
    return f"Take back the last {what}: {who(last) or 'this ticket'}?"


class UndoScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    UndoScreen { align: center middle; }
    UndoScreen > Vertical { width: 70; height: auto; padding: 1 2; background: #ffb300; color: #000000; }
    UndoScreen Static { width: 100%; text-align: center; }
    UndoScreen #question { text-style: bold; }
    """
    BINDINGS = [
        Binding("f4", "undo", "Undo it"),
        Binding("escape", "keep", "Keep it"),
    ]

    def __init__(self, last: ScanResult | None) -> None:
        super().__init__()
        self.last = last
        self.wedge = WedgeDetector()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(question(self.last), id="question", markup=False)
            yield Static("F4: undo it    Esc: keep it", markup=False)
        yield Footer()

    def on_key(self, event: events.Key) -> None:
        read = wedge_code(self.wedge, event)
        if read is not None:
            event.stop()
            self.app.post_message(wedge_message(read, self.app))
            self.dismiss(False)

    def action_undo(self) -> None:
        self.dismiss(True)

    def action_keep(self) -> None:
        self.dismiss(False)

"""Admitting by hand the holder of a pass the desk could not decide (amber): door staff type why in
a few words (Enter admits, Escape does not). The admission is a check-in record marked manual."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from sync.records import MANUAL_REASON_CHARS


class ManualAdmissionScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ManualAdmissionScreen { align: center middle; }
    ManualAdmissionScreen > Vertical {
        width: 70; height: auto; padding: 1 2; background: #ffb300; color: #000000;
    }
    ManualAdmissionScreen Static { width: 100%; text-align: center; text-style: bold; }
    """
    BINDINGS = [Binding("escape", "cancel", "Do not admit")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Admit by hand: why? (no names)", markup=False)
            yield Input(
                value="booking checked by hand",
                max_length=MANUAL_REASON_CHARS,
                id="why",
                select_on_focus=True,
            )
        yield Footer()

    def on_input_submitted(self, submitted: Input.Submitted) -> None:
        self.dismiss(submitted.value)

    def action_cancel(self) -> None:
        self.dismiss(None)

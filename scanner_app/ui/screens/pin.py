"""Asking for the desk PIN at start, when the desk's credential is sealed with one."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class PinScreen(ModalScreen[str]):
    """Answers the PIN typed (checked by opening the desk; a wrong one asks again)."""

    DEFAULT_CSS = """
    PinScreen { align: center middle; }
    PinScreen > Vertical { width: 60; height: auto; padding: 1 2; background: $panel; }
    PinScreen #problem { color: $error; text-style: bold; }
    """

    def __init__(self, problem: str = "") -> None:
        super().__init__()
        self.problem = problem

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("This desk is locked: type its PIN, then Enter")
            yield Input(password=True, id="pin")
            yield Static(self.problem, id="problem", markup=False)

    def on_mount(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Input.Submitted, "#pin")
    def unlock(self, submitted: Input.Submitted) -> None:
        if submitted.value:
            self.dismiss(submitted.value)

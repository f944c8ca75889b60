"""Asking for a PIN: the desk PIN at start, when the desk's credential is sealed with one, or the
kiosk PIN before a guarded action (changing the list or gate, undo, the desk's setup)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

LOCKED = "This desk is locked: type its PIN, then Enter"
KIOSK = "Door staff only: type the kiosk PIN, then Enter (Esc: back)"


class PinScreen(ModalScreen[str | None]):
    """Answers the PIN typed (checked by the caller; a wrong desk PIN asks again), or None when
    ``can_cancel`` and Escape was pressed."""

    DEFAULT_CSS = """
    PinScreen { align: center middle; }
    PinScreen > Vertical { width: 66; height: auto; padding: 1 2; background: $panel; }
    PinScreen #problem { color: $error; text-style: bold; }
    """
    BINDINGS = [Binding("escape", "cancel", "Back")]

    def __init__(self, problem: str = "", *, prompt: str = LOCKED, can_cancel: bool = False) -> None:
        super().__init__()
        self.problem = problem
        self.prompt = prompt
        self.can_cancel = can_cancel

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.prompt)
            yield Input(password=True, id="pin")
            yield Static(self.problem, id="problem", markup=False)

    def on_mount(self) -> None:
        self.query_one("#pin", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "cancel" or self.can_cancel

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#pin")
    def unlock(self, submitted: Input.Submitted) -> None:
        if submitted.value:
            self.dismiss(submitted.value)

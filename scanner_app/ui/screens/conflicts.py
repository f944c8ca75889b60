"""The conflicts this desk's records show (two admissions of one ticket, an old copy of a
transferred ticket let in, ...): what happened, at which list, which desks, when. The organizer
resolves them; door staff read them here to tell the organizer, or to look out for the guest."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

from scanner_app.core.desk import DeskConflictRow
from scanner_app.core.texts import clock


def describe(row: DeskConflictRow) -> str:
    """Two lines that wrap within the screen: ``19:02  Admitted twice · Main entrance`` and the desks."""
    at = "--:--" if row.at_ms is None else clock(row.at_ms)
    return f"{at}  {row.what} · {row.list_name}\n       by {', '.join(row.desks)}"


class ConflictsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ConflictsScreen { align: center middle; }
    ConflictsScreen > VerticalScroll {
        width: 100%; max-width: 100; height: 1fr; padding: 0 1; background: $panel;
    }
    ConflictsScreen .title { text-style: bold; }
    ConflictsScreen .hint { color: $text-muted; margin-bottom: 1; }
    ConflictsScreen .conflict { margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape,f6", "close", "Back to scanning")]

    def __init__(self, rows: list[DeskConflictRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label(f"Conflicts seen by this desk: {len(self.rows)}", classes="title")
            yield Static(
                "The organizer sees them too and decides. Tell them if a guest is involved.",
                classes="hint",
            )
            if not self.rows:
                yield Static("None: every desk's scans agree.", classes="conflict")
            for row in self.rows:
                yield Static(describe(row), classes="conflict", markup=False)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)

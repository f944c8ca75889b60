"""The door's counts in large digits: admitted at this desk, inside now, and tickets on the list."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Label

from scanner_app.core.desk import Counters

FIELDS = (
    ("admitted_here", "Admitted here"),
    ("inside_now", "Inside now"),
    ("total_admissible", "Tickets on the list"),
)


class CountersPanel(Horizontal):
    DEFAULT_CSS = """
    CountersPanel { height: 5; background: $boost; }
    CountersPanel > Vertical { width: 1fr; height: 5; }
    CountersPanel Label { width: 100%; text-align: center; color: $text-muted; }
    CountersPanel Digits { width: 100%; text-align: center; }
    """

    def compose(self) -> ComposeResult:
        for field, label in FIELDS:
            with Vertical():
                yield Label(label)
                yield Digits("0", id=field)

    def show(self, counters: Counters) -> None:
        for field, _ in FIELDS:
            self.query_one(f"#{field}", Digits).update(str(getattr(counters, field)))

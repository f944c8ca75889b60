"""The line above the result: checking people in or out (switch with F2), at which list and gate.
Exit mode has its own colour, so nobody checks people out by mistake."""

from __future__ import annotations

from textual.widgets import Static

from scanner_app.core.ports import ListInfo
from sync.checkin import Direction


def place(chosen: ListInfo | None, gate: str | None) -> str:
    name = chosen.name if chosen is not None else "no check-in list chosen"
    return f"{name} · {gate}" if gate else name


class DirectionBar(Static):
    DEFAULT_CSS = """
    DirectionBar {
        height: 1; width: 100%; padding: 0 1; text-style: bold; background: #0b7a33; color: #ffffff;
    }
    DirectionBar.-exit { background: #5b2a86; }
    """

    def __init__(self) -> None:
        super().__init__("", markup=False)

    def show(self, direction: Direction, chosen: ListInfo | None, gate: str | None) -> None:
        mode = "CHECKING IN  ▶" if direction is Direction.ENTRY else "CHECKING OUT ◀"
        self.update(f"{mode}   {place(chosen, gate)}")
        self.set_class(direction is Direction.EXIT, "-exit")

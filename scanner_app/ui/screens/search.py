"""Manual search: find a guest's ticket by name or ticket number and check it in by hand.

The desk's offline data opens a ticket's entry only with that ticket's pass, so searching by name
asks the server: online only. The server answers no passes: the chosen match is checked in by its
ticket id (``checkInSearchedTicket``), decided like a scan of its pass."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from scanner_app.core.desk import DeskNotReady, FoundTicket
from scanner_app.core.ports import DeviceRevokedError, ServerRefused, ServerUnreachable
from scanner_app.ui.desk import Desk, Searching
from scanner_app.ui.messages import SearchAnswered, SearchFailed

MIN_QUERY = 2
NEEDS_SERVER = "Search needs the server"


def describe(match: FoundTicket) -> str:
    parts = [match.display_name or "(no name)", match.tier_title, f"ticket {match.ticket_number}"]
    line = " · ".join(part for part in parts if part)
    state = match.door_state if match.status == "active" else f"{match.status}, {match.door_state}"
    return f"{line} ({state})"


class SearchScreen(ModalScreen[str | None]):
    """Answers the id of the ticket to check in, or None."""

    DEFAULT_CSS = """
    SearchScreen { align: center middle; }
    SearchScreen > Vertical { width: 90%; height: 80%; padding: 1 2; background: $panel; }
    SearchScreen #note { color: $text-muted; margin-bottom: 1; }
    SearchScreen #note.-problem { color: $error; text-style: bold; }
    SearchScreen OptionList { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, desk: Desk) -> None:
        super().__init__()
        self.desk = desk

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Find a ticket by the guest's name or the ticket number")
            yield Input(placeholder="Name or start of the ticket number, then Enter", id="query")
            yield Static("Search needs the server: it works while the desk is online.", id="note")
            yield OptionList(id="matches")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#query", Input).focus()

    def note(self, text: str, *, problem: bool = False) -> None:
        note = self.query_one("#note", Static)
        note.update(text)
        note.set_class(problem, "-problem")

    @on(Input.Submitted, "#query")
    def look_up(self, submitted: Input.Submitted) -> None:
        query = submitted.value.strip()
        if len(query) < MIN_QUERY:
            self.note(f"Type at least {MIN_QUERY} characters.", problem=True)
            return
        self.note("Searching…")
        self.search(query)

    @work(exclusive=True, group="search")
    async def search(self, query: str) -> None:
        desk = self.desk
        if not isinstance(desk, Searching):
            self.post_message(SearchFailed(query, f"{NEEDS_SERVER}."))
            return
        if not desk.status().online:
            self.post_message(SearchFailed(query, f"{NEEDS_SERVER}, and this desk cannot reach it now."))
            return
        try:
            matches = await desk.search(query)
        except (ServerUnreachable, ServerRefused, DeskNotReady, DeviceRevokedError) as problem:
            self.post_message(SearchFailed(query, f"{NEEDS_SERVER}: {problem}"))
            return
        self.post_message(SearchAnswered(query, matches))

    @on(SearchFailed)
    def show_failure(self, message: SearchFailed) -> None:
        self.note(message.problem, problem=True)

    @on(SearchAnswered)
    def show_matches(self, message: SearchAnswered) -> None:
        options = self.query_one("#matches", OptionList)
        options.clear_options()
        options.add_options(Option(describe(match), id=match.ticket_id) for match in message.matches)
        if not message.matches:
            self.note(f"No ticket matches “{message.query}”.")
            return
        self.note("Choose the ticket with the arrow keys and press Enter to check it in.")
        options.action_first()
        options.focus()

    @on(OptionList.OptionSelected, "#matches")
    def check_in(self, selected: OptionList.OptionSelected) -> None:
        self.dismiss(selected.option.id)

    def action_close(self) -> None:
        self.dismiss(None)

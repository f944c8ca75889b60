"""The setup screen: enroll the desk with the organizer's code (typed, or scanned as
``tickets-enroll:<code>@<server>``), then choose the check-in list and name the gate. The status
line shows how fresh the desk's offline data is."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from scanner_app.core.desk import ENROLL_PREFIX, DeskNotReady, EnrollmentFailed
from scanner_app.ui.desk import Desk
from scanner_app.ui.messages import Enrolled, EnrollmentRefused, ListSelected
from scanner_app.ui.widgets.status import StatusBar


class SetupScreen(Screen[None]):
    BINDINGS = [Binding("escape", "back", "Back to scanning")]
    DEFAULT_CSS = """
    SetupScreen VerticalScroll { padding: 1 2; }
    SetupScreen .title { text-style: bold; margin-top: 1; }
    SetupScreen .hint { color: $text-muted; }
    SetupScreen Input { margin-bottom: 1; }
    SetupScreen #problem { color: $error; text-style: bold; }
    SetupScreen OptionList { height: auto; max-height: 8; margin-bottom: 1; }
    """

    def __init__(self, desk: Desk, *, back: bool = False) -> None:
        """``back``: a scanning screen is underneath, to go back to without a change."""
        super().__init__()
        self.desk = desk
        self.back = back

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            with Vertical(id="enroll"):
                yield Label("Enroll this desk", classes="title")
                yield Static(
                    "Type the enrollment code the organizer gave you and the server address, "
                    "or scan the enrollment QR code.",
                    classes="hint",
                )
                yield Input(placeholder="Enrollment code, or scan the QR code", id="code")
                yield Input(placeholder="Server address, like https://tickets.example.org", id="server")
                yield Input(placeholder="Name of this desk, like North door", id="device-name")
                yield Button("Enroll", id="enroll-button", variant="primary")
            yield Static("", id="problem", markup=False)
            with Vertical(id="choose"):
                yield Static("", id="enrolled-as", markup=False)
                yield Label("Check-in list", classes="title")
                yield OptionList(id="lists")
                yield Label("Gate", classes="title")
                yield Input(placeholder="Name of this gate or door (optional)", id="gate")
                yield Button("Start scanning", id="start", variant="success")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.show_desk()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "back" or self.back

    def action_back(self) -> None:
        self.dismiss()

    def show_desk(self) -> None:
        """The enrollment form, or (once enrolled) the desk's lists with its current choice."""
        desk = self.desk
        enrolled = desk.enrolled
        self.query_one("#enroll").display = not enrolled
        self.query_one("#choose").display = enrolled
        self.query_one(StatusBar).display = enrolled
        if not enrolled:
            # A desk the organizer revoked was wiped by the core; the core says so.
            self.query_one("#problem", Static).update(desk.status().problem or "")
            self.query_one("#code", Input).focus()
            return
        if desk.enrollment is not None:
            self.query_one("#enrolled-as", Static).update(
                f"Enrolled as {desk.enrollment.device_name} with {desk.enrollment.server_url}"
            )
        options = self.query_one("#lists", OptionList)
        options.clear_options()
        options.add_options(Option(item.name, id=item.id) for item in desk.lists)
        chosen = desk.selected_list
        options.highlighted = next((n for n, item in enumerate(desk.lists) if item == chosen), 0)
        self.query_one("#gate", Input).value = desk.gate or ""
        options.focus()

    def scanned(self, text: str) -> None:
        """A code from the camera: an enrollment QR code fills the form and enrolls."""
        if text.startswith(ENROLL_PREFIX) and not self.desk.enrolled:
            self.query_one("#code", Input).value = text
            self.enroll()

    @on(Input.Submitted, "#enroll Input")
    @on(Button.Pressed, "#enroll-button")
    def enroll(self) -> None:
        code = self.query_one("#code", Input).value.strip()
        server = self.query_one("#server", Input).value.strip()
        if not code:
            self.query_one("#code", Input).focus()
            return
        if not server and not code.startswith(ENROLL_PREFIX):
            self.query_one("#server", Input).focus()
            return
        name = self.query_one("#device-name", Input).value.strip() or None
        self.query_one("#problem", Static).update("Enrolling…")
        self.redeem(server, code, name)

    @work(exclusive=True, group="setup")
    async def redeem(self, server: str, code: str, name: str | None) -> None:
        desk = self.desk
        try:
            await desk.enroll(server, code, name)
        except EnrollmentFailed as failed:
            self.post_message(EnrollmentRefused(str(failed)))
            return
        self.post_message(Enrolled(desk.lists))

    @on(EnrollmentRefused)
    def show_refusal(self, message: EnrollmentRefused) -> None:
        self.query_one("#problem", Static).update(f"Enrollment failed: {message.problem}")

    @on(Enrolled)
    def show_lists(self) -> None:
        self.query_one("#problem", Static).update("")
        self.show_desk()

    @on(OptionList.OptionSelected)
    def to_gate(self) -> None:
        self.query_one("#gate", Input).focus()

    @on(Input.Submitted, "#gate")
    @on(Button.Pressed, "#start")
    def start(self) -> None:
        highlighted = self.query_one("#lists", OptionList).highlighted_option
        if highlighted is None or highlighted.id is None:
            self.query_one("#problem", Static).update("Choose a check-in list first.")
            return
        gate = self.query_one("#gate", Input).value.strip() or None
        self.choose(highlighted.id, gate)

    @work(exclusive=True, group="setup")
    async def choose(self, list_id: str, gate: str | None) -> None:
        desk = self.desk
        try:
            await desk.select_list(list_id, gate)
        except DeskNotReady as problem:
            self.query_one("#problem", Static).update(str(problem))
            return
        chosen = desk.selected_list
        if chosen is not None:
            self.post_message(ListSelected(chosen, desk.gate))

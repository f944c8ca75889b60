"""The result panel: the whole middle of the scanning screen turns green (admit), purple (exit), red
or amber, with the verdict in block letters, the reason in plain words, who the ticket belongs to,
(for a second entry) when and where the ticket was first admitted, and when and how it was decided.
It goes back to "Scan a ticket" after ``clear_after`` seconds (0: it stays until the next scan)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from scanner_app.core import texts
from scanner_app.core.desk import ScanResult
from scanner_app.core.texts import clock
from scanner_app.ui.widgets.banner import banner
from sync.checkin import Direction, Verdict

TONES = ("-idle", "-admit", "-exit", "-refuse", "-attention")
READY = "Scan a ticket"


class VerdictBanner(Widget):
    """The verdict word in block letters, or plainly when the panel is too narrow for them."""

    DEFAULT_CSS = """
    VerdictBanner { height: 5; width: 100%; text-align: center; text-style: bold; }
    """

    word: reactive[str] = reactive("", layout=True)

    def render(self) -> str:
        rows = banner(self.word)
        if rows is None or len(rows[0]) > self.size.width:
            return f"\n\n{self.word}"
        return "\n".join(rows)


def verdict_word(result: ScanResult) -> str:
    if result.verdict is Verdict.ADMIT:
        return "ADMIT" if result.direction is Direction.ENTRY else "EXIT"
    return result.verdict.value.upper()


def tone(result: ScanResult) -> str:
    """The panel's colour: an exit is not an admission, and looks different."""
    if result.verdict is Verdict.ADMIT and result.direction is Direction.EXIT:
        return "-exit"
    return f"-{result.verdict.value}"


def when(at_ms: int) -> str:
    return f"at {clock(at_ms, seconds=True)}"


def who(result: ScanResult) -> str:
    """``Ada Lovelace · VIP · ticket 7K3-QX9``, from what is known of the ticket."""
    parts = [
        result.display_name,
        result.tier_title,
        f"ticket {result.ticket_number}" if result.ticket_number else None,
    ]
    return " · ".join(part for part in parts if part)


class ResultPanel(Vertical):
    """Shows one decision until the next, or until it clears after ``clear_after`` seconds."""

    DEFAULT_CSS = """
    ResultPanel { height: 1fr; padding: 1 2; align: center middle; }
    ResultPanel > Static { width: 100%; text-align: center; }
    ResultPanel #headline { text-style: bold; margin-top: 1; }
    ResultPanel #attendee { text-style: bold; }
    ResultPanel.-idle { background: $panel; color: $text-muted; }
    ResultPanel.-admit { background: #0b7a33; color: #ffffff; }
    ResultPanel.-exit { background: #5b2a86; color: #ffffff; }
    ResultPanel.-refuse { background: #b00020; color: #ffffff; }
    ResultPanel.-attention { background: #ffb300; color: #000000; }
    """

    def __init__(self, clear_after: float = 0) -> None:
        super().__init__()
        self.clear_after = clear_after
        self._clearing: Timer | None = None

    def compose(self) -> ComposeResult:
        yield VerdictBanner(id="verdict")
        yield Static(READY, id="headline", markup=False)
        yield Static("", id="attendee", markup=False)
        yield Static("", id="detail", markup=False)
        yield Static("", id="how", markup=False)

    def on_mount(self) -> None:
        self._tone("-idle")

    def _tone(self, tone: str) -> None:
        self.remove_class(*TONES)
        self.add_class(tone)

    def ready(self) -> None:
        """Back to the empty panel: ready for the next scan."""
        self._set("-idle", "", READY, "", "", "")

    def _show(self, tone: str, word: str, headline: str, attendee: str, detail: str, how: str) -> None:
        self._set(tone, word, headline, attendee, detail, how)
        if self.clear_after > 0:
            self._clearing = self.set_timer(self.clear_after, self.ready)

    def _set(self, tone: str, word: str, headline: str, attendee: str, detail: str, how: str) -> None:
        if self._clearing is not None:
            self._clearing.stop()
            self._clearing = None
        self._tone(tone)
        self.query_one(VerdictBanner).word = word
        lines = {"headline": headline, "attendee": attendee, "detail": detail, "how": how}
        for widget_id, text in lines.items():
            self.query_one(f"#{widget_id}", Static).update(text)

    def show_result(self, result: ScanResult, at_ms: int) -> None:
        """``at_ms``: when the desk had the decision (wall time)."""
        how = texts.DECIDED_BY[result.decided_by]
        # An admission's detail is the tier and ticket number, already in the line above.
        detail = "" if result.verdict is Verdict.ADMIT else result.detail
        self._show(
            tone(result),
            verdict_word(result),
            result.headline,
            who(result),
            detail,
            f"{how} {when(at_ms)} · {result.latency_ms:.0f} ms",
        )

    def show_undo(self, result: ScanResult, at_ms: int) -> None:
        self._show("-attention", "UNDONE", result.headline, who(result), result.detail, when(at_ms))

    def show_problem(self, headline: str, detail: str, at_ms: int) -> None:
        """A scan that could not be decided, or an undo with nothing to take back."""
        self._show("-attention", "ATTENTION", headline, "", detail, when(at_ms))

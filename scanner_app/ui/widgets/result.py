"""The result panel: the whole middle of the scanning screen turns green, red or amber, with the
verdict in block letters, the reason in plain words, who the ticket belongs to, and (for a second
entry) when and where the ticket was first admitted. It stays until the next scan."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from scanner_app.core import texts
from scanner_app.core.desk import ScanResult
from scanner_app.ui.widgets.banner import banner
from sync.checkin import Direction, Verdict

TONES = ("-idle", "-admit", "-refuse", "-attention")


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


def who(result: ScanResult) -> str:
    """``Ada Lovelace · VIP · ticket 7K3-QX9``, from what is known of the ticket."""
    parts = [
        result.display_name,
        result.tier_title,
        f"ticket {result.ticket_number}" if result.ticket_number else None,
    ]
    return " · ".join(part for part in parts if part)


class ResultPanel(Vertical):
    """Shows one decision until the next."""

    DEFAULT_CSS = """
    ResultPanel { height: 1fr; padding: 1 2; align: center middle; }
    ResultPanel > Static { width: 100%; text-align: center; }
    ResultPanel #headline { text-style: bold; margin-top: 1; }
    ResultPanel #attendee { text-style: bold; }
    ResultPanel.-idle { background: $panel; color: $text-muted; }
    ResultPanel.-admit { background: #0b7a33; color: #ffffff; }
    ResultPanel.-refuse { background: #b00020; color: #ffffff; }
    ResultPanel.-attention { background: #ffb300; color: #000000; }
    """

    def compose(self) -> ComposeResult:
        yield VerdictBanner(id="verdict")
        yield Static("Scan a ticket", id="headline", markup=False)
        yield Static("", id="attendee", markup=False)
        yield Static("", id="detail", markup=False)
        yield Static("", id="how", markup=False)

    def on_mount(self) -> None:
        self._tone("-idle")

    def _tone(self, tone: str) -> None:
        self.remove_class(*TONES)
        self.add_class(tone)

    def _show(self, tone: str, word: str, headline: str, attendee: str, detail: str, how: str) -> None:
        self._tone(tone)
        self.query_one(VerdictBanner).word = word
        lines = {"headline": headline, "attendee": attendee, "detail": detail, "how": how}
        for widget_id, text in lines.items():
            self.query_one(f"#{widget_id}", Static).update(text)

    def show_result(self, result: ScanResult) -> None:
        how = texts.DECIDED_BY[result.decided_by]
        # An admission's detail is the tier and ticket number, already in the line above.
        detail = "" if result.verdict is Verdict.ADMIT else result.detail
        self._show(
            f"-{result.verdict.value}",
            verdict_word(result),
            result.headline,
            who(result),
            detail,
            f"{how} · {result.latency_ms:.0f} ms",
        )

    def show_undo(self, result: ScanResult) -> None:
        self._show("-attention", "UNDONE", result.headline, who(result), result.detail, "")

    def show_problem(self, headline: str, detail: str) -> None:
        """A scan that could not be decided, or an undo with nothing to take back."""
        self._show("-attention", "ATTENTION", headline, "", detail, "")

"""Keyboard-wedge scanning without a focused field: a screen hands its keys here, and the core's
:class:`WedgeDetector` buffers them until the scanner's terminator and tells a scan from people
typing."""

from __future__ import annotations

from textual import events
from textual.app import App

from scanner_app.core import texts
from scanner_app.core.config import ScannerSettings
from scanner_app.core.wedge import TERMINATORS, WedgeDetector, WedgeRead
from scanner_app.io.system import SYSTEM_DESK_CLOCK
from scanner_app.ui.messages import CodeScanned, ScanFailed

_KEYS = {"enter": "\r", "tab": "\t"}
WEDGE_FLUSH_S = 0.25  # how often a screen looks for a code left without its terminator


def wedge_key(event: events.Key) -> str | None:
    """What a wedge scanner typed: a printable character, ``"\\r"`` for Enter, ``"\\t"`` for Tab."""
    if event.key in _KEYS:
        return _KEYS[event.key]
    return event.character if event.is_printable else None


def wedge_detector(settings: ScannerSettings) -> WedgeDetector:
    """The detector for the desk's scanner, as its settings describe it."""
    return WedgeDetector(
        terminators=TERMINATORS[settings.wedge_terminator],
        prefix=settings.wedge_prefix,
        suffix=settings.wedge_suffix,
    )


def wedge_code(detector: WedgeDetector, event: events.Key) -> WedgeRead | None:
    """What the scanner sent when ``event`` ends it."""
    key = wedge_key(event)
    return None if key is None else detector.feed(key, event.time)


def wedge_message(read: WedgeRead, app: App[None]) -> CodeScanned | ScanFailed:
    """A whole code goes to be decided; a fragment is shown in amber, never as a verdict, with the
    time by the app's wall clock (a test's fixed one when it has one)."""
    if read.complete:
        return CodeScanned(read.text, "wedge")
    clock = getattr(app, "clock", SYSTEM_DESK_CLOCK.wall_ms)
    return ScanFailed(texts.INCOMPLETE_SCAN, clock())

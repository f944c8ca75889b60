"""Keyboard-wedge scanning without a focused field: a screen hands its keys here, and the core's
:class:`WedgeDetector` tells a scanner's burst (ending in Enter) from people typing."""

from __future__ import annotations

from textual import events

from scanner_app.core.wedge import WedgeDetector


def wedge_key(event: events.Key) -> str | None:
    """What a wedge scanner typed: a printable character, or ``"\\r"`` for Enter."""
    if event.key == "enter":
        return "\r"
    return event.character if event.is_printable else None


def wedge_code(detector: WedgeDetector, event: events.Key) -> str | None:
    """The scanned code when ``event`` completes one."""
    key = wedge_key(event)
    return None if key is None else detector.feed(key, event.time)

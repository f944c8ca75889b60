"""Keyboard-wedge scanners type the code they read, much faster than anyone types, and press Enter.

:class:`WedgeDetector` is a pure state machine fed one key at a time with its time: a burst of
keys, each within ``max_gap_s`` of the one before, ended by Enter within the same gap, is one code
(if at least ``min_length`` long). Slow human typing never completes a burst; a pause starts a
new one, so a scan that follows stray keys is still read whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENTER = frozenset({"\r", "\n"})
MAX_GAP_S = 0.035  # scanners send a key every few milliseconds; people take 80 ms or more
MIN_LENGTH = 8


@dataclass
class WedgeDetector:
    max_gap_s: float = MAX_GAP_S
    min_length: int = MIN_LENGTH
    _burst: list[str] = field(default_factory=list)
    _last_s: float | None = None

    def feed(self, key: str, at_s: float) -> str | None:
        """One key (a character, or ``"\\r"``/``"\\n"`` for Enter) at ``at_s`` seconds; answers
        the scanned code when this key completes one."""
        fast = self._last_s is not None and at_s - self._last_s <= self.max_gap_s
        self._last_s = at_s
        if key in ENTER:
            code = "".join(self._burst) if fast else ""
            self._burst.clear()
            return code if len(code) >= self.min_length else None
        if not fast:
            self._burst.clear()
        self._burst.append(key)
        return None

    def reset(self) -> None:
        self._burst.clear()
        self._last_s = None

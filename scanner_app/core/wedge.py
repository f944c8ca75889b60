"""Keyboard-wedge scanners type the code they read, much faster than anyone types, then a terminator
(Enter by default; Tab or a configured suffix on some models).

:class:`WedgeDetector` is a pure state machine fed one key at a time with its time. It buffers
until the terminator, so a pause inside a code (the scanner's, the USB bus's, or a stall of the
desk's own process) never splits it, and a code is never merged with the next one. What it reads:

- With a configured ``prefix``, the scan is what follows the last prefix; keys typed before it are
  dropped, and a terminator without a prefix was typed by a person.
- Without one, the rate tells: keys of a scan come within ``max_gap_s`` of each other, so a buffer
  without a single fast gap was typed and is ignored. Keys typed before a scan are dropped when the
  scan comes ``abandon_s`` or more after them (set a prefix on the scanner to drop them always).
- A buffer of fast keys that is never terminated (idle for ``abandon_s``, see :meth:`flush`), or a
  terminated scan shorter than ``min_length``, is a fragment: ``WedgeRead(complete=False)``, which
  the desk shows as "incomplete scan — scan again", never as a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENTER = frozenset({"\r", "\n"})
TAB = frozenset({"\t"})
TERMINATORS = {"enter": ENTER, "tab": TAB}
MAX_GAP_S = 0.035  # scanners send a key every few milliseconds; people take 80 ms or more
ABANDON_S = 1.0  # a code that waits this long for its terminator is not coming whole
MIN_LENGTH = 8


@dataclass(frozen=True, slots=True)
class WedgeRead:
    """What the scanner sent: a whole code, or a fragment to scan again."""

    text: str
    complete: bool


@dataclass
class WedgeDetector:
    max_gap_s: float = MAX_GAP_S
    min_length: int = MIN_LENGTH
    abandon_s: float = ABANDON_S
    terminators: frozenset[str] = ENTER
    prefix: str = ""
    suffix: str = ""
    _keys: list[str] = field(default_factory=list)
    _gaps: list[float] = field(default_factory=list)  # before each key (inf for the first)
    _last_s: float | None = None

    def feed(self, key: str, at_s: float) -> WedgeRead | None:
        """One key (a character, ``"\\r"``/``"\\n"`` for Enter, ``"\\t"`` for Tab) at ``at_s``
        seconds; answers what the scanner sent when this key ends it (or ends a fragment)."""
        abandoned = self.flush(at_s)
        gap = float("inf") if self._last_s is None else at_s - self._last_s
        self._last_s = at_s
        if key in self.terminators:
            return self._ended() or abandoned
        self._keys.append(key)
        self._gaps.append(gap)
        if self.suffix and "".join(self._keys[-len(self.suffix) :]) == self.suffix:
            del self._keys[-len(self.suffix) :], self._gaps[-len(self.suffix) :]
            return self._ended() or abandoned
        return abandoned

    def flush(self, now_s: float) -> WedgeRead | None:
        """Call now and then (the screen does on a timer): a buffer idle for ``abandon_s`` is
        dropped, and answered as a fragment when a scanner typed it."""
        if self._last_s is None or now_s - self._last_s < self.abandon_s or not self._keys:
            return None
        fragment = self._scanned()
        self._clear()
        return None if fragment is None else WedgeRead(fragment, complete=False)

    def reset(self) -> None:
        self._clear()
        self._last_s = None

    def _clear(self) -> None:
        self._keys.clear()
        self._gaps.clear()

    def _ended(self) -> WedgeRead | None:
        code = self._scanned()
        self._clear()
        if code is None:
            return None
        return WedgeRead(code, complete=len(code) >= self.min_length)

    def _scanned(self) -> str | None:
        """The scanned part of the buffer; None when a person typed all of it."""
        text = "".join(self._keys)
        if self.prefix:
            _, found, code = text.rpartition(self.prefix)
            return code if found else None
        return text if any(gap <= self.max_gap_s for gap in self._gaps) else None

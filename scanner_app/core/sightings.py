"""Which codes a camera sees are new, and when to tell the holder to hold the code steady: pure
state machines fed each frame's codes and time (the camera loop, :func:`scanner_app.io.camera.watch`,
feeds them).

A code held in front of the camera is seen in frame after frame, and now and then missed in one;
it is new when it first appears and again only after it has left the view — missing from
``absent_frames`` frames in a row and not seen for ``window_s`` seconds of the source's clock.
"""

from __future__ import annotations

from collections.abc import Iterable

WINDOW_S = 1.0
ABSENT_FRAMES = 5
HINT_AFTER_S = 0.8  # a code in view this long without a read: "hold steady, a little closer"


class SeenFilter:
    """Which codes of a frame are new (pure: fed the codes and the frame's time)."""

    def __init__(self, window_s: float = WINDOW_S, absent_frames: int = ABSENT_FRAMES) -> None:
        self.window_s = window_s
        self.absent_frames = absent_frames
        self._in_view: dict[str, tuple[float, int]] = {}  # code -> (last seen at, frames missed since)

    def feed(self, codes: Iterable[str], at_s: float) -> list[str]:
        present = dict.fromkeys(codes)
        new = [code for code in present if code not in self._in_view]
        for code, (last_seen, missed) in list(self._in_view.items()):
            if code in present:
                continue
            if missed + 1 >= self.absent_frames and at_s - last_seen >= self.window_s:
                del self._in_view[code]
            else:
                self._in_view[code] = (last_seen, missed + 1)
        self._in_view.update(dict.fromkeys(present, (at_s, 0)))
        return new


class UnreadHint:
    """When to tell the holder to hold the code steady (pure: fed each frame's facts): a QR code in
    view (motion blur, a thumb on a finder pattern) that has not decoded for ``after_s`` seconds;
    once until it is read or leaves the view."""

    def __init__(self, after_s: float = HINT_AFTER_S) -> None:
        self.after_s = after_s
        self._since: float | None = None
        self._told = False

    def feed(self, in_view: bool, read: bool, at_s: float) -> bool:
        if read or not in_view:
            self._since, self._told = None, False
            return False
        self._since = at_s if self._since is None else self._since
        if self._told or at_s - self._since < self.after_s:
            return False
        self._told = True
        return True

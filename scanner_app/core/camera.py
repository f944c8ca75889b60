"""The camera loop: read a frame, decode it, decide each code once while it stays in view.

A code held in front of the camera is seen in frame after frame, and now and then missed in one;
it is decided when it first appears and again only after it has left the view — missing from
``absent_frames`` frames in a row and not seen for ``window_s`` seconds of the source's clock.
Reading and decoding run in a worker thread, so the event loop stays free for the screen and sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from scanner_app.core.decoders import Decoder
from scanner_app.core.frames import FrameSource

WINDOW_S = 1.0
ABSENT_FRAMES = 5


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


async def watch(
    source: FrameSource,
    decoder: Decoder,
    on_code: Callable[[str], Awaitable[object]],
    stop: asyncio.Event | None = None,
    seen: SeenFilter | None = None,
) -> int:
    """Feed ``on_code`` each new code until the source runs out or ``stop`` is set; answers how
    many frames were read."""
    seen = seen or SeenFilter()

    def next_codes() -> tuple[float, list[str]] | None:
        frame = source.read()
        return None if frame is None else (frame.at_s, decoder.decode(frame.image))

    frames = 0
    while stop is None or not stop.is_set():
        decoded = await asyncio.to_thread(next_codes)
        if decoded is None:
            break
        frames += 1
        for code in seen.feed(decoded[1], decoded[0]):
            await on_code(code)
    return frames

"""The camera loop: read a frame, decode it, decide each code once while it stays in view
(:class:`~scanner_app.core.sightings.SeenFilter`). Reading and decoding run in a worker thread, so
the event loop stays free for the screen and sync.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from scanner_app.core.sightings import SeenFilter, UnreadHint
from scanner_app.io.decoders import Decoder, qr_in_view
from scanner_app.io.frames import FrameSource, Image


async def watch(
    source: FrameSource,
    decoder: Decoder,
    on_code: Callable[[str], Awaitable[object]],
    stop: asyncio.Event | None = None,
    seen: SeenFilter | None = None,
    on_unread: Callable[[], Awaitable[object]] | None = None,
    in_view: Callable[[Image], bool] = qr_in_view,
) -> int:
    """Feed ``on_code`` each new code until the source runs out or ``stop`` is set; answers how
    many frames were read. ``on_unread``: called when a code in view does not decode for a while
    (:class:`UnreadHint`); frames that decode nothing are then searched for a code (``in_view``)."""
    seen = seen or SeenFilter()
    hint = UnreadHint()

    def next_codes() -> tuple[float, list[str], bool] | None:
        frame = source.read()
        if frame is None:
            return None
        codes = decoder.decode(frame.image)
        return frame.at_s, codes, bool(codes) or (on_unread is not None and in_view(frame.image))

    frames = 0
    while stop is None or not stop.is_set():
        decoded = await asyncio.to_thread(next_codes)
        if decoded is None:
            break
        frames += 1
        at_s, codes, visible = decoded
        for code in seen.feed(codes, at_s):
            await on_code(code)
        if on_unread is not None and hint.feed(visible, bool(codes), at_s):
            await on_unread()
    return frames

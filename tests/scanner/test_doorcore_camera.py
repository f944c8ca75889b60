"""A QR code in the camera's view that does not decode (motion blur, a thumb on a finder pattern)
is said so ("hold steady, a little closer") once it has been unread for a while; frame times are
the source's own clock, so nothing here depends on the machine's speed."""

from __future__ import annotations

import numpy as np

from scanner.desks import Degradation, frame
from scanner_app.core.sightings import HINT_AFTER_S, UnreadHint
from scanner_app.io.camera import watch
from scanner_app.io.decoders import qr_in_view
from scanner_app.io.frames import Frame, Image


def test_the_hint_comes_once_a_code_stays_unread() -> None:
    hint = UnreadHint()
    told = [hint.feed(True, False, n / 10) for n in range(20)]
    assert told.count(True) == 1 and told.index(True) == round(HINT_AFTER_S * 10)
    assert hint.feed(True, True, 2.1) is False  # read at last
    assert [hint.feed(False, False, 3 + n / 10) for n in range(20)] == [False] * 20  # nothing in view


def test_a_blurred_code_is_seen_though_it_does_not_decode() -> None:
    rng = np.random.default_rng(3)
    assert qr_in_view(frame("HELLO-DOOR", rng, Degradation(scale=6, blur=1.0)))
    assert not qr_in_view(frame(None, rng))


class Frames:
    name = "frames"

    def __init__(self, images: list[Image]) -> None:
        self.images = images
        self.at = 0

    def read(self) -> Frame | None:
        if self.at == len(self.images):
            return None
        self.at += 1
        return Frame(self.images[self.at - 1], self.at / 10)

    def close(self) -> None:
        pass


class Blind:
    """A decoder that reads nothing: every code is too blurred for it."""

    name = "blind"

    def decode(self, image: Image) -> list[str]:
        return []


async def test_the_camera_loop_tells_the_desk_once() -> None:
    image = frame("HELLO-DOOR", np.random.default_rng(4))
    hints: list[str] = []

    async def decided(text: str) -> None:
        raise AssertionError(f"nothing decodes here, yet {text!r} was decided")

    async def unread() -> None:
        hints.append("hold steady")

    await watch(Frames([image] * 20), Blind(), decided, on_unread=unread)
    assert hints == ["hold steady"]

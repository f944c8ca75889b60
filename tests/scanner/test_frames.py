"""Frames to codes: real QR codes of real passes (segno), degraded like a webcam at a door, read by
the desk's decoders; frame sources (folder, video file, missing camera); one decision per code while
it stays in view."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanner.desks import Degradation, frame, write_video
from scanner_app.core.sightings import SeenFilter
from scanner_app.io.camera import watch
from scanner_app.io.decoders import DecoderUnavailable, make_decoder
from scanner_app.io.frames import FrameSourceError, open_source
from sync.passes import ListSigningKey, PassPayload, encode_pass

LISTS = [ListSigningKey.from_seed(bytes([seed]) * 32) for seed in (0x31, 0x32)]


def two_list_pass(generation: int) -> str:
    payload = PassPayload("ticket_01kdvdna0004hmasw9nf6yy093", generation, 1767225600)
    return encode_pass(payload, [key.sign(payload) for key in LISTS])


@pytest.mark.parametrize(("decoder", "floor"), [("zxing", 0.95), ("pyzbar", 0.90)])
def test_moderately_degraded_frames_decode(decoder: str, floor: float) -> None:
    """Blur up to 1.5 px, tilt up to 30°, sensor noise, contrast down to 40 %, modules of 4-7 px:
    the default decoder reads at least 95 % of such 1280x720 frames (ZBar, the fallback, 90 %)."""
    rng = np.random.default_rng(20261129)
    read = make_decoder(decoder)  # type: ignore[arg-type]
    tokens = [two_list_pass(n) for n in range(200)]
    found = sum(read.decode(frame(token, rng, Degradation.moderate(rng))) == [token] for token in tokens)
    assert found / len(tokens) >= floor, f"{decoder} read {found} of {len(tokens)}"


def test_an_empty_scene_reads_nothing() -> None:
    rng = np.random.default_rng(1)
    assert make_decoder("zxing").decode(frame(None, rng, Degradation(noise=8))) == []


def test_pyzbar_without_its_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    with pytest.raises(DecoderUnavailable, match="libzbar0"):
        make_decoder("pyzbar")


def test_frame_sources(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "images"
    folder.mkdir()
    for n in range(3):
        cv2.imwrite(str(folder / f"{n:03d}.png"), frame(two_list_pass(n), rng))
    (folder / "notes.txt").write_text("not an image")
    images = open_source(str(folder))
    assert images is not None
    read = [images.read() for _ in range(4)]
    assert [f.at_s for f in read if f is not None] == [0.0, 0.1, 0.2] and read[3] is None
    video = write_video(tmp_path / "door.avi", (frame(two_list_pass(n), rng) for n in range(5)), fps=5)
    source = open_source(str(video))
    assert source is not None
    times = []
    while (got := source.read()) is not None:
        assert got.image.shape == (720, 1280, 3)
        times.append(got.at_s)
    source.close()
    assert len(times) == 5 and times == sorted(times)
    assert open_source("97") is None  # no such camera: not an error
    with pytest.raises(FrameSourceError):
        open_source(str(tmp_path / "missing.avi"))


def test_a_code_in_view_is_decided_once() -> None:
    seen = SeenFilter(window_s=1.0, absent_frames=3)
    assert seen.feed(["A"], 0.0) == ["A"]
    assert seen.feed(["A", "B"], 0.1) == ["B"]
    assert seen.feed([], 0.2) == []  # A and B missed in one frame: still in view
    assert seen.feed(["A"], 0.3) == []
    for n in range(4, 20):  # A leaves: missing from 3 frames, but seen less than a second ago
        assert seen.feed([], n / 10) == []
    assert seen.feed(["A", "B"], 2.0) == ["A", "B"]  # shown again after it left: decided again


async def test_the_camera_loop_decides_each_pass_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    tokens = [two_list_pass(n) for n in range(3)]
    scenes = [tokens[0]] * 6 + [None] * 3 + [tokens[1]] * 6 + [None] * 12 + [tokens[1]] * 4 + [tokens[2]] * 3
    video = write_video(
        tmp_path / "door.avi", (frame(t, rng, Degradation(blur=0.8, noise=4)) for t in scenes)
    )
    source = open_source(str(video))
    assert source is not None
    decided: list[str] = []

    async def decide(text: str) -> None:
        decided.append(text)

    frames = await watch(source, make_decoder("zxing"), decide)
    assert frames == len(scenes)
    assert decided == [tokens[0], tokens[1], tokens[1], tokens[2]]

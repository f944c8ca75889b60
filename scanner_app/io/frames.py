"""Where frames come from: a camera (by index), a video file, or a folder of images — all through
OpenCV, behind one small protocol so the camera loop does not care which."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
from cv2.typing import MatLike

Image = MatLike
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
FOLDER_FRAME_S = 0.1  # a folder is played as a sequence of 10 frames a second
CAMERA_SIZE = (1280, 720)


class FrameSourceError(Exception):
    """A video file or folder that cannot be read."""


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    at_s: float  # the frame's time: the video's own clock, or seconds since the camera opened


class FrameSource(Protocol):
    name: str

    def read(self) -> Frame | None:
        """The next frame; None when the source has no more."""
        ...

    def close(self) -> None: ...


class CaptureSource:
    """A camera or a video file, read with ``cv2.VideoCapture``."""

    def __init__(self, capture: cv2.VideoCapture, name: str, *, live: bool) -> None:
        self.capture = capture
        self.name = name
        self.live = live
        self._count = 0
        self._opened = cv2.getTickCount()

    def read(self) -> Frame | None:
        ok, image = self.capture.read()
        if not ok:
            return None
        self._count += 1
        if self.live:
            at = (cv2.getTickCount() - self._opened) / cv2.getTickFrequency()
        else:
            at = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        return Frame(image, float(at))

    def close(self) -> None:
        self.capture.release()


class FolderSource:
    """The images of a folder, in name order."""

    def __init__(self, folder: Path) -> None:
        self.name = str(folder)
        self._files: Iterator[tuple[int, Path]] = enumerate(
            sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        )

    def read(self) -> Frame | None:
        for number, path in self._files:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return Frame(image, number * FOLDER_FRAME_S)
        return None

    def close(self) -> None:
        self._files = iter(())


def open_source(spec: str) -> FrameSource | None:
    """A camera index (``0``), a video file or a folder of images. None when the camera is not
    there: a desk without a camera still scans with a keyboard wedge. Raises
    :class:`FrameSourceError` for a file or folder that cannot be read."""
    if spec.isdigit():
        camera = cv2.VideoCapture(int(spec))
        if not camera.isOpened():
            camera.release()
            return None
        camera.set(cv2.CAP_PROP_FRAME_WIDTH, CAMERA_SIZE[0])
        camera.set(cv2.CAP_PROP_FRAME_HEIGHT, CAMERA_SIZE[1])
        return CaptureSource(camera, f"camera {spec}", live=True)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path)
    video = cv2.VideoCapture(str(path))
    if not path.is_file() or not video.isOpened():
        video.release()
        raise FrameSourceError(f"cannot read frames from {spec}: not a camera index, video file or folder")
    return CaptureSource(video, path.name, live=False)

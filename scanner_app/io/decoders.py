"""QR decoders: zxing-cpp (the default: a wheel, fast and robust) and ZBar through pyzbar (needs
the system library, Debian's ``libzbar0``).

Both look at a grayscale frame at half size first — smoothing the sensor noise and a little blur
away, and four times fewer pixels — and at full size only when that finds nothing (a small or
distant code)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal, Protocol

import cv2

from scanner_app.io.frames import Image


class DecoderUnavailable(Exception):
    """The chosen decoder cannot run on this machine."""


class Decoder(Protocol):
    name: str

    def decode(self, image: Image) -> list[str]:
        """The texts of the QR codes in a BGR or grayscale frame."""
        ...


def qr_in_view(image: Image) -> bool:
    """A QR code's finder patterns are in the frame (whether or not it decodes)."""
    found, _ = cv2.QRCodeDetector().detect(next(stages(image)))
    return bool(found)


def stages(image: Image) -> Iterator[Image]:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    yield cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    yield gray


class StagedDecoder:
    """A raw decoder (grayscale image -> texts) run on the stages until one finds a code."""

    def __init__(self, name: str, raw: Callable[[Image], list[str]]) -> None:
        self.name = name
        self._raw = raw

    def decode(self, image: Image) -> list[str]:
        for stage in stages(image):
            found = self._raw(stage)
            if found:
                return found
        return []


def zxing() -> Decoder:
    import zxingcpp

    qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

    def raw(gray: Image) -> list[str]:
        return [code.text for code in zxingcpp.read_barcodes(gray, formats=qr)]

    return StagedDecoder("zxing", raw)


def pyzbar() -> Decoder:
    try:
        from pyzbar import pyzbar as zbar
    except ImportError as exc:  # pyzbar raises ImportError when libzbar itself is missing
        raise DecoderUnavailable(
            f"the pyzbar decoder needs the ZBar library (Debian: apt install libzbar0): {exc}"
        ) from None

    def raw(gray: Image) -> list[str]:
        found = zbar.decode(gray, symbols=[zbar.ZBarSymbol.QRCODE])
        return [code.data.decode("utf-8", "replace") for code in found]

    return StagedDecoder("pyzbar", raw)


def make_decoder(name: Literal["zxing", "pyzbar"]) -> Decoder:
    return zxing() if name == "zxing" else pyzbar()

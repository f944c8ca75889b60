"""A local SMTP server (aiosmtpd, in its own thread) that keeps what it receives, and readers of the
messages the service sends: their QR images decoded back to pass tokens."""

from __future__ import annotations

import email
import email.policy
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import zxingcpp
from aiosmtpd.controller import Controller
from PIL import Image


class _Keep:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 OK"


class Mailbox:
    def __init__(self, keep: _Keep, port: int) -> None:
        self._keep, self.port = keep, port

    @property
    def messages(self) -> list[EmailMessage]:
        with self._keep.lock:
            return list(self._keep.messages)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} message(s) arrived, {count} expected")


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    keep = _Keep()
    with socket.socket() as probe:  # a free port (the controller checks it is up by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(keep, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Mailbox(keep, port)
    finally:
        controller.stop()


def smtp_settings(box: Mailbox) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": box.port,
        "smtp_starttls": False,
        "smtp_from": "tickets@tickets.test",
        "mail_poll_interval_seconds": 0.1,
    }


def qr_tokens(message: EmailMessage) -> list[str]:
    """The pass tokens of the message's inline QR images, read back as a scanner would."""
    tokens = []
    for part in message.walk():
        if part.get_content_type() == "image/png":
            image = Image.open(io.BytesIO(part.get_content())).convert("L")
            tokens += [code.text for code in zxingcpp.read_barcodes(image)]
    return tokens


def attachment(message: EmailMessage, content_type: str) -> str | None:
    for part in message.walk():
        if part.get_content_type() == content_type and part.get_filename():
            content: bytes | str = part.get_content()
            return content.decode() if isinstance(content, bytes) else content
    return None


def eml_files(folder: Path) -> list[EmailMessage]:
    out = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        out.append(message)
    return out

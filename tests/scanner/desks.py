"""Support for the desk scanner's tests: an event with sold tickets on the real server, enrolled
desks on the scanner's real core, and passes as camera frames (segno QR codes in 1280x720 images,
degraded like a phone held up to a webcam)."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import segno
from conftest import Harness
from sqlalchemy import select
from support.broker import FakeBroker, new_payment_id
from support.catalog import ORGANIZER, active_event
from support.server import LiveServer

from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import DeskCore
from scanner_app.io.system import SYSTEM_DESK_CLOCK
from scanner_app.start import open_desk
from server.db.engine import Database
from server.db.models import CheckInRecord as Row
from server.domain.devices import service as devices

BROKER = FakeBroker()
FRAME_SIZE = (1280, 720)
SCANNER = Path(sys.executable).with_name("tickets-scanner")


@dataclass
class Sale:
    event: dict[str, Any]
    tiers: dict[str, str]  # title -> tier id
    tickets: list[dict[str, Any]]  # as listBuyerTickets answers, pass included
    main_list: str  # the event's default check-in list (admits every tier)
    payments: list[str]

    def ticket(self, n: int) -> dict[str, Any]:
        return self.tickets[n]

    def token(self, n: int) -> str:
        return str(self.tickets[n]["passToken"])


async def sell(h: Harness, quantity: int, *, tiers: Iterable[str] = ("GA",)) -> Sale:
    """An active event with the given tiers and ``quantity`` paid tickets of each (attendees
    named ``<tier> <n>``)."""
    event = await active_event(h.app)
    tier_ids: dict[str, str] = {}
    tickets: list[dict[str, Any]] = []
    payments: list[str] = []
    for title in tiers:
        tier = await h.app.ok(
            "createTicketTier",
            {
                "organizerDid": ORGANIZER,
                "event": {"uri": event["uri"]},
                "title": title,
                "currency": "eur",
                "unitAmount": 1500,
                "quantityTotal": max(100, quantity),
                "maxPerOrder": max(10, quantity),
            },
        )
        tier_ids[title] = tier["tier"]["id"]
        payment, bought = await buy(h, tier_ids[title], [f"{title} {n}" for n in range(quantity)])
        payments.append(payment)
        tickets += bought
    lists = (await h.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
    main = next(c["id"] for c in lists if c.get("isDefault"))
    return Sale(event, tier_ids, tickets, main, payments)


async def buy(h: Harness, tier_id: str, names: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """Paid tickets of the tier, one per attendee name: the payment id and the tickets."""
    hold = await h.app.ok(
        "createTicketHold",
        {"items": [{"tierId": tier_id, "quantity": len(names)}], "attendees": [{"name": n} for n in names]},
    )
    payment = new_payment_id()
    await BROKER.send(h.app.http, h.server.url, BROKER.paid(hold, payment_id=payment))
    return payment, (await h.app.ok("listBuyerTickets", {"paymentId": payment, "limit": 100}))["tickets"]


async def fresh_passes(h: Harness, sale: Sale) -> list[str]:
    """The tickets' passes as the buyer sees them now (a list created after the sale signs them too)."""
    found: dict[str, str] = {}
    for payment in sale.payments:
        listed = await h.app.ok("listBuyerTickets", {"paymentId": payment, "limit": 100})
        found |= {t["id"]: t["passToken"] for t in listed["tickets"]}
    return [found[t["id"]] for t in sale.tickets]


async def enrollment_code(h: Harness, list_ids: list[str], name: str = "Desk") -> str:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.write() as session:
            made = await devices.create_enrollment(session, "test", list_ids, name, int(time.time() * 1000))
    finally:
        await db.dispose()
    return made.code


async def revoke(h: Harness, device_id: str) -> None:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.write() as session:
            await devices.revoke(session, device_id, int(time.time() * 1000))
    finally:
        await db.dispose()


def desk_settings(folder: Path, **overrides: Any) -> ScannerSettings:
    values: dict[str, Any] = {
        "data_dir": folder,
        # A deadline only a hung server reaches: a loaded machine (a parallel run) answered a first
        # scan after more than 2 s and pushed it offline. Tests of the fallback set their own.
        "online_timeout_seconds": 10.0,
        # Connecting gets as long: a loaded machine took more than the desk's 0.5 s to connect on
        # loopback, and a failed connect opens the breaker (the next scans are decided offline).
        "connect_timeout_seconds": 10.0,
        "sync_interval_seconds": 0.2,
        "bundle_refresh_seconds": 0.5,
        "hub_port": 0,
        "clear_after_seconds": 0,  # results stay while a loaded machine gets round to reading them
        # A pass shown again is refused as a second entry at once (re-presentation has its own tests).
        "representation_seconds": 0,
        "probe_timeout_seconds": 2.0,  # a loaded test machine must not lose its hub
        **overrides,
    }
    return ScannerSettings(**values)


class SteppedClock:
    """A desk clock whose monotonic time moves only when the test moves it; wall time is the
    machine's (the server's records and bundles are timed by it)."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s

    def wall_ms(self) -> int:
        return SYSTEM_DESK_CLOCK.wall_ms()

    def monotonic(self) -> float:
        return self.now_s


async def enrolled_desk(
    h: Harness, folder: Path, list_ids: list[str], name: str = "North door", **overrides: Any
) -> DeskCore:
    """A desk enrolled (by the scanned enrollment text) for ``list_ids``, the first one chosen."""
    return await enroll(h, await open_desk(desk_settings(folder, **overrides)), list_ids, name)


async def enroll(h: Harness, core: DeskCore, list_ids: list[str], name: str = "North door") -> DeskCore:
    """``core`` enrolled as :func:`enrolled_desk` enrolls a desk (for a desk opened by the test)."""
    code = await enrollment_code(h, list_ids, name)
    await core.enroll("", f"tickets-enroll:{code}@{h.server.url}", name)
    await core.select_list(list_ids[0], "Gate 2")
    return core


async def server_records(h: Harness, list_id: str) -> list[tuple[str, str, str, str]]:
    """Every check-in record the server holds for the list: (device, record id, decision, reason)."""
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(Row.device_id, Row.id, Row.decision, Row.reason)
                .where(Row.list_id == list_id)
                .order_by(Row.seq)
            )
            return [(device, record, decision, reason) for device, record, decision, reason in rows]
    finally:
        await db.dispose()


async def restart_server(h: Harness) -> None:
    """The server again, on the same database and the same address (the desks know it)."""
    await asyncio.to_thread(h.server.stop)
    port = h.server.port
    fresh = LiveServer(h.settings)
    fresh.sock.close()
    fresh.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fresh.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    fresh.sock.bind(("127.0.0.1", port))
    fresh.port, fresh.url = port, f"http://127.0.0.1:{port}"
    await asyncio.to_thread(fresh.start)
    h.server = fresh
    # Ready as a load balancer would see it (the database answers), before a desk's next round:
    # its probe has a deadline that the server's first connection must not spend on a loaded machine.
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(300):
            if (await http.get(f"{fresh.url}/readyz")).status_code == 200:
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("the restarted server did not become ready")


async def hang_server(h: Harness) -> socket.socket:
    """The server stopped and, on its address, a listener that accepts connections and never
    answers (a hung server); close it before :func:`restart_server`."""
    await asyncio.to_thread(h.server.stop)
    hung = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hung.bind(("127.0.0.1", h.server.port))
    hung.listen(64)  # the kernel completes the connections; nothing ever reads them
    return hung


async def tickets_scanner(data_dir: Path, *argv: str, **env: str) -> tuple[int, str, str]:
    """``tickets-scanner`` run as door staff would, on the desk in ``data_dir``: (status, out, err)."""
    process = await asyncio.create_subprocess_exec(
        str(SCANNER), *argv,
        env={**os.environ, "SCANNER_DATA_DIR": str(data_dir), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# Frames.


def qr_image(text: str, scale: int) -> np.ndarray:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    image = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


@dataclass(frozen=True)
class Degradation:
    scale: int = 6  # QR module size in pixels
    blur: float = 0.0  # Gaussian sigma
    angle: float = 0.0  # degrees
    noise: float = 0.0  # Gaussian noise sigma (0-255 scale)
    contrast: float = 1.0  # 1 = black on white; 0.4 = grey on grey

    @classmethod
    def moderate(cls, rng: np.random.Generator) -> Degradation:
        """A webcam at a door: slightly out of focus, tilted, noisy, in poor light."""
        return cls(
            scale=int(rng.integers(4, 8)),
            blur=float(rng.uniform(0.0, 1.5)),
            angle=float(rng.uniform(-30, 30)),
            noise=float(rng.uniform(0.0, 12.0)),
            contrast=float(rng.uniform(0.4, 1.0)),
        )


def frame(text: str | None, rng: np.random.Generator, look: Degradation = Degradation()) -> np.ndarray:
    """A 1280x720 BGR frame with ``text`` as a QR code (None: an empty scene), degraded."""
    width, height = FRAME_SIZE
    canvas: np.ndarray = np.full((height, width), 200, np.uint8)
    if text is not None:
        code = qr_image(text, look.scale)
        top, left = (height - code.shape[0]) // 2, (width - code.shape[1]) // 2
        canvas[top : top + code.shape[0], left : left + code.shape[1]] = code
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), look.angle, 1.0)
    canvas = cv2.warpAffine(canvas, turn, (width, height), borderValue=200)
    if look.blur:
        canvas = cv2.GaussianBlur(canvas, (0, 0), look.blur)
    pixels = 128 + (canvas.astype(np.float32) - 128) * look.contrast + rng.normal(0, look.noise, canvas.shape)
    return cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 10.0) -> Path:
    """An MJPG AVI of the frames: the camera of the end-to-end tests."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, FRAME_SIZE)
    assert writer.isOpened()
    for image in frames:
        writer.write(image)
    writer.release()
    return path

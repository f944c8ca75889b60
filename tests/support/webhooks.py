"""A real webhook receiver on loopback, and the outbox rows the webhook tests need."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update

from server.db.engine import Database
from server.db.models import App, OutboxMessage, WebhookAttempt
from server.domain import apps, webhook_format
from server.domain.common import SystemClock
from server.domain.outbox.delivery import run_delivery_worker
from server.domain.outbox.service import enqueue
from server.errors import WebhookSignatureInvalid
from server.settings import Settings

SECRET = "whsec_receiver-test-secret"


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what the receiver answered."""

    delivery_id: str
    event_type: str
    environment: str
    body: bytes
    status: int
    headers: dict[str, str]


class Receiver:
    """An HTTP/1.1 endpoint on 127.0.0.1 that checks ``atm-signature`` over the raw body (401 when it
    does not verify), records every request, answers 500 to the first ``fail`` verified ones and
    waits ``delay_s`` before answering. Until :meth:`start`, its port is bound but not listening,
    so connections to :attr:`url` are refused."""

    def __init__(self, secret: str = SECRET, *, fail: int = 0, delay_s: float = 0.0) -> None:
        self.secret = secret
        self.fail = fail
        self.delay_s = delay_s
        self.requests: list[Received] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/webhooks"
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def delivered(self) -> Counter[str]:
        """Delivery ids answered 2xx, with how often."""
        return Counter(r.delivery_id for r in self.requests if 200 <= r.status < 300)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self.sock)

    async def stop(self) -> None:
        """Hang up on every sender (a slow answer ends early) and stop listening."""
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections)
        self.sock.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in head[1:] if line)
                }
                headers[":path"] = head[0].split(" ")[1]  # the request line's target
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = await self._answer(headers, body)
                writer.write(f"HTTP/1.1 {status} -\r\ncontent-length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the sender hung up
        finally:
            del self._connections[task]
            writer.close()

    def verify(self, headers: dict[str, str], body: bytes) -> int:
        """200 when the request is authentic, else the status to refuse it with."""
        try:
            webhook_format.verify_signature(
                headers.get(webhook_format.SIGNATURE_HEADER),
                headers.get(webhook_format.DELIVERY_HEADER, ""),
                body,
                [self.secret],
                int(time.time()),
            )
        except WebhookSignatureInvalid:
            return 401
        return 200

    async def _answer(self, headers: dict[str, str], body: bytes) -> int:
        delivery_id = headers.get(webhook_format.DELIVERY_HEADER, "")
        status = self.verify(headers, body)
        if status == 200 and self.fail > 0:
            self.fail -= 1
            status = 500
        if self.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.delay_s)
        self.requests.append(
            Received(
                delivery_id,
                headers.get(webhook_format.EVENT_HEADER, ""),
                headers.get(webhook_format.ENVIRONMENT_HEADER, ""),
                body,
                status,
                headers,
            )
        )
        return status


async def add_webhook_app(db: Database, did: str, url: str | None, secret: str = SECRET) -> str:
    """Register ``did`` in ``test`` with a webhook URL (or none); answers the app id."""
    async with db.write() as session:
        app = await apps.register_app(
            session, did=did, environment="test", now_ms=0, webhook_url=url, webhook_secret=secret
        )
        await session.flush()
        return app.id


async def point_webhooks(database_url: str, did: str, url: str, secret: str = SECRET) -> None:
    """Send the lifecycle events of the registered app ``did`` to ``url``."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            change = update(App).where(App.did == did).values(webhook_url=url, webhook_secret=secret)
            await session.execute(change)
    finally:
        await db.dispose()


async def queue(db: Database, app_id: str, count: int = 1) -> list[str]:
    """Enqueue ``count`` ``ticket.voided`` messages in one transaction; answers their delivery ids."""
    now_ms = SystemClock().now_ms()
    async with db.write() as session:
        messages = [
            await enqueue(session, app_id, "test", "ticket.voided", {"ticket": {"id": f"ticket_{n}"}}, now_ms)
            for n in range(count)
        ]
    return [m.delivery_id for m in messages if m is not None]


async def message(db: Database, delivery_id: str) -> OutboxMessage:
    async with db.read() as session:
        return (
            await session.execute(select(OutboxMessage).where(OutboxMessage.delivery_id == delivery_id))
        ).scalar_one()


async def attempts(db: Database, delivery_id: str) -> list[WebhookAttempt]:
    """The delivery log of one message, oldest first."""
    async with db.read() as session:
        return list(
            await session.scalars(
                select(WebhookAttempt)
                .join(OutboxMessage, OutboxMessage.id == WebhookAttempt.outbox_id)
                .where(OutboxMessage.delivery_id == delivery_id)
                .order_by(WebhookAttempt.id)
            )
        )


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


async def wait_for_state(db: Database, delivery_ids: list[str], state: str, timeout_s: float = 20.0) -> None:
    """Until every one of ``delivery_ids`` is in ``state``."""

    async def reached() -> bool:
        async with db.read() as session:
            states = list(
                await session.scalars(
                    select(OutboxMessage.state).where(OutboxMessage.delivery_id.in_(delivery_ids))
                )
            )
        return len(states) == len(delivery_ids) and set(states) == {state}

    await wait_until(reached, timeout_s, f"{len(delivery_ids)} message(s) {state}")


@asynccontextmanager
async def delivery_worker(db: Database, settings: Settings, **kw: Any) -> AsyncIterator[asyncio.Task[None]]:
    """``run_delivery_worker`` in the background of this test, with its own HTTP client."""
    async with httpx.AsyncClient() as http:
        task = asyncio.create_task(run_delivery_worker(db, settings, SystemClock(), http, **kw))
        try:
            yield task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

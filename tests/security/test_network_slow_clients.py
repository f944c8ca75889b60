"""Slow and hostile HTTP clients against the server as ``tickets serve`` runs it (limits set low by
settings): connections that never finish their headers are cut, idle keep-alive connections are
closed, connections beyond the limit are not kept, oversized headers and requests without ``Host``
are answered 400-class ``{error, message}``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import Harness, running_harness
from support.databases import sqlite_copy

# Alone on the machine: each test measures how long the server keeps a connection open.
pytestmark = pytest.mark.serial

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1
MAX_CONNECTIONS = 5
HEALTH = b"GET /xrpc/_health HTTP/1.1\r\nHost: tickets.test\r\n\r\n"


@pytest.fixture
async def server(tmp_path: Path, sqlite_template_file: Path) -> AsyncIterator[Harness]:
    async with running_harness(
        sqlite_copy(sqlite_template_file, tmp_path),
        tmp_path,
        http_header_timeout_seconds=HEADER_TIMEOUT,
        http_body_timeout_seconds=BODY_TIMEOUT,
        http_keep_alive_seconds=KEEP_ALIVE,
        http_max_connections=MAX_CONNECTIONS,
    ) as h:
        yield h


async def connect(h: Harness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", h.server.port)


async def closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (reading and dropping what it sends); fails
    the test if it is still open after ``limit``."""
    started = time.monotonic()
    while True:
        remaining = limit - (time.monotonic() - started)
        try:
            data = await asyncio.wait_for(reader.read(65536), max(remaining, 0))
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            pytest.fail(f"the connection was still open after {limit} s")
        if not data:
            return time.monotonic() - started


async def trickle(writer: asyncio.StreamWriter, opening: bytes, drip: bytes) -> None:
    """``opening``, then ``drip`` every 0.2 s, for ever (slowloris)."""
    writer.write(opening)
    try:
        while True:
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(drip)
    except (ConnectionError, RuntimeError):
        return


async def exchange(h: Harness, request: bytes) -> tuple[int, bytes]:
    reader, writer = await connect(h)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_network_clients_that_never_finish_their_headers_are_cut(server: Harness) -> None:
    clients = [await connect(server) for _ in range(3)]
    silent_reader, silent_writer = await connect(server)
    opening = b"GET /xrpc/_health HTTP/1.1\r\nHost: tickets.test\r\n"
    tricklers = [asyncio.create_task(trickle(writer, opening, b"X")) for _, writer in clients]
    try:
        waits = await asyncio.gather(
            *(closed_after(reader, HEADER_TIMEOUT + 1.5) for reader, _ in clients),
            closed_after(silent_reader, HEADER_TIMEOUT + 1.5),
        )
    finally:
        for task in tricklers:
            task.cancel()
        for _, writer in [*clients, (silent_reader, silent_writer)]:
            writer.close()
    assert all(wait >= HEADER_TIMEOUT - 0.2 for wait in waits), waits
    # The server still serves well-behaved clients, also ones that send their headers in pieces.
    reader, writer = await connect(server)
    writer.write(HEALTH[:20])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.write(HEALTH[20:])
    head = await asyncio.wait_for(reader.readline(), 5)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()


async def test_network_a_body_that_never_ends_is_cut(server: Harness) -> None:
    reader, writer = await connect(server)
    opening = (
        b"POST /xrpc/tickets.atmosphere.createTicketHold HTTP/1.1\r\nHost: tickets.test\r\n"
        b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{"
    )
    trickling = asyncio.create_task(trickle(writer, opening, b" "))
    try:
        waited = await closed_after(reader, BODY_TIMEOUT + 1.5)
    finally:
        trickling.cancel()
        writer.close()
    assert waited >= BODY_TIMEOUT - 0.2


async def test_network_idle_keep_alive_connections_are_closed(server: Harness) -> None:
    reader, writer = await connect(server)
    writer.write(HEALTH)
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    waited = await closed_after(reader, KEEP_ALIVE + 1.5)
    assert waited < KEEP_ALIVE + 1.5
    writer.close()


async def test_network_connections_beyond_the_limit_are_not_kept(server: Harness) -> None:
    clients = [await connect(server) for _ in range(4 * MAX_CONNECTIONS)]
    await asyncio.sleep(0.3)  # well before the header deadline
    open_now = 0
    for reader, _ in clients:
        try:
            data = await asyncio.wait_for(reader.read(1), 0.05)
        except TimeoutError:
            open_now += 1  # nothing to read and not closed
        else:
            assert data == b""
    assert open_now <= MAX_CONNECTIONS
    for reader, _ in clients:  # and the rest go at the header deadline
        await closed_after(reader, HEADER_TIMEOUT + 1.5)
    for _, writer in clients:
        writer.close()


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
async def test_network_a_request_without_host_is_refused(server: Harness, version: bytes) -> None:
    status, body = await exchange(server, b"GET /xrpc/_health " + version + b"\r\n\r\n")
    assert status == 400
    assert json.loads(body) == {"error": "InvalidRequest", "message": "the request has no Host header"}
    status, _ = await exchange(server, b"GET /xrpc/_health " + version + b"\r\nHost: tickets.test\r\n\r\n")
    assert status == 200


async def test_network_oversized_headers_are_refused(server: Harness) -> None:
    padding = b"".join(b"X-Padding-%d: %s\r\n" % (n, b"x" * 1000) for n in range(80))
    status, body = await exchange(
        server, b"GET /xrpc/_health HTTP/1.1\r\nHost: tickets.test\r\n" + padding + b"\r\n"
    )
    assert status == 431
    assert json.loads(body)["error"] == "InvalidRequest"

"""Hub mode: while the server is unreachable, one desk serves the others on the local network.

The hub answers the server's two sync methods on the same paths and with the same shapes
(``POST /xrpc/tickets.atmosphere.uploadCheckIns``, ``GET /xrpc/tickets.atmosphere.pullCheckIns``),
authenticated by the hub token it shows (``Authorization: Bearer <token>``). Uploads are stored once
by (device, record id) through the protocol's ``accept_upload`` and queued for the server; pulls are
served with ``records_since`` from the hub's own replica of each list. When the server is back,
every desk uploads its own records (the server takes a desk's records from that desk only) and the
server keeps each record once.

A hub cursor carries the hub's run (a random number in its high bits) and a place in the hub's
arrival order: a cursor from an earlier run of the hub starts again from the beginning, so no
record is skipped after a restart (what comes again is a duplicate).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import socket
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException, SerializationException

from scanner_app.core.desk import HUB_PREFIX, DeskCore
from scanner_app.io.http_peer import NAMESPACE
from sync.records import Record, RecordFormatError

PAGE_LIMIT = 1000
_RUN_SHIFT = 32


def lan_address() -> str:
    """This machine's address on its local network, as other desks would reach it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _error(status: int, error: str, message: str) -> Response[dict[str, Any]]:
    return Response({"error": error, "message": message}, status_code=status)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Unknown paths and wrong verbs answer like the server: ``{error, message}``."""
    name = "MethodNotImplemented" if exc.status_code == 404 else "InvalidRequest"
    return _error(exc.status_code, name, exc.detail)


def hub_app(core: DeskCore, run: int) -> Litestar:
    """The two sync methods over ``core``'s replicas."""

    def refused(request: Request[Any, Any, Any]) -> Response[dict[str, Any]] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), core.hub_token):
            return _error(401, "AuthenticationRequired", "send the hub token: Authorization: Bearer <token>")
        if not core.enrolled:
            return _error(503, "HubNotReady", "the hub desk is not enrolled")
        return None

    @post(f"/xrpc/{NAMESPACE}uploadCheckIns", status_code=200)
    async def upload(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        if (problem := refused(request)) is not None:
            return problem
        try:
            items = (await request.json())["records"]
            records = [Record.from_wire(item).with_ticket_ref() for item in items]
        except (SerializationException, ValueError, KeyError, TypeError, RecordFormatError) as exc:
            return _error(400, "InvalidRequest", f"records expected: {exc}")
        results = core.sync_engine.receive(records)
        core.wake()
        return Response(
            {
                "results": [
                    {"deviceId": r.device_id, "id": r.record_id, "status": result.value}
                    for r, result in zip(records, results, strict=True)
                ],
                "serverTimeMs": core.offset.now_ms(),
            }
        )

    @get(f"/xrpc/{NAMESPACE}pullCheckIns")
    async def pull(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        if (problem := refused(request)) is not None:
            return problem
        list_id = request.query_params.get("checkInListId", "")
        if list_id not in core.sync_engine.replicas:
            return _error(401, "DeviceAuthenticationRequired", f"this hub does not serve list {list_id!r}")
        try:
            cursor = int(request.query_params.get("cursor") or 0)
            limit = min(int(request.query_params.get("limit") or PAGE_LIMIT), PAGE_LIMIT)
        except ValueError:
            return _error(400, "InvalidRequest", "cursor and limit are integers")
        if limit < 1:
            return _error(400, "InvalidRequest", "limit must be at least 1")
        place = cursor - (run << _RUN_SHIFT) if cursor >> _RUN_SHIFT == run else -1
        records, after = core.sync_engine.serve(list_id, place, limit)
        return Response(
            {
                "records": [record.to_wire() for record in records],
                "cursor": str(run << _RUN_SHIFT | after),
                "more": len(records) == limit,
                "serverTimeMs": core.offset.now_ms(),
            }
        )

    return Litestar(
        route_handlers=[upload, pull], openapi_config=None, exception_handlers={HTTPException: _http_error}
    )


class Hub:
    """The hub server of one desk, on ``port`` (0: any free port) of every interface."""

    def __init__(
        self,
        core: DeskCore,
        port: int | None = None,
        host: str = "0.0.0.0",  # noqa: S104 - serves the LAN
    ) -> None:
        self.core = core
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, core.settings.hub_port if port is None else port))
        self.port: int = self.sock.getsockname()[1]
        app = hub_app(core, secrets.randbelow(1 << 20) + 1)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)

    def text(self, address: str | None = None) -> str:
        """What other desks scan or type to use this hub: ``tickets-hub:<token>@<url>``."""
        return f"{HUB_PREFIX}{self.core.hub_token}@http://{address or lan_address()}:{self.port}"

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        serving = asyncio.ensure_future(self.server.serve(sockets=[self.sock]))
        await stop.wait()
        self.server.should_exit = True
        await serving
        self.sock.close()

"""Serving HTTP: uvicorn (httptools parser) with a guard against slow and hostile clients.

uvicorn alone keeps a connection that never finishes its request headers for ever (its keep-alive
timeout only runs between requests), keeps every connection it accepts (``limit_concurrency`` only
answers 503 to complete requests), and serves requests without ``Host``. :class:`GuardedProtocol`
adds, per connection:

- a header deadline: the request headers must be complete ``header_timeout`` seconds after the
  connection opened, or after the first byte of a later request on it; otherwise the connection is
  closed. A request's headers may also take at most :data:`MAX_HEADER_BYTES`;
- a body deadline: the request body must be complete ``body_timeout`` seconds after its headers;
- a connection limit: a connection beyond ``max_connections`` in this process is closed as it
  arrives, before anything is read from it;
- a request without ``Host`` is answered ``400`` ``{error, message}`` and the connection closed.

The keep-alive timeout is uvicorn's own. See ``docs/adr/0005-guarding-uvicorn-against-slow-clients.md``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import shutil
import socket
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from server import metrics
from server.observability import logging_config
from server.operator_errors import OperatorError
from server.settings import Settings

MAX_HEADER_BYTES = 64 * 1024
log = logging.getLogger("tickets")


def _json_error(status: int, reason: str, error: str, message: str) -> bytes:
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


MISSING_HOST = _json_error(400, "Bad Request", "InvalidRequest", "the request has no Host header")
HEADERS_TOO_LARGE = _json_error(
    431, "Request Header Fields Too Large", "InvalidRequest", "the request headers are too large"
)


class GuardedConfig(uvicorn.Config):
    """uvicorn's configuration plus the guard's limits (a module-level class, so that it travels to
    worker processes)."""

    def __init__(
        self, app: Any, *, header_timeout: float, body_timeout: float, max_connections: int, **kwargs: Any
    ) -> None:
        super().__init__(app, http=GuardedProtocol, ws="none", **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections


class GuardedProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, GuardedConfig)
        self._header_timeout = config.header_timeout
        self._body_timeout = config.body_timeout
        self._max_connections = config.max_connections
        self._deadline: asyncio.TimerHandle | None = None  # of the headers or the body being read
        self._header_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._max_connections:
            self._refuse(b"")
            return
        self._start_deadline(self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        # The first request's deadline started when the connection opened.
        self._start_deadline(self._header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._end_deadline()
        if self._refused:
            return
        if not any(name == b"host" for name, _ in self.headers):
            self._refuse(MISSING_HOST)
            return
        self._start_deadline(self._body_timeout)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._end_deadline()
        if not self._refused:
            super().on_message_complete()

    def _start_deadline(self, seconds: float) -> None:
        """Close the connection in ``seconds`` unless a deadline already runs."""
        if self._deadline is None and not self._refused:
            self._deadline = self.loop.call_later(seconds, self._refuse, b"")

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes > MAX_HEADER_BYTES and not self._refused:
            self._refuse(HEADERS_TOO_LARGE)

    def _end_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse(self, answer: bytes) -> None:
        """Stop reading this connection: send ``answer`` (if any) and close."""
        self._refused = True
        self._end_deadline()
        if not self.transport.is_closing():
            if answer:
                self.transport.write(answer)
            self.transport.close()


def server_config(app: Any, settings: Settings, **kwargs: Any) -> GuardedConfig:
    """The uvicorn configuration for ``app`` with the limits of ``settings``."""
    return GuardedConfig(
        app,
        header_timeout=settings.http_header_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
        max_connections=settings.http_max_connections,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        lifespan="on",
        access_log=False,
        # The client address is the socket peer; which forwarding header to believe, behind how
        # many proxies, is the service's own setting (``TICKETS_TRUSTED_PROXY_COUNT``).
        proxy_headers=False,
        **kwargs,
    )


class _MetricsHandler(BaseHTTPRequestHandler):
    """``GET /metrics`` on the metrics port: every worker's metrics, summed."""

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        body = metrics.exposition()
        self.send_response(200)
        self.send_header("content-type", metrics.CONTENT_TYPE)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


def start_metrics_server(settings: Settings) -> ThreadingHTTPServer:
    """/metrics on its own port, from a thread of this (the supervising) process."""
    server = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), _MetricsHandler)
    Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def listen(host: str, port: int, workers: int = 1) -> list[socket.socket]:
    """The listening sockets of ``tickets serve``, bound before anything starts: a port out of range,
    taken or not ours to take is an :class:`OperatorError`.

    One socket for one process. For several, one socket each, all on the port with
    ``SO_REUSEPORT``: the kernel spreads new connections between them. Worker processes sharing one
    socket did not share its connections: the first awake accepted every connection waiting, so a
    burst of clients (16 keep-alive connections opened at once) all went to one process and the
    others idled. Where the kernel does not spread connections so (outside Linux), the processes
    share one socket as before. The port is first bound without ``SO_REUSEPORT``, so that a port
    already taken (by another server of ours too) is refused rather than shared."""
    if not 1 <= port <= 65535:
        raise OperatorError(f"--port {port} is not a port number: choose one from 1 to 65535")
    first = _bound(host, port, reuse_port=False)
    if workers == 1 or not SPREADS_CONNECTIONS:
        return [first]
    first.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sockets.append(_bound(host, port, reuse_port=True))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bound(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.set_inheritable(True)  # the worker processes of --workers serve it
        sock.bind((host, port))
        sock.listen(2048)  # listening at once, so that a second server cannot bind the port meanwhile
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OperatorError(
                f"port {port} on {host} is already in use: choose another with --port N (make demo PORT=N)"
            ) from None
        if exc.errno == errno.EACCES:
            raise OperatorError(f"port {port} needs privileges: choose one over 1023 with --port N") from None
        raise OperatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


# Linux spreads the connections of a port between its SO_REUSEPORT sockets; BSD and macOS do not.
SPREADS_CONNECTIONS = sys.platform == "linux"


class SpreadMultiprocess(Multiprocess):
    """uvicorn's supervisor, starting each worker on a listening socket of its own when
    :func:`listen` made one per worker (else every worker on the one socket, as uvicorn does). A
    worker started again later (after a crash, or all of them on ``SIGHUP``) serves every socket,
    so none is left without a process to accept its connections. With a socket per worker the
    number of workers is fixed: ``SIGTTOU`` would leave the last worker's socket taking
    connections that nobody accepts, and ``SIGTTIN`` a worker without one of its own."""

    def init_processes(self) -> None:
        for n in range(self.processes_num):
            process = Process(self.config, [self.sockets[n]] if self._own_sockets else self.sockets)
            process.start()
            self.processes.append(process)

    @property
    def _own_sockets(self) -> bool:
        return len(self.sockets) > 1

    def handle_ttin(self) -> None:
        self._unless_fixed("SIGTTIN", super().handle_ttin)

    def handle_ttou(self) -> None:
        self._unless_fixed("SIGTTOU", super().handle_ttou)

    def _unless_fixed(self, signal_name: str, change: Callable[[], None]) -> None:
        """Change the number of workers as uvicorn does, unless each has a socket of its own."""
        if self._own_sockets:
            log.warning("%s ignored: each worker has a socket of its own, their number is fixed", signal_name)
        else:
            change()


def run(config: uvicorn.Config, sockets: list[socket.socket]) -> None:
    """Serve ``config`` on the sockets from :func:`listen`: in this process for one worker, else
    in a process for each (:class:`SpreadMultiprocess`)."""
    if config.workers > 1:
        SpreadMultiprocess(config, sockets=sockets).run()
    else:
        uvicorn.Server(config).run(sockets=sockets)


def serve(
    settings: Settings, sockets: list[socket.socket], *, host: str, port: int, workers: int, log_level: str
) -> None:
    """``tickets serve`` on the sockets from :func:`listen`: ``workers`` processes (each building the
    app from the environment). With more than one, their metrics go through files in a folder
    emptied at start (a private one, removed on the way out, unless ``PROMETHEUS_MULTIPROC_DIR``
    names one)."""
    private_dir = metrics.prepare_multiprocess_dir() if workers > 1 else None
    metrics_server = (
        start_metrics_server(settings) if settings.metrics != "off" and settings.metrics_port else None
    )
    config = server_config(
        "server.app:create_app_from_env",
        settings,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=logging_config(settings.log_format, log_level),
    )
    try:
        run(config, sockets)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)

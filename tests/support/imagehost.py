"""An image host stand-in on loopback (plain HTTP): answers set per path, and a count of the
connections it accepted (a refused address never gets one)."""

from __future__ import annotations

import socket
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def small_png(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG of ``width`` x ``height`` red pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: ImageHost) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.host = host

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        with self.host.lock:
            self.host.connections += 1
        return accepted


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        host = self.server.host
        with host.lock:
            host.requests.append(self.path)
        answer = host.answers.get(self.path)
        if answer is None:
            self.send_error(404)
            return
        status, content_type, body, with_length = answer
        self.send_response(status)
        self.send_header("content-type", content_type)
        if with_length:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ImageHost:
    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, str, bytes, bool]] = {}
        self.requests: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def serve(
        self,
        path: str,
        body: bytes,
        content_type: str = "image/png",
        *,
        status: int = 200,
        length: bool = True,
    ) -> str:
        """Answer ``path`` with ``body``; answers the URL on this host (``http://127.0.0.1:<port>``)."""
        self.answers[path] = (status, content_type, body, length)
        return self.url(path)

    def url(self, path: str, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> ImageHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

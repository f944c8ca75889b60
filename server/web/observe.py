"""The outermost middleware: request ids, the access log and the request metrics.

Every HTTP request gets a request id (the client's ``X-Request-Id`` when it is sane, else a new
one), answered in the ``X-Request-Id`` response header, kept in the request's
:class:`~server.observability.RequestContext` (lifecycle events the request causes carry it into
their deliveries) and written, with the method (NSID), status, duration, caller DID and environment,
in one access-log line on the ``tickets.access`` logger. Nothing here touches the database.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server import metrics
from server.log_redaction import redact
from server.observability import ACCESS_LOGGER, REQUEST_ID_HEADER, RequestContext, current_request

# An incoming id is kept when it is short and header-safe (a UUID, a proxy's trace id); it cannot
# hold an email address or a JWT (no ``@``, at most 64 characters).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Fixed routes keep their own metrics label; the other web pages share one.
_FIXED_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/xrpc/_health"})

access_log = logging.getLogger(ACCESS_LOGGER)


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return secrets.token_hex(8)


def route_label(path: str, context: RequestContext) -> str:
    """A bounded label for the metrics: the NSID of an implemented method, or the route."""
    if context.nsid is not None:
        return context.nsid
    if path in _FIXED_ROUTES:
        return path
    return "unknown" if path.startswith("/xrpc/") else "web"


def observe_requests(*, log_access: bool) -> Callable[[ASGIApp], ASGIApp]:
    """The outermost middleware: request id, access log and request metrics."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            context = RequestContext(request_id_of(scope["headers"]))
            header = (REQUEST_ID_HEADER.encode(), context.request_id.encode())
            status = 500

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            token = current_request.set(context)
            try:
                await app(scope, receive, send_with_id)
            finally:
                current_request.reset(token)
                elapsed = time.perf_counter() - started
                label = route_label(scope["path"], context)
                metrics.REQUESTS.labels(label, str(status)).inc()
                metrics.REQUEST_SECONDS.labels(label).observe(elapsed)
                if log_access:
                    _log_access(scope, context, status, elapsed)

        return middleware

    return wrap


def _log_access(scope: Scope, context: RequestContext, status: int, elapsed_s: float) -> None:
    path: str = scope["path"]
    fields: dict[str, Any] = {
        "method": scope.get("method"),
        "nsid": context.nsid,
        "path": None if context.nsid else redact(path[:200]),
        "status": status,
        "duration_ms": round(elapsed_s * 1000, 2),
        "request_id": context.request_id,
        "did": context.caller_did,
        "environment": context.environment,
    }
    access_log.info("request", extra={"fields": fields})

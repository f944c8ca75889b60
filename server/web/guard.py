"""The first check on every request, before any handler reads it: a NUL in the path or the query
string, or a header value with control characters or bytes outside ASCII, answers 400
``{error, message}`` — for XRPC, the broker's webhooks and the web pages alike."""

from __future__ import annotations

from typing import Final

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

_PRINTABLE_ASCII: Final = frozenset(range(0x20, 0x7F)) | {0x09}  # and horizontal tab


def problem(scope: Scope) -> str | None:
    """Why a request is refused before routing, or None. Never quotes the offending text."""
    if "\0" in scope["path"] or b"%00" in scope.get("query_string", b""):
        return "the path and query string must not contain the NUL character"
    for name, value in scope["headers"]:
        if not _PRINTABLE_ASCII.issuperset(value):
            header = name.decode("latin-1")
            return f"the {header} header must be printable ASCII"
    return None


def refuse_hostile_requests(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: :func:`problem` answered as a 400 ``InvalidRequest``."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        reason = problem(scope) if scope["type"] == ScopeType.HTTP else None
        if reason is None:
            await app(scope, receive, send)
            return
        body = msgspec.json.encode({"error": "InvalidRequest", "message": reason})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 400, "headers": headers}
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
        await send(start)
        await send(end)

    return middleware

"""The first check on every request, before any handler reads it — for XRPC, the broker's webhooks
and the web pages alike: a NUL in the path or the query string, or a header value with control
characters or bytes outside ASCII, answers 400 ``InvalidRequest``; a declared body over the limit
answers 413 ``PayloadTooLarge`` (a body sent without a length is cut off at the limit when read)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

_PRINTABLE_ASCII: Final = frozenset(range(0x20, 0x7F)) | {0x09}  # and horizontal tab


def problem(scope: Scope, max_body_bytes: int) -> tuple[int, str, str] | None:
    """Why a request is refused before its handler (status, error, message), or None. The message never
    quotes the offending text."""
    if "\0" in scope["path"] or b"%00" in scope.get("query_string", b""):
        return 400, "InvalidRequest", "the path and query string must not contain the NUL character"
    for name, value in scope["headers"]:
        if not _PRINTABLE_ASCII.issuperset(value):
            return 400, "InvalidRequest", f"the {name.decode('latin-1')} header must be printable ASCII"
        if name == b"content-length" and value.isdigit() and int(value) > max_body_bytes:
            return 413, "PayloadTooLarge", f"request body is larger than {max_body_bytes} bytes"
    return None


def hostile_request_guard(max_body_bytes: int) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar middleware answering :func:`problem` as ``{error, message}`` JSON."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            refusal = problem(scope, max_body_bytes) if scope["type"] == ScopeType.HTTP else None
            if refusal is None:
                await app(scope, receive, send)
                return
            status, error, message = refusal
            body = msgspec.json.encode({"error": error, "message": message})
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
            end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
            await send(start)
            await send(end)

        return middleware

    return wrap

"""The one mapper from errors to XRPC responses: ``{"error", "message"}`` with the right status,
for every path under ``/xrpc/`` — including routing errors and bugs, which never leak an HTML page
or a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from server.errors import InsufficientAvailability, ServiceError

log = logging.getLogger("tickets.xrpc")

HTTP_ERROR_NAMES = {
    400: "InvalidRequest",
    401: "AuthenticationRequired",
    403: "Forbidden",
    404: "MethodNotImplemented",
    405: "InvalidRequest",
    413: "PayloadTooLarge",
    429: "RateLimitExceeded",
}


def xrpc_error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    return Response({"error": error, "message": message, **extra}, status_code=status, headers=headers)


def service_error_response(exc: ServiceError) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {}
    if isinstance(exc, InsufficientAvailability):
        extra["shortages"] = exc.shortages
    return xrpc_error(exc.status, exc.code, exc.message, exc.headers or None, **extra)


def handle_service_error(_request: Request[Any, Any, Any], exc: ServiceError) -> Response[dict[str, Any]]:
    return service_error_response(exc)


def handle_http_exception(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        return xrpc_error(status, "InternalServerError", "the server failed to handle this request")
    return xrpc_error(
        status,
        HTTP_ERROR_NAMES.get(status, "InvalidRequest"),
        str(exc.detail),
        dict(exc.headers or {}) or None,
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return xrpc_error(500, "InternalServerError", "the server failed to handle this request")

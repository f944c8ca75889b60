"""The request being served (its id, method and caller) and the log formats.

The web layer (:mod:`server.web.observe`) opens a :class:`RequestContext` for each request; the
XRPC dispatch notes the method and the caller in it, the outbox stores its request id with the
lifecycle events the request causes, and the access log writes it out.

A line's structured fields travel in the record's ``fields`` attribute, which the redacting record
factory (:mod:`server.log_redaction`) never sees: every value put there must be of a fixed shape
(numbers, a checked request id, a registered app's DID) or passed through
:func:`~server.log_redaction.redact` first.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REQUEST_ID_HEADER = "x-request-id"
ACCESS_LOGGER = "tickets.access"


@dataclass(slots=True)
class RequestContext:
    """What the access log learns while a request runs."""

    request_id: str
    nsid: str | None = None  # a method this service implements
    caller_did: str | None = None
    environment: str | None = None


current_request: ContextVar[RequestContext | None] = ContextVar("tickets_request", default=None)


def current_request_id() -> str | None:
    context = current_request.get()
    return context.request_id if context else None


def note_method(nsid: str) -> None:
    """The request calls ``nsid``, a method of this service."""
    if (context := current_request.get()) is not None:
        context.nsid = nsid


def note_caller(did: str, environment: str) -> None:
    """The request is authenticated as ``did`` (an app's DID) in ``environment``."""
    if (context := current_request.get()) is not None:
        context.caller_did, context.environment = did or None, environment


# --- formats ------------------------------------------------------------------------------------


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, "fields", None) or {}
    return {name: value for name, value in fields.items() if value is not None}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value …``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line + "".join(f" {name}={value}" for name, value in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the record's fields
    and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for ``tickets serve``: every logger (uvicorn's too)
    through one handler on stderr in ``log_format``; the access log at INFO whatever ``level`` is
    (``TICKETS_ACCESS_LOG=false`` turns it off)."""
    formatter = TextFormatter if log_format == "text" else JsonFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            ACCESS_LOGGER: {"level": "INFO"},
            # One line per outbound request (webhooks, PDS calls) is the client library's, not ours.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }

"""No personal data or secret in any log line.

:func:`install` replaces the logging record factory, so every record any logger creates (ours,
uvicorn's, Litestar's, SQLAlchemy's, a library's) is redacted once, before any handler or formatter
sees it: the message with its arguments merged, the exception text and the stack are rewritten
through :func:`redact`, and the exception itself is dropped from the record (so that no formatter
prints it again from ``exc_info``).

What :func:`redact` removes: email addresses, JWTs and bearer credentials, checkout tokens, device
credentials, webhook secrets and any other long random-looking string (pass tokens, app passwords),
the arguments of records from loggers that log SQL parameters (aiosqlite at DEBUG),
the ``DETAIL`` line of a PostgreSQL error (``Key (email)=(…) already exists``), values PostgreSQL
echoes in its messages, and SQL parameters (SQLAlchemy engines also run with
``hide_parameters=True``; see :mod:`server.db.engine`). Names cannot be recognised by their shape:
they reach a log line only through SQL parameters or a ``DETAIL`` line, which are removed.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # SQLAlchemy's "[parameters: (...)]" and PostgreSQL's "DETAIL:  Key (...)=(...)", to the line's end.
    (re.compile(r"\[parameters: .*"), "[parameters: redacted]"),
    (re.compile(r"\bDETAIL: .*"), "DETAIL: redacted"),
    # PostgreSQL messages that quote the offending value.
    (
        re.compile(r"((?:invalid input (?:syntax|value) for [^:\n]*|value too long[^:\n]*): )\"[^\n]*?\""),
        r'\1"redacted"',
    ),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"(?i:\b(bearer|basic))\s+[^\s,;'\"]+"), r"\1 [redacted]"),
    (re.compile(r"[^\s@\"'<>(),;:\[\]{}=/\\]+@[^\s@\"'<>(),;:\[\]{}=/\\]+"), "[email]"),
    (re.compile(r"\b(chk|whsec)_[A-Za-z0-9_-]+"), r"\1_[redacted]"),
    (re.compile(r"\b(dev_[0-9A-Za-z]+)\.[A-Za-z0-9_-]+"), r"\1.[redacted]"),
    # Long random-looking strings: at least 32 base64url characters with a digit and a letter, other
    # than the service's own ids (``event_`` and 26 Crockford base32 characters).
    (
        re.compile(
            r"(?<![A-Za-z0-9_-])(?![a-z]+_[0-9A-HJKMNP-TV-Z]{26}(?![A-Za-z0-9_-]))"
            r"(?=[A-Za-z_-]*[0-9])(?=[0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,}"
        ),
        "[secret]",
    ),
)


# Any rule's match: a text without one is returned as it is, in one scan instead of one per rule (a
# rule can only match what an earlier rule wrote if that rule matched the text first).
_ANY_RULE = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in _RULES))


# Loggers that put SQL parameters in their arguments (aiosqlite logs every statement with them at
# DEBUG): their records keep only the message template.
_PARAMETER_LOGGERS = ("aiosqlite", "asyncpg")


def redact(text: str) -> str:
    if _ANY_RULE.search(text) is None:
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class _Redacting:
    """A record factory wrapping the one installed before it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        try:
            if record.name.startswith(_PARAMETER_LOGGERS):
                message = f"{record.msg} (arguments withheld)" if record.args else str(record.msg)
            else:
                message = record.getMessage()
        except Exception:  # a bad format string: keep only the template
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact("".join(traceback.format_exception(record.exc_info[1])).rstrip("\n"))
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record


def install() -> None:
    """Redact every log record of this process from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _Redacting):
        logging.setLogRecordFactory(_Redacting(factory))

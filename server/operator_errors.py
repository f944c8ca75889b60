"""Operator mistakes: the one place that turns a deployment mistake into one line for the operator.

A ``tickets`` command that fails because of how the service is set up (the database URL, a server
that is down, a database that does not exist, a folder it cannot write, a port out of range or
taken, several workers on SQLite, a setting of the wrong type) prints one line on stderr and exits
with code 2, never a traceback. Code that recognises such a mistake raises :class:`OperatorError`;
:func:`explain` recognises the ones that surface as the libraries' own exceptions. The lines name
hosts, ports, paths and setting names, never a password or other personal data.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
import traceback
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg.exceptions
from pydantic import ValidationError

EXIT_CODE = 2
DATABASE_SETTING = "TICKETS_DATABASE_URL"
UNREACHABLE = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})


class OperatorError(Exception):
    """A mistake in the deployment that the operator can fix; the message is the whole line."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _where(database_url: str) -> tuple[str, str]:
    """``host:port`` and the database name of a PostgreSQL URL (never its password)."""
    try:
        url = urlsplit(database_url)
        port = url.port or 5432
    except ValueError:
        return "?", "?"
    return f"{url.hostname or 'localhost'}:{port}", url.path.lstrip("/") or "?"


def explain(exc: BaseException, database_url: str) -> str | None:
    """The operator's line for ``exc``, or None when it is not a deployment mistake (a bug)."""
    for error in _chain(exc):
        line = _explain_one(error, database_url)
        if line is not None:
            return line
    return None


def _explain_one(error: BaseException, database_url: str) -> str | None:
    if isinstance(error, OperatorError):
        return str(error)
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper()
        return f"the setting TICKETS_{name} is not valid: {first['msg']}"
    if database_url.startswith("sqlite"):
        return _explain_sqlite(error, database_url)
    return _explain_postgresql(error, database_url)


def _about(error: BaseException, path: str) -> bool:
    """Whether ``error`` is about the file at ``path`` or one of its folders (not any other file)."""
    return isinstance(error, OSError) and bool(error.filename) and path.startswith(str(error.filename))


def _explain_sqlite(error: BaseException, database_url: str) -> str | None:
    path = database_url.partition("://")[2][1:]  # sqlite:///relative, sqlite:////absolute
    unopened = isinstance(error, sqlite3.OperationalError) and "unable to open" in str(error)
    if unopened or _about(error, path):
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "cannot open it"
        return (
            f"cannot open the SQLite database at {path} ({reason}): choose a writable folder with "
            f"TICKETS_DATA_DIR, or a path with {DATABASE_SETTING}"
        )
    return None


def _from_the_driver(error: BaseException) -> bool:
    """Whether ``error`` was raised while asyncpg connected (not by another connection of the
    command, to a PDS or a webhook receiver)."""
    return any("asyncpg" in frame.filename for frame in traceback.extract_tb(error.__traceback__))


def _explain_postgresql(error: BaseException, database_url: str) -> str | None:
    where, database = _where(database_url)
    if not _from_the_driver(error):
        return None
    if isinstance(error, asyncpg.exceptions.InvalidCatalogNameError):
        return (
            f'the database "{database}" does not exist on the PostgreSQL server at {where}: create it '
            f"(createdb {database}) or fix {DATABASE_SETTING}"
        )
    if isinstance(
        error,
        asyncpg.exceptions.InvalidPasswordError | asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    ):
        return f"the PostgreSQL server at {where} refused the login: check the user and password of the URL"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the PostgreSQL host of {where}: fix the host in {DATABASE_SETTING}"
    if isinstance(error, OSError) and error.errno in UNREACHABLE:
        return f"cannot reach the PostgreSQL server at {where}: is it running, and is the URL right?"
    if isinstance(error, TimeoutError):
        return f"the PostgreSQL server at {where} did not answer in time: is it running and reachable?"
    return None

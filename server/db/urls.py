"""Database URLs as operators write them, with the async driver the service uses."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from server.operator_errors import DATABASE_SETTING, OperatorError

# Each engine the service runs on, the names its URLs may start with, and its async driver.
DRIVERS = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}
ENGINE = {"postgres": "postgresql"}


def async_url(url: str) -> str:
    """``url`` with the engine's async driver: ``postgresql://``, ``postgres://`` and ``sqlite://``
    are accepted as they are written; another driver or an unknown engine is an :class:`OperatorError`."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise OperatorError(
            f"{DATABASE_SETTING} is not a database URL: use postgresql://user@host/db or sqlite:///path"
        ) from None
    engine, _, driver = parsed.drivername.partition("+")
    wanted = DRIVERS.get(engine)
    if wanted is None:
        raise OperatorError(
            f"{DATABASE_SETTING} names the engine {engine!r}: the service runs on PostgreSQL "
            "(postgresql://user@host/db) or SQLite (sqlite:///path)"
        )
    if driver == wanted and engine not in ENGINE:
        return url
    if driver and driver != wanted:
        raise OperatorError(
            f"{DATABASE_SETTING} asks for the driver {driver!r}: the service uses {wanted} "
            f"(write {engine}:// or {engine}+{wanted}://)"
        )
    drivername = f"{ENGINE.get(engine, engine)}+{wanted}"
    return parsed.set(drivername=drivername).render_as_string(hide_password=False)

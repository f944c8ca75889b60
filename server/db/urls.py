"""Database URLs as operators write them, with the async driver the service uses (no SQLAlchemy
here: the settings use it, and the pure modules import the settings)."""

from __future__ import annotations

from server.operator_errors import DATABASE_SETTING, OperatorError

# The names a URL may start with, the engine each one means, and the engine's async driver.
ENGINES = {"postgresql": "postgresql", "postgres": "postgresql", "sqlite": "sqlite"}
DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}


def async_url(url: str) -> str:
    """``url`` with the engine's async driver: ``postgresql://``, ``postgres://`` and ``sqlite://``
    are accepted as they are written; another driver or an unknown engine is an :class:`OperatorError`."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise OperatorError(
            f"{DATABASE_SETTING} is not a database URL: use postgresql://user@host/db or sqlite:///path"
        )
    name, _, driver = scheme.partition("+")
    engine = ENGINES.get(name.lower())
    if engine is None:
        raise OperatorError(
            f"{DATABASE_SETTING} names the engine {name!r}: the service runs on PostgreSQL "
            "(postgresql://user@host/db) or SQLite (sqlite:///path)"
        )
    wanted = DRIVERS[engine]
    if driver and driver != wanted:
        raise OperatorError(
            f"{DATABASE_SETTING} asks for the driver {driver!r}: the service uses {wanted} "
            f"(write {engine}:// or {engine}+{wanted}://)"
        )
    return f"{engine}+{wanted}://{rest}"

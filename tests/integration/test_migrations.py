"""The migrations build exactly the schema the models describe, and go down and up again, on both
engines."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from server.db.migrate import alembic_config, upgrade
from server.db.models import Base


async def schema_diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:

            def diff(sync: Connection) -> list[Any]:
                return list(compare_metadata(MigrationContext.configure(sync), Base.metadata))

            return await connection.run_sync(diff)
    finally:
        await engine.dispose()


async def test_migrations_match_the_models_and_reverse(database_url: str) -> None:
    assert await schema_diff(database_url) == []
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(upgrade, database_url)
    assert await schema_diff(database_url) == []

"""Leasing claimed rows of a work queue (outbox, mail, publications) to the worker that claimed them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


async def lease_rows(
    session: AsyncSession, key: InstrumentedAttribute[Any], keys: Sequence[Any], until_ms: int
) -> None:
    """The rows whose ``key`` is one of ``keys`` are not due again before ``until_ms``: no other
    worker claims them while this one works on them (nothing is done when ``keys`` is empty)."""
    if keys:
        await session.execute(
            update(key.class_)
            .where(key.in_(keys))
            .values(next_attempt_ms=until_ms)
            .execution_options(synchronize_session=False)
        )

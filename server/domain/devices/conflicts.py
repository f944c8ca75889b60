"""Conflicts derived from the check-in records by the shared merge rules (:mod:`sync.merge`), kept
as rows for the organizer. Recomputed for the tickets a batch of records touched."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from sync.records import Record


async def record_conflicts(
    session: AsyncSession, environment: str, records: Sequence[Record], now_ms: int
) -> None:
    """Placeholder until the merge rules land: nothing is derived yet."""
    del session, environment, records, now_ms

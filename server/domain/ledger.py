"""The append-only history of catalog, capacity and hold changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import LedgerEntry


def record(
    session: AsyncSession,
    *,
    environment: str,
    event_id: str | None,
    subject: str,
    subject_id: str,
    action: str,
    actor: str | None,
    now_ms: int,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the ledger in the caller's transaction."""
    session.add(
        LedgerEntry(
            at_ms=now_ms,
            environment=environment,
            event_id=event_id,
            subject=subject,
            subject_id=subject_id,
            action=action,
            actor=actor,
            data=data,
        )
    )

"""The append-only history of catalog, capacity and hold changes."""

from __future__ import annotations

from typing import Any, Protocol

from server.db.models import LedgerEntry
from server.db.rows import Shape

ENTRY = Shape(LedgerEntry, "l")


def entry(
    *,
    environment: str,
    event_id: str | None,
    subject: str,
    subject_id: str,
    action: str,
    actor: str | None,
    now_ms: int,
    data: dict[str, Any] | None = None,
) -> LedgerEntry:
    """One entry of the ledger, to append in the caller's transaction (``session.add``, or a
    :class:`server.db.rows.Shape`)."""
    return ENTRY.new(
        at_ms=now_ms,
        environment=environment,
        event_id=event_id,
        subject=subject,
        subject_id=subject_id,
        action=action,
        actor=actor,
        data=data,
    )


class Recorded(Protocol):
    """A hold or a ticket: what the ledger needs to file an entry under it."""

    id: str
    environment: str
    event_id: str


def about(
    subject: str,
    row: Recorded,
    action: str,
    actor: str | None,
    now_ms: int,
    data: dict[str, Any] | None = None,
) -> LedgerEntry:
    """The entry about ``row`` (a ``hold`` or a ``ticket``), to append in the caller's transaction."""
    return entry(
        environment=row.environment,
        event_id=row.event_id,
        subject=subject,
        subject_id=row.id,
        action=action,
        actor=actor,
        now_ms=now_ms,
        data=data,
    )

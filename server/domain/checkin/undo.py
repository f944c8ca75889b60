"""Admissions a desk took back: the log keeps every scan, ``undone`` records included, while counts
and door lists follow the merge rules (:func:`sync.merge.standing`) and leave out the ``undone``
records and the admissions they take back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from server.db.models import CheckInRecord
from sync.checkin import Direction, Reason, Verdict
from sync.merge import standing
from sync.records import Record

# The columns :func:`without_undone` needs beside what its caller selects.
UNDO_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    CheckInRecord.device_id,
    CheckInRecord.id,
    CheckInRecord.reason,
    CheckInRecord.device_ms,
    CheckInRecord.clock_offset_ms,
)


def without_undone(rows: Sequence[Any]) -> list[Any]:
    """Of a list's scans (rows with ``ticket_id``, ``direction``, ``decision`` and
    :data:`UNDO_COLUMNS`), in the order given, those that stand: every scan but the admissions an
    ``undone`` record takes back and the ``undone`` records themselves."""
    undone = {row.ticket_id for row in rows if row.reason == Reason.UNDONE.value}
    if not undone:
        return list(rows)
    admitted: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.ticket_id in undone and row.decision == Verdict.ADMIT.value:
            admitted[row.ticket_id].append(row)
    gone: set[tuple[str, str]] = set()
    for ticket_id, group in admitted.items():
        kept = {(r.device_id, r.record_id) for r in standing(_record(ticket_id, row) for row in group)}
        gone.update((row.device_id, row.id) for row in group if (row.device_id, row.id) not in kept)
    return [row for row in rows if (row.device_id, row.id) not in gone]


def _record(ticket_id: str, row: Any) -> Record:
    return Record(
        device_id=row.device_id,
        record_id=row.id,
        list_id="",
        ticket_id=ticket_id,
        token_generation=None,
        direction=Direction(row.direction),
        decision=Verdict.ADMIT,
        reason=Reason(row.reason),
        device_ms=row.device_ms,
        clock_offset_ms=row.clock_offset_ms,
    )

"""Pure publishing decisions: which records a list or an offer points to, which earlier records a
pass deletes, and when a failed publication is tried again (the records themselves are built in
:mod:`.records`)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TypeVar

from server.domain import backoff

Ref = TypeVar("Ref")
# A record of the organizer's repository: its collection and record key.
RecordKey = tuple[str, str]


def refs_in_scope(ids: Iterable[str] | None, refs: Mapping[str, Ref]) -> list[Ref] | None:
    """The records a scope of tier ids names: None (every tier) stays None; otherwise the tiers that
    have a public record, in the scope's order (a scope of hidden tiers only names none: an empty
    list, never "every tier")."""
    return None if ids is None else [refs[i] for i in ids if i in refs]


def unwanted(published: Iterable[RecordKey], wanted: Collection[RecordKey]) -> list[RecordKey]:
    """The records written earlier that this pass did not write again, in order: they are deleted."""
    return sorted(key for key in published if key not in wanted)


def retry_delay_ms(failed_before: int, base_ms: int, cap_ms: int) -> int:
    """A failed publication is due again after ``base_ms``, doubling with each failure in a row up to
    ``cap_ms``."""
    return int(backoff.ceiling(failed_before, base_ms, cap_ms))

"""Online verification and check-in: load the facts, ask the shared decision (``sync.checkin``),
write the scan to the append-only log. A check-in locks the ticket's row, so concurrent scans of one
ticket are decided one after the other and exactly one entry is admitted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import CheckInList, CheckInRecord, ListKey, Ticket
from server.domain.checkin.lists import find_list
from server.domain.common import format_datetime, new_id
from server.domain.outbox.service import enqueue
from sync.checkin import (
    Decision,
    Direction,
    ListRules,
    PassCheck,
    PriorScan,
    Reason,
    TicketFacts,
    Verdict,
    decide,
)
from sync.merge import prior_scans
from sync.passes import ListVerifyKey, PassRejected, RejectReason, decode_pass, verify_for_keys
from sync.records import Record

ONLINE_DEVICE = "online"

_CHECKS = {
    RejectReason.MALFORMED: PassCheck.MALFORMED,
    RejectReason.UNSUPPORTED_VERSION: PassCheck.UNSUPPORTED_VERSION,
    RejectReason.UNKNOWN_KEY: PassCheck.NOT_SIGNED_FOR_LIST,
    RejectReason.BAD_SIGNATURE: PassCheck.BAD_SIGNATURE,
}


@dataclass(frozen=True, slots=True)
class Scan:
    token: str
    list_id: str | None
    direction: Direction
    gate: str | None = None
    scanner_did: str | None = None
    metadata: Any = None
    # Who scanned: the server's own door (online) or an enrolled desk, and the desk's record id.
    device_id: str = ONLINE_DEVICE
    record_id: str | None = None
    # A desk's own clock reading and offset, so that the server's record of the scan is exactly the
    # desk's (its later upload is then a plain duplicate).
    device_ms: int | None = None
    clock_offset_ms: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    checklist: CheckInList | None
    ticket: Ticket | None
    record: CheckInRecord | None
    token_generation: int | None = None
    token_ticket_id: str | None = None


def rules_of(checklist: CheckInList) -> ListRules:
    return ListRules(
        list_id=checklist.id,
        tier_ids=frozenset(checklist.tier_ids) if checklist.tier_ids is not None else None,
        allow_multiple_entries=checklist.allow_multiple_entries,
        allow_reentry=checklist.allow_reentry,
        valid_from_ms=checklist.valid_from_ms,
        valid_until_ms=checklist.valid_until_ms,
        active=checklist.status == "active",
    )


def record_of(row: CheckInRecord) -> Record:
    """A logged scan as a sync record (the merge rules' and the wire's form)."""
    return Record(
        device_id=row.device_id,
        record_id=row.id,
        list_id=row.list_id,
        ticket_id=row.ticket_id,
        token_generation=row.token_generation,
        direction=Direction(row.direction),
        decision=Verdict(row.decision),
        reason=Reason(row.reason),
        device_ms=row.device_ms,
        clock_offset_ms=row.clock_offset_ms,
        gate=row.gate,
        scanner_did=row.scanner_did,
    )


def facts_of(ticket: Ticket) -> TicketFacts:
    return TicketFacts(ticket.id, ticket.tier_id, ticket.status, ticket.generation)


async def _list_for(
    session: AsyncSession, environment: str, list_id: str | None, ticket: Ticket | None
) -> CheckInList | None:
    """The named list, or the default list of the ticket's event."""
    if list_id is not None:
        return await find_list(session, environment, list_id)
    if ticket is None:
        return None
    return await session.scalar(
        select(CheckInList).where(CheckInList.event_id == ticket.event_id, CheckInList.is_default.is_(True))
    )


async def _pass_check(session: AsyncSession, checklist: CheckInList, token: str) -> PassCheck:
    """Genuine if signed by any key of the event's lists. Online, the server knows which tiers each
    list admits, so a pass rendered before this list existed (or before it admitted the tier) is
    still judged by the list's current rules; offline scanners hold only their list's keys."""
    rows = await session.execute(
        select(ListKey.key_id, ListKey.public_key, ListKey.list_id)
        .join(CheckInList, CheckInList.id == ListKey.list_id)
        .where(CheckInList.event_id == checklist.event_id)
    )
    keys = {key_id: ListVerifyKey(public_key) for key_id, public_key, _ in rows.all()}
    try:
        verify_for_keys(token, keys)
    except PassRejected as rejected:
        return _CHECKS[rejected.reason]
    return PassCheck.VALID


async def history(session: AsyncSession, ticket_id: str, list_id: str) -> list[PriorScan]:
    """The ticket's admitted scans on the list, from every device, in the merge rules' total order
    (sorted here, not in SQL, so that no database collation can change it)."""
    rows = await session.scalars(
        select(CheckInRecord).where(
            CheckInRecord.ticket_id == ticket_id,
            CheckInRecord.list_id == list_id,
            CheckInRecord.decision == "admit",
        )
    )
    return prior_scans([record_of(row) for row in rows], list_id, ticket_id)


async def evaluate(
    session: AsyncSession, environment: str, scan: Scan, now_ms: int, *, lock: bool
) -> Outcome:
    """Decide one scan without writing anything."""
    try:
        payload = decode_pass(scan.token).payload
    except PassRejected as rejected:
        checklist = await _list_for(session, environment, scan.list_id, None)
        check = _CHECKS[rejected.reason]
        return Outcome(
            decide(check, None, _closed(), None, [], scan.direction, now_ms), checklist, None, None
        )
    query = (
        select(Ticket)
        .where(Ticket.id == payload.ticket_id, Ticket.environment == environment)
        .execution_options(populate_existing=True)
    )
    ticket = await session.scalar(query.with_for_update() if lock else query)
    checklist = await _list_for(session, environment, scan.list_id, ticket)
    if checklist is None:
        decision = decide(
            PassCheck.NOT_SIGNED_FOR_LIST, payload.generation, _closed(), None, [], scan.direction, now_ms
        )
        return Outcome(decision, None, ticket, None, payload.generation, payload.ticket_id)
    check = await _pass_check(session, checklist, scan.token)
    prior = await history(session, ticket.id, checklist.id) if ticket is not None else []
    facts = facts_of(ticket) if ticket is not None else None
    decision = decide(check, payload.generation, rules_of(checklist), facts, prior, scan.direction, now_ms)
    if decision.verdict is Verdict.ATTENTION:
        # Online, a validly signed pass of an unknown ticket cannot be: treat it as invalid.
        decision = Decision(Verdict.REFUSE, Reason.INVALID)
    return Outcome(decision, checklist, ticket, None, payload.generation, payload.ticket_id)


def _closed() -> ListRules:
    return ListRules(list_id="", tier_ids=frozenset(), active=False)


async def check_in(
    session: AsyncSession,
    environment: str,
    app_id: str | None,
    scan: Scan,
    now_ms: int,
    *,
    decided: Outcome | None = None,
) -> Outcome:
    """Decide one scan and log it (admitted or refused). An admitted entry is reported to the app
    that sold the ticket (``ticket.checked-in``). ``decided`` (test-only) skips the locked decision
    and trusts one made earlier in another transaction: the race the lock prevents."""
    outcome = decided or await evaluate(session, environment, scan, now_ms, lock=True)
    checklist, ticket = outcome.checklist, outcome.ticket
    if checklist is None:
        return outcome
    decision = outcome.decision
    record = CheckInRecord(
        id=scan.record_id or new_id("checkin", now_ms),
        device_id=scan.device_id,
        environment=environment,
        event_id=checklist.event_id,
        list_id=checklist.id,
        ticket_id=outcome.token_ticket_id,
        token_generation=outcome.token_generation,
        direction=scan.direction.value,
        decision=decision.verdict.value,
        reason=decision.reason.value,
        gate=scan.gate,
        scanner_did=scan.scanner_did,
        app_id=app_id,
        device_ms=scan.device_ms if scan.device_ms is not None else now_ms,
        clock_offset_ms=scan.clock_offset_ms,
        server_ms=now_ms,
        metadata_=scan.metadata,
    )
    session.add(record)
    await session.flush()
    if ticket is not None and decision.admitted and scan.direction is Direction.ENTRY:
        await enqueue(
            session,
            ticket.app_id,
            environment,
            "ticket.checked-in",
            {
                "ticket": {
                    "id": ticket.id,
                    "eventId": ticket.event_id,
                    "tierId": ticket.tier_id,
                    "ticketNumber": ticket.ticket_number,
                    "status": ticket.status,
                },
                "checkIn": {
                    "id": record.id,
                    "checkInListId": checklist.id,
                    "scannerDid": scan.scanner_did,
                    "gate": scan.gate,
                    "checkedInAt": format_datetime(now_ms),
                },
            },
            now_ms,
        )
    return Outcome(decision, checklist, ticket, record, outcome.token_generation, outcome.token_ticket_id)

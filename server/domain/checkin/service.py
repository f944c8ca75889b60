"""Online verification and check-in: load the facts, ask the shared decision (``sync.checkin``),
write the scan to the append-only log. A check-in locks the ticket's row, so concurrent scans of one
ticket are decided one after the other and exactly one entry is admitted.

A scan of the event's default list reads the ticket, the list, its event and the seller's webhook
URL in one statement (two when a list is named), its prior admissions in a second, and writes the
log entry in a third (the ``ticket.checked-in`` message goes in when the transaction commits).
The lists' public keys come from the process's :class:`~server.domain.issuance.keys.Keyring`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import App, CheckInList, CheckInRecord, Event, Ticket
from server.domain.checkin.lists import LIST_IN_ENVIRONMENT, CheckInListNotFound, find_list
from server.domain.common import compact, format_datetime, new_id
from server.domain.issuance.keys import Keyring
from server.domain.outbox.lifecycle import ticket_event_data
from server.domain.outbox.service import DESTINATION, enqueue_to
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
from sync.passes import DecodedPass, PassRejected, RejectReason, decode_pass, verify_for_keys
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
class Facts:
    """What a scan is decided on: the ticket, the list (named, or the default list of the ticket's
    event), the list's event, and the webhook URL of the app that sold the ticket."""

    ticket: Ticket | None = None
    checklist: CheckInList | None = None
    event: Event | None = None
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    facts: Facts
    record: CheckInRecord | None
    token_generation: int | None = None
    token_ticket_id: str | None = None

    @property
    def checklist(self) -> CheckInList | None:
        return self.facts.checklist

    @property
    def ticket(self) -> Ticket | None:
        return self.facts.ticket


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


# Built once: a scan only binds values to them (no statement construction or cache key per call).
_TICKET = (
    select(Ticket, DESTINATION)
    .join(App, App.id == Ticket.app_id)
    .where(Ticket.id == bindparam("ticket_id"), Ticket.environment == bindparam("environment"))
    .execution_options(populate_existing=True)
)
_WITH_DEFAULT_LIST = (
    _TICKET.add_columns(CheckInList, Event)
    .outerjoin(CheckInList, and_(CheckInList.event_id == Ticket.event_id, CheckInList.is_default.is_(True)))
    .outerjoin(Event, Event.id == CheckInList.event_id)
    .limit(1)
)
_LOCKED = {
    False: (_TICKET, _WITH_DEFAULT_LIST),
    True: tuple(q.with_for_update(of=Ticket) for q in (_TICKET, _WITH_DEFAULT_LIST)),
}
_NAMED_LIST = LIST_IN_ENVIRONMENT.add_columns(Event)
# The log entry is one Core INSERT (its sequence number comes from the database and is not needed
# here): the ORM's unit of work would cost more than the statement.
_LOG = insert(cast(Table, CheckInRecord.__table__))
_LOGGED = [
    (column.name, attribute.key)
    for attribute in inspect(CheckInRecord).column_attrs
    for column in attribute.columns
    if column.name != "seq"
]
_HISTORY = select(CheckInRecord).where(
    CheckInRecord.ticket_id == bindparam("ticket_id"),
    CheckInRecord.list_id == bindparam("list_id"),
    CheckInRecord.decision == "admit",
)


async def _facts(
    session: AsyncSession, environment: str, list_id: str | None, ticket_id: str, *, lock: bool
) -> Facts:
    """The facts of a scan; the ticket's row locked when ``lock``."""
    ticket, with_default_list = _LOCKED[lock]
    params = {"ticket_id": ticket_id, "environment": environment}
    if list_id is None:
        row = (await session.execute(with_default_list, params)).first()
        return Facts() if row is None else Facts(row[0], row[2], row[3], row[1])
    found = (await session.execute(ticket, params)).first()
    named = (await session.execute(_NAMED_LIST, {"list_id": list_id, "environment": environment})).first()
    if named is None:
        raise CheckInListNotFound(f"check-in list {list_id} not found")
    if found is None:
        return Facts(None, named[0], named[1])
    return Facts(found[0], named[0], named[1], found[1])


async def _pass_check(
    session: AsyncSession, keyring: Keyring, event_id: str, decoded: DecodedPass
) -> PassCheck:
    """Genuine if signed by any key of the event's lists. Online, the server knows which tiers each
    list admits, so a pass rendered before this list existed (or before it admitted the tier) is
    still judged by the list's current rules; offline scanners hold only their list's keys."""
    keys = await keyring.event_keys(session, event_id, [s.key_id for s in decoded.signatures])
    try:
        verify_for_keys(decoded, keys)
    except PassRejected as rejected:
        return _CHECKS[rejected.reason]
    return PassCheck.VALID


async def history(session: AsyncSession, ticket_id: str, list_id: str) -> list[PriorScan]:
    """The ticket's admitted scans on the list, from every device, in the merge rules' total order
    (sorted here, not in SQL, so that no database collation can change it)."""
    rows = await session.scalars(_HISTORY, {"ticket_id": ticket_id, "list_id": list_id})
    return prior_scans([record_of(row) for row in rows], list_id, ticket_id)


async def evaluate(
    session: AsyncSession, keyring: Keyring, environment: str, scan: Scan, now_ms: int, *, lock: bool
) -> Outcome:
    """Decide one scan without writing anything."""
    try:
        decoded = decode_pass(scan.token)
    except PassRejected as rejected:
        facts = Facts()
        if scan.list_id is not None:
            named = await find_list(session, environment, scan.list_id)
            facts = Facts(checklist=named, event=await session.get(Event, named.event_id))
        check = _CHECKS[rejected.reason]
        return Outcome(decide(check, None, _closed(), None, [], scan.direction, now_ms), facts, None)
    payload = decoded.payload
    facts = await _facts(session, environment, scan.list_id, payload.ticket_id, lock=lock)
    ticket, checklist = facts.ticket, facts.checklist
    if checklist is None:
        decision = decide(
            PassCheck.NOT_SIGNED_FOR_LIST, payload.generation, _closed(), None, [], scan.direction, now_ms
        )
        return Outcome(decision, facts, None, payload.generation, payload.ticket_id)
    check = await _pass_check(session, keyring, checklist.event_id, decoded)
    prior = await history(session, ticket.id, checklist.id) if ticket is not None else []
    known = facts_of(ticket) if ticket is not None else None
    decision = decide(check, payload.generation, rules_of(checklist), known, prior, scan.direction, now_ms)
    if decision.verdict is Verdict.ATTENTION:
        # Online, a validly signed pass of an unknown ticket cannot be: treat it as invalid.
        decision = Decision(Verdict.REFUSE, Reason.INVALID)
    return Outcome(decision, facts, None, payload.generation, payload.ticket_id)


def _closed() -> ListRules:
    return ListRules(list_id="", tier_ids=frozenset(), active=False)


async def check_in(
    session: AsyncSession,
    keyring: Keyring,
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
    outcome = decided or await evaluate(session, keyring, environment, scan, now_ms, lock=True)
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
    connection = await session.connection()
    await connection.execute(_LOG, {column: getattr(record, key) for column, key in _LOGGED})
    checklist_event = outcome.facts.event
    if (
        ticket is not None
        and checklist_event is not None
        and decision.admitted
        and scan.direction is Direction.ENTRY
    ):
        enqueue_to(
            session,
            ticket.app_id,
            outcome.facts.webhook_url,
            environment,
            "ticket.checked-in",
            ticket_event_data(
                ticket,
                checklist_event.uri,
                checkIn=compact(
                    {
                        "id": record.id,
                        "checkInListId": checklist.id,
                        "scannerDid": scan.scanner_did,
                        "gate": scan.gate,
                        "checkedInAt": format_datetime(now_ms),
                    }
                ),
            ),
            now_ms,
        )
    return Outcome(decision, outcome.facts, record, outcome.token_generation, outcome.token_ticket_id)

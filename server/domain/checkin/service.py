"""Online verification and check-in: verify the pass, load the facts, ask the shared decision
(``sync.checkin``), write the scan to the append-only log.

Nothing of a ticket is read before its pass is known to be genuine: a pass none of whose signatures
verifies by a key of a list made here (forged, or not issued by this server), and a genuine pass of
a ticket the caller may not see (:func:`may_see`), are decided on the pass alone, as ``invalid``,
with no ticket facts. Such a scan is logged only at a list the caller named, without the ticket.

A check-in locks the ticket's row, so concurrent scans of one ticket are decided one after the
other and exactly one entry is admitted.

A scan reads the ticket, the list (the event's default list, or the one named), its event, the
seller's webhook URL and the ticket's prior admissions at the list in one round trip (statements
sent together, each read after the ticket's lock), and writes the log entry and its
``ticket.checked-in`` message in a second. The lists' public keys come from the process's
:class:`~server.domain.issuance.list_keys.Keyring`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.db.engine import Database, Read, Together, Transaction, Unit, driver_of
from server.db.models import CheckInList, CheckInRecord, Event, Ticket, Tier
from server.db.rows import Shape, insert_all
from server.domain import idempotency
from server.domain.caller import Caller
from server.domain.checkin.door import RECORD, record_of, row_of, rules_of
from server.domain.common import new_id
from server.domain.issuance.list_keys import Keyring
from server.domain.outbox.lifecycle import check_in_entry, ticket_event_data
from server.domain.outbox.service import MESSAGE as OUTBOX_MESSAGE
from server.domain.outbox.service import destination_sql, outbox_message
from server.errors import CheckInListNotFound, NotOwner, TicketNotFound
from sync.checkin import (
    Decision,
    Direction,
    ListRules,
    PassCheck,
    PriorScan,
    TicketFacts,
    decide,
    pass_check,
)
from sync.merge import prior_scans
from sync.passes import PassRejected, VerifiedPass, decode_pass, verify_for_keys
from sync.records import ONLINE_DEVICE, Record


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


def facts_of(ticket: Ticket) -> TicketFacts:
    return TicketFacts(ticket.id, ticket.tier_id, ticket.status, ticket.generation)


# Written once: a scan only binds values to them, and sends them straight to the driver.
TICKET, CHECKLIST, EVENT = Shape(Ticket, "t"), Shape(CheckInList, "l"), Shape(Event, "e")
_TICKET_SELECT = f"{TICKET.portable_columns}, {destination_sql('a')}"
_TICKET_FROM = (
    "FROM tickets t JOIN apps a ON a.id = t.app_id WHERE t.id = :ticket_id AND t.environment = :environment"
)
_LIST_SELECT = f"{CHECKLIST.portable_columns}, {EVENT.portable_columns}"
# The default lists of the ticket's event (one, unless a race made two): the facts' read takes the
# first by id, so that every scan goes to the same one; the admissions are read at each, and kept
# at the list the facts name (``admissions``), even if a list the facts' earlier snapshot missed
# turned up before the admissions' read.
_DEFAULT_LISTS = (
    "SELECT l.id FROM tickets t JOIN check_in_lists l ON l.event_id = t.event_id AND l.is_default "
    "WHERE t.id = :ticket_id AND t.environment = :environment"
)
_WITH_DEFAULT_LIST = Read(
    f"{_TICKET_SELECT}, {_LIST_SELECT}",
    "FROM tickets t JOIN apps a ON a.id = t.app_id "
    "LEFT JOIN check_in_lists l ON l.event_id = t.event_id AND l.is_default "
    "LEFT JOIN events e ON e.id = l.event_id "
    "WHERE t.id = :ticket_id AND t.environment = :environment ORDER BY l.id LIMIT 1",
    of="t",
)
_TICKET = Read(_TICKET_SELECT, _TICKET_FROM, of="t")
_NAMED_LIST = Read(
    _LIST_SELECT,
    "FROM check_in_lists l JOIN events e ON e.id = l.event_id "
    "WHERE l.id = :list_id AND e.environment = :environment",
)
_ADMITTED = (
    "FROM check_in_records r WHERE r.ticket_id = :ticket_id AND r.list_id {lists} "
    "AND r.decision = 'admit' AND r.kept"
)
_HISTORY = Read(RECORD.portable_columns, _ADMITTED.format(lists="= :list_id"))
_DEFAULT_HISTORY = Read(RECORD.portable_columns, _ADMITTED.format(lists=f"IN ({_DEFAULT_LISTS})"))
_SCANNED = [("ticket_id", "text"), ("environment", "text")]
# What a scan reads, sent together, by whether it locks the ticket's row: its facts first, then the
# rest, each read after the lock (a scan that waited for it sees what the lock's holder wrote).
AT_DEFAULT_LIST = {
    lock: Together(
        "tickets_scan_reads" + ("_locked" if lock else ""),
        _SCANNED,
        [_WITH_DEFAULT_LIST._replace(lock=lock), _DEFAULT_HISTORY],
    )
    for lock in (False, True)
}
AT_NAMED_LIST = {
    lock: Together(
        "tickets_named_scan_reads" + ("_locked" if lock else ""),
        [*_SCANNED, ("list_id", "text")],
        [_TICKET._replace(lock=lock), _NAMED_LIST, _HISTORY],
    )
    for lock in (False, True)
}


def _list_and_event(row: tuple[Any, ...]) -> tuple[CheckInList | None, Event | None]:
    """The list and its event that end ``row`` (none when the outer join found no list)."""
    tail = row[-(CHECKLIST.width + EVENT.width) :]
    if tail[0] is None:
        return None, None
    return CHECKLIST.load(tail[: CHECKLIST.width]), EVENT.load(tail[CHECKLIST.width :])


def _named(rows: list[tuple[Any, ...]], list_id: str) -> tuple[CheckInList | None, Event | None]:
    """The list a scan names, of the caller's environment, and its event, as read."""
    if not rows:
        raise CheckInListNotFound(f"check-in list {list_id} not found")
    return _list_and_event(rows[0])


async def _facts(
    session: Unit, environment: str, list_id: str | None, ticket_id: str, *, lock: bool
) -> tuple[Facts, list[tuple[Any, ...]]]:
    """The facts of a scan, and the ticket's admissions at the list (rows of :data:`RECORD`), in one
    round trip (:class:`Together`); the ticket's row locked when ``lock``."""
    driver = await driver_of(session)
    params = {"ticket_id": ticket_id, "environment": environment}
    if list_id is None:
        found, admitted = await driver.together(AT_DEFAULT_LIST[lock], params)
        checklist, event = _list_and_event(found[0]) if found else (None, None)
    else:
        found, named, admitted = await driver.together(AT_NAMED_LIST[lock], {**params, "list_id": list_id})
        checklist, event = _named(named, list_id)
    if not found:
        return Facts(None, checklist, event), admitted
    return Facts(TICKET.load(found[0][: TICKET.width]), checklist, event, found[0][TICKET.width]), admitted


async def _genuine(session: Unit, keyring: Keyring, token: str) -> VerifiedPass | PassCheck:
    """The pass, verified by the keys of every list made here; or why it cannot be trusted."""
    try:
        decoded = decode_pass(token)
        known = await keyring.known_keys(session, [s.key_id for s in decoded.signatures])
        return verify_for_keys(decoded, known)
    except PassRejected as rejected:
        return pass_check(rejected.reason)


async def _pass_check(session: Unit, keyring: Keyring, event_id: str, verified: VerifiedPass) -> PassCheck:
    """Valid if signed by any key of the event's lists. Online, the server knows which tiers each
    list admits, so a pass rendered before this list existed (or before it admitted the tier) is
    still judged by the list's current rules; offline scanners hold only their list's keys."""
    keys = await keyring.event_keys(session, event_id, verified.key_ids)
    return PassCheck.VALID if keys.keys() & set(verified.key_ids) else PassCheck.NOT_SIGNED_FOR_LIST


def door_access(caller: Caller, event: Event, ticket: Ticket | None) -> bool:
    """The app that manages the event, or the app that sold the ticket, may scan it; a desk may
    scan for the lists it is enrolled for (checked before the scan)."""
    if caller.device_id is not None:
        return True
    return event.owner_app_id == caller.app_id or (ticket is not None and ticket.app_id == caller.app_id)


def may_see(caller: Caller, event: Event, ticket: Ticket) -> bool:
    """Whether a scan at a list of ``event`` may show ``ticket``: the app that sold it, or the door
    of the ticket's own event."""
    if caller.device_id is None and ticket.app_id == caller.app_id:
        return True
    return ticket.event_id == event.id and door_access(caller, event, None)


def admissions(rows: list[tuple[Any, ...]], list_id: str, ticket_id: str) -> list[PriorScan]:
    """The ticket's admitted scans on the list, from every device (rows of :data:`RECORD`, as read
    with a scan's facts; those of another list are left out), in the merge rules' total order
    (sorted here, not in SQL, so that no database collation can change it)."""
    return prior_scans([record_of(RECORD.load(row)) for row in rows], list_id, ticket_id)


async def evaluate(
    session: Unit, keyring: Keyring, caller: Caller, scan: Scan, now_ms: int, *, lock: bool
) -> Outcome:
    """Decide one scan without writing anything."""
    verified = await _genuine(session, keyring, scan.token)
    if isinstance(verified, PassCheck):
        return await _on_pass_alone(session, caller.environment, scan, verified, now_ms)
    payload = verified.payload
    facts, admitted = await _facts(session, caller.environment, scan.list_id, payload.ticket_id, lock=lock)
    ticket, checklist, event = facts.ticket, facts.checklist, facts.event
    if ticket is None and checklist is None:  # a genuine pass, but of no ticket here
        decision = decide(
            PassCheck.NOT_SIGNED_FOR_LIST, payload.generation, _closed(), None, [], scan.direction, now_ms
        )
        return Outcome(decision, facts, None, payload.generation, payload.ticket_id)
    if ticket is None or checklist is None or event is None or not may_see(caller, event, ticket):
        # Online, a validly signed pass of an unknown ticket cannot be: it is invalid, like one the
        # caller may not see.
        return await _on_pass_alone(session, caller.environment, scan, PassCheck.NOT_SIGNED_FOR_LIST, now_ms)
    check = await _pass_check(session, keyring, checklist.event_id, verified)
    prior = admissions(admitted, checklist.id, ticket.id)
    decision = decide(
        check, payload.generation, rules_of(checklist), facts_of(ticket), prior, scan.direction, now_ms
    )
    return Outcome(decision, facts, None, payload.generation, payload.ticket_id)


async def _on_pass_alone(
    session: Unit, environment: str, scan: Scan, check: PassCheck, now_ms: int
) -> Outcome:
    """A pass that may not reach the ticket, refused on what it is, with no ticket facts: only the
    list the caller named (and its event), where the refusal is logged."""
    facts = Facts()
    if scan.list_id is not None:
        driver = await driver_of(session)
        named = await driver.read(_NAMED_LIST, {"list_id": scan.list_id, "environment": environment})
        checklist, event = _named(named, scan.list_id)
        facts = Facts(checklist=checklist, event=event)
    return Outcome(decide(check, None, _closed(), None, [], scan.direction, now_ms), facts, None)


def _closed() -> ListRules:
    return ListRules(list_id="", tier_ids=frozenset(), active=False)


async def decided_under_lock(
    session: Unit, keyring: Keyring, caller: Caller, scan: Scan, now_ms: int
) -> Outcome:
    """The scan decided in the transaction that logs it, with the ticket's row locked: concurrent
    scans of one ticket decide one after the other."""
    return await evaluate(session, keyring, caller, scan, now_ms, lock=True)


async def check_in(session: Unit, keyring: Keyring, caller: Caller, scan: Scan, now_ms: int) -> Outcome:
    """Decide one scan and log it (admitted or refused). An admitted entry is reported to the app
    that sold the ticket (``ticket.checked-in``)."""
    outcome = await decided_under_lock(session, keyring, caller, scan, now_ms)
    environment = caller.environment
    checklist, ticket = outcome.checklist, outcome.ticket
    if checklist is None:
        return outcome
    decision = outcome.decision
    scanned = Record(
        device_id=scan.device_id,
        record_id=scan.record_id or new_id("checkin", now_ms),
        list_id=checklist.id,
        ticket_id=outcome.token_ticket_id,
        token_generation=outcome.token_generation,
        direction=scan.direction,
        decision=decision.verdict,
        reason=decision.reason,
        device_ms=scan.device_ms if scan.device_ms is not None else now_ms,
        clock_offset_ms=scan.clock_offset_ms,
        gate=scan.gate,
        scanner_did=scan.scanner_did,
    )
    record = row_of(
        scanned,
        environment=environment,
        event_id=checklist.event_id,
        server_ms=now_ms,
        kept=True,  # an online scan is the first record under its key
        app_id=caller.app_id if caller.device_id is None else None,
        metadata=scan.metadata,
    )
    checklist_event = outcome.facts.event
    message = None
    if (
        ticket is not None
        and checklist_event is not None
        and decision.admitted
        and scan.direction is Direction.ENTRY
    ):
        message = outbox_message(
            ticket.app_id,
            outcome.facts.webhook_url,
            environment,
            "ticket.checked-in",
            ticket_event_data(
                ticket,
                checklist_event.uri,
                checkIn=check_in_entry(
                    record.id, checklist.id, now_ms, scanner_did=scan.scanner_did, gate=scan.gate
                ),
            ),
            now_ms,
        )
    await insert_all(await driver_of(session), (RECORD, [record]), (OUTBOX_MESSAGE, [message]))
    return Outcome(decision, outcome.facts, record, outcome.token_generation, outcome.token_ticket_id)


def require_door_access(caller: Caller, outcome: Outcome) -> None:
    """Refuse a caller that may not check in at the scan's event (:func:`door_access`)."""
    event = outcome.facts.event
    if event is not None and not door_access(caller, event, outcome.ticket):
        raise NotOwner("the calling app may not check in tickets of this event")


@dataclass(frozen=True, slots=True)
class Verification:
    """A scan decided without being logged; ``tier``: the ticket's, when the caller may see it."""

    outcome: Outcome
    tier: Tier | None


async def verify(db: Database, keyring: Keyring, caller: Caller, scan: Scan, now_ms: int) -> Verification:
    """Would this pass be admitted now? Read-only: nothing is logged (``verifyTicket``)."""
    async with db.read() as session:
        outcome = await evaluate(session, keyring, caller, scan, now_ms, lock=False)
        require_door_access(caller, outcome)
        ticket = outcome.ticket if outcome.facts.event is not None else None
        tier = await session.get(Tier, ticket.tier_id) if ticket is not None else None
    return Verification(outcome, tier)


async def scan_once(
    db: Database,
    keyring: Keyring,
    caller: Caller,
    scan: Scan,
    now_ms: int,
    *,
    once: idempotency.Once | None,
    encode: Callable[[Outcome], dict[str, Any]],
) -> dict[str, Any]:
    """Decide and log one scan (``checkInTicket``), once per idempotency key. A pass that is not
    genuine, or that the caller may not see, logs nothing (and has no list); a genuine pass of no
    ticket ticketed here is refused. ``encode`` turns the outcome into the answer, which a replay of
    the key answers again."""

    async def scanned(unit: Transaction) -> dict[str, Any]:
        outcome = await check_in(unit, keyring, caller, scan, now_ms)
        if outcome.checklist is not None:
            require_door_access(caller, outcome)
        elif outcome.token_ticket_id is not None:
            raise TicketNotFound("this pass names no ticket of an event ticketed here")
        return encode(outcome)

    return await idempotency.write_once(db, once, now_ms, scanned, db.transaction)

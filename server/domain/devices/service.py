"""Device enrollment and authentication.

An organizer (``tickets device enroll``) makes a one-time enrollment code for one or more check-in
lists of an event; a desk redeems it once for a device credential (``dev_<id>.<secret>``, shown once,
stored only as a hash) scoped to those lists. A revoked device is refused everywhere and told to
wipe its local data."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import CheckInList, CheckInRecord, Device, Event, Ticket, Tier
from server.domain.caller import Caller
from server.domain.checkin.lists import find_list, search
from server.domain.common import new_id
from server.domain.devices.bundles import SETTLE_MS, build_bundle
from server.domain.devices.records import resolve_tickets, store_records
from server.domain.devices.searches import log_search
from server.domain.issuance.list_keys import Keyring, pass_signer
from server.errors import (
    DeviceAuthRequired,
    DeviceNotFound,
    DeviceRevoked,
    EnrollmentCodeInvalid,
    InvalidRequest,
    NotFound,
    TicketNotFound,
)
from sync.records import Record

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_TTL_MS = 24 * 3600 * 1000


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_code(code: str) -> str:
    """Codes are read aloud and typed: case, spaces and dashes do not matter; O/I/L read as 0/1/1."""
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


@dataclass(frozen=True, slots=True)
class Enrollment:
    device: Device
    code: str  # grouped for reading, e.g. 7KQM-29XD-4PTB


@dataclass(frozen=True, slots=True)
class Credential:
    device: Device
    credential: str  # dev_<id>.<secret>, shown once


def enrollment_text(code: str, public_url: str) -> str:
    """What the enrollment QR code carries: the code and where to redeem it."""
    return f"tickets-enroll:{code}@{public_url.rstrip('/')}"


async def create_enrollment(
    session: AsyncSession, environment: str, list_ids: list[str], name: str, now_ms: int
) -> Enrollment:
    lists = list(
        await session.scalars(
            select(CheckInList)
            .join(Event, Event.id == CheckInList.event_id)
            .where(CheckInList.id.in_(list_ids), Event.environment == environment)
        )
    )
    if not list_ids or len(lists) != len(set(list_ids)):
        raise NotFound("every check-in list must exist in this environment")
    events = {c.event_id for c in lists}
    if len(events) != 1:
        raise InvalidRequest("a device scans for the lists of one event")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    device = Device(
        id=new_id("dev", now_ms),
        environment=environment,
        event_id=events.pop(),
        list_ids=sorted(set(list_ids)),
        name=name,
        status="pending",
        code_hash=_digest(raw),
        code_expires_ms=now_ms + CODE_TTL_MS,
        created_ms=now_ms,
    )
    session.add(device)
    return Enrollment(device, "-".join(raw[i : i + 4] for i in range(0, 12, 4)))


async def redeem(session: AsyncSession, code: str, name: str | None, now_ms: int) -> Credential:
    """Exchange a code (once, before it expires) for the device credential."""
    device = await session.scalar(
        select(Device).where(Device.code_hash == _digest(normalize_code(code))).with_for_update()
    )
    if device is None or device.status != "pending" or (device.code_expires_ms or 0) <= now_ms:
        raise EnrollmentCodeInvalid("this enrollment code is unknown, used or expired")
    secret = secrets.token_urlsafe(32)
    device.status = "active"
    device.code_hash = None
    device.code_expires_ms = None
    device.credential_hash = _digest(secret)
    device.enrolled_ms = now_ms
    device.last_seen_ms = now_ms
    if name:
        device.name = name
    return Credential(device, f"{device.id}.{secret}")


async def authenticate(session: AsyncSession, authorization: str | None) -> Device:
    """The device behind ``Authorization: Bearer dev_<id>.<secret>``."""
    scheme, _, credential = (authorization or "").partition(" ")
    device_id, dot, secret = credential.strip().partition(".")
    if scheme.lower() != "bearer" or not dot or not device_id.startswith("dev_"):
        raise DeviceAuthRequired("a device credential is required: Authorization: Bearer dev_<id>.<secret>")
    device = await session.get(Device, device_id)
    if device is None or device.credential_hash is None:
        raise DeviceAuthRequired("unknown device credential")
    if not hmac.compare_digest(device.credential_hash, _digest(secret)):
        raise DeviceAuthRequired("unknown device credential")
    if device.status == "revoked":
        raise DeviceRevoked("this device was revoked: wipe its local data and enroll again")
    return device


async def list_devices(session: AsyncSession, environment: str | None = None) -> list[Device]:
    query = select(Device).order_by(Device.created_ms)
    if environment:
        query = query.where(Device.environment == environment)
    return list(await session.scalars(query))


async def revoke(session: AsyncSession, device_id: str, now_ms: int) -> Device:
    device = await session.get(Device, device_id)
    if device is None:
        raise DeviceNotFound(f"device {device_id} not found")
    # The credential hash is kept: the device is recognised, refused and told to wipe.
    device.status = "revoked"
    device.code_hash = None
    device.revoked_ms = now_ms
    return device


def ensure_device_list(caller: Caller, list_id: str) -> None:
    """Refuse a desk that is not enrolled for the list."""
    if list_id not in caller.device_lists:
        raise DeviceAuthRequired(f"this device is not enrolled for check-in list {list_id}")


@dataclass(frozen=True, slots=True)
class Enrolled:
    credential: Credential
    lists: list[CheckInList]


async def enroll(db: Database, code: str, name: str | None, now_ms: int) -> Enrolled:
    """``enrollDevice``: a code redeemed for the credential, with the lists the desk is enrolled for."""
    async with db.write() as session:
        issued = await redeem(session, code, name, now_ms)
        lists = await session.scalars(select(CheckInList).where(CheckInList.id.in_(issued.device.list_ids)))
        return Enrolled(issued, list(lists))


async def scanner_bundle(
    db: Database, keyring: Keyring, caller: Caller, list_id: str, since: int | None, now_ms: int
) -> dict[str, Any]:
    """``getScannerBundle``: the signed offline bundle of a list the desk is enrolled for."""
    ensure_device_list(caller, list_id)
    async with db.read() as session:
        checklist = await find_list(session, caller.environment, list_id)
        return await build_bundle(session, keyring, checklist, since, now_ms)


async def upload_records(
    db: Database, caller: Caller, records: Sequence[Record], now_ms: int
) -> list[str | None]:
    """``uploadCheckIns``: store a batch of the desk's own records, each once by (device, record
    id); a record of any other device refuses the whole batch. Answers each record's status, None
    for a record that names no ticket of this service."""
    device_id = caller.device_id
    assert device_id is not None  # a desk's call
    try:
        async with db.write() as session:
            lists = await session.execute(
                select(CheckInList.id, CheckInList.event_id).where(CheckInList.id.in_(caller.device_lists))
            )
            resolved = await resolve_tickets(session, caller.environment, records)
            known = [pair for pair in resolved if pair is not None]
            statuses = iter(
                await store_records(session, caller.environment, device_id, known, dict(lists.all()), now_ms)
            )
            device = await session.get(Device, device_id)
            if device is not None:
                device.last_seen_ms = now_ms
    except IntegrityError:
        # A concurrent upload of the same records won the race; a retry answers "duplicate".
        raise InvalidRequest("records were stored concurrently by another upload: retry") from None
    return [None if ticket is None else next(statuses) for ticket in resolved]


@dataclass(frozen=True, slots=True)
class Pulled:
    """A page of a list's records in arrival order; ``cursor`` stops before the first record that
    may not have settled yet."""

    rows: list[CheckInRecord]
    cursor: int
    more: bool


async def pull_records(
    db: Database, caller: Caller, list_id: str, since: int, limit: int, now_ms: int
) -> Pulled:
    """``pullCheckIns``: every device's records for the list after ``since``."""
    ensure_device_list(caller, list_id)
    async with db.read() as session:
        rows = list(
            await session.scalars(
                select(CheckInRecord)
                .where(CheckInRecord.list_id == list_id, CheckInRecord.seq > since)
                .order_by(CheckInRecord.seq)
                .limit(limit)
            )
        )
    cursor = since
    for row in rows:
        if row.server_ms > now_ms - SETTLE_MS:
            break
        cursor = row.seq
    return Pulled(rows, cursor, len(rows) == limit)


@dataclass(frozen=True, slots=True)
class Found:
    """A desk's manual search: the matches, and their tiers' titles."""

    tickets: list[Ticket]
    tier_titles: dict[str, str]


async def search_list(
    db: Database, caller: Caller, list_id: str, query: str, limit: int, now_ms: int
) -> Found:
    """``searchTickets``: tickets the list admits whose number starts with, or attendee name
    contains, the query; the search is logged for the device, without the query."""
    ensure_device_list(caller, list_id)
    async with db.read() as session:
        checklist = await find_list(session, caller.environment, list_id)
        found = await search(session, checklist, query, limit)
        tiers = await session.scalars(select(Tier).where(Tier.event_id == checklist.event_id))
        titles = {tier.id: tier.title for tier in tiers}
    assert caller.device_id is not None
    async with db.write() as session:
        log_search(session, caller.device_id, checklist.id, query, len(found), now_ms)
    return Found(found, titles)


async def searched_ticket_pass(
    db: Database, keyring: Keyring, caller: Caller, list_id: str, ticket_id: str
) -> str:
    """The current pass of a ticket a desk found by search, of its list's event, to be decided like
    a scan (``checkInSearchedTicket``); never answered to the desk."""
    ensure_device_list(caller, list_id)
    async with db.read() as session:
        checklist = await find_list(session, caller.environment, list_id)
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None or ticket.event_id != checklist.event_id:
            raise TicketNotFound("no ticket with this id belongs to the check-in list's event")
        token = (await pass_signer(session, keyring, ticket.event_id)).token(ticket)
    if token is None:
        raise TicketNotFound("no check-in list admits this ticket")
    return token


async def device_of(db: Database, authorization: str | None) -> Device:
    """:func:`authenticate` in its own read transaction."""
    async with db.read() as session:
        return await authenticate(session, authorization)

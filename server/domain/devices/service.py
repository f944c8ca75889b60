"""Device enrollment and authentication.

An organizer (``tickets device enroll``) makes a one-time enrollment code for one or more check-in
lists of an event; a desk redeems it once for a device credential (``dev_<id>.<secret>``, shown once,
stored only as a hash) scoped to those lists. A revoked device is refused everywhere and told to
wipe its local data."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import CheckInList, Device, Event
from server.domain.common import new_id
from server.errors import (
    DeviceAuthRequired,
    DeviceNotFound,
    DeviceRevoked,
    EnrollmentCodeInvalid,
    InvalidRequest,
    NotFound,
)

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


def ensure_list(device: Device, list_id: str) -> None:
    if list_id not in device.list_ids:
        raise DeviceAuthRequired(f"this device is not enrolled for check-in list {list_id}")


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

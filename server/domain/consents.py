"""Organizer consent: an app tickets an organizer's events only while the organizer consents.

A consent is recorded by the first call of an app for an organizer (per environment, as apps are)
that carries the organizer's verified, single-use assertion; the app's later calls rely on it. The
organizer lists and revokes consents (``listOrganizerConsents`` / ``revokeOrganizerConsent``, or
``tickets organizer consents|revoke``); a call carrying a fresh assertion grants it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, SQLColumnExpression, exists, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.uri import parse_record_uri
from server.db.engine import Database
from server.db.models import App, OrganizerConsent
from server.domain.caller import Caller
from server.errors import OrganizerConsentNotFound, OrganizerConsentRequired, OrganizerNotEventAuthority


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent with the DID of the app holding it."""

    row: OrganizerConsent
    app_did: str

    @property
    def active(self) -> bool:
        return self.row.revoked_ms is None


def check_authority(event_uri: str, organizer_did: str) -> None:
    """The organizer of an event is the repository its AT-URI names (a DID, not a handle)."""
    parsed = parse_record_uri(event_uri)
    if parsed is None or parsed.repo != organizer_did:
        raise OrganizerNotEventAuthority(
            "organizerDid must be the DID that the event's AT-URI names (at://<organizerDid>/…)"
        )


async def grant(session: AsyncSession, caller: Caller, now_ms: int) -> None:
    """Record (or renew) the consent that the caller's verified organizer assertion carries."""
    organizer, jti = caller.organizer_did, caller.organizer_jti
    if organizer is None or jti is None:
        raise OrganizerConsentRequired("granting consent takes the organizer's assertion")
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    granted = {"jti": jti, "granted_ms": now_ms, "revoked_ms": None}
    statement = insert(OrganizerConsent).values(
        app_id=caller.app_id, organizer_did=organizer, environment=caller.environment, **granted
    )
    # One statement, so that two first calls at once both record it instead of one failing.
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[OrganizerConsent.app_id, OrganizerConsent.organizer_did], set_=granted
        )
    )


def held_by(app_id: str, organizer_did: SQLColumnExpression[str]) -> ColumnElement[bool]:
    """Whether the app holds the standing consent of ``organizer_did``, as a column of a query
    (its own statement saved where the query reads the event anyway)."""
    return exists().where(
        OrganizerConsent.app_id == app_id,
        OrganizerConsent.organizer_did == organizer_did,
        OrganizerConsent.revoked_ms.is_(None),
    )


def held_by_sql(app_param: str, organizer_column: str) -> str:
    """:func:`held_by` as SQL for statements sent to the driver: ``:app_param`` names the app's id."""
    return (
        f"EXISTS (SELECT 1 FROM {OrganizerConsent.__tablename__} oc WHERE oc.app_id = :{app_param} "  # noqa: S608 (constant names)
        f"AND oc.organizer_did = {organizer_column} AND oc.revoked_ms IS NULL)"
    )


def check(held: bool) -> None:
    """Refuse unless the app holds the organizer's standing consent."""
    if not held:
        raise OrganizerConsentRequired(
            "this app has no consent of the organizer: send organizerAssertionJwt, signed by the organizer"
        )


async def require(session: AsyncSession, app_id: str, organizer_did: str) -> None:
    """Refuse unless the app holds the organizer's standing consent."""
    row = await session.get(OrganizerConsent, (app_id, organizer_did))
    check(row is not None and row.revoked_ms is None)


async def has_any(session: AsyncSession, organizer_did: str) -> bool:
    """Whether any app ever held a consent of the organizer (in any environment)."""
    found = await session.scalar(
        select(OrganizerConsent.app_id).where(OrganizerConsent.organizer_did == organizer_did).limit(1)
    )
    return found is not None


async def list_consents(session: AsyncSession, organizer_did: str, environment: str) -> list[Consent]:
    rows = await session.execute(
        select(OrganizerConsent, App.did)
        .join(App, App.id == OrganizerConsent.app_id)
        .where(OrganizerConsent.organizer_did == organizer_did, OrganizerConsent.environment == environment)
        .order_by(App.did)
    )
    return [Consent(row, did) for row, did in rows.all()]


async def revoke(
    session: AsyncSession, organizer_did: str, app_did: str, environment: str, now_ms: int
) -> Consent:
    """Revoke the app's consent: it changes none of the organizer's events from now on (what it
    sold stays valid). Revoking again keeps the first revocation's time."""
    found = await session.execute(
        select(OrganizerConsent)
        .join(App, App.id == OrganizerConsent.app_id)
        .where(
            OrganizerConsent.organizer_did == organizer_did,
            App.did == app_did,
            App.environment == environment,
        )
        .with_for_update(of=OrganizerConsent)
    )
    row = found.scalar_one_or_none()
    if row is None:
        raise OrganizerConsentNotFound(f"{app_did} holds no consent of this organizer in {environment}")
    if row.revoked_ms is None:
        row.revoked_ms = now_ms
    return Consent(row, app_did)


async def known_organizer(db: Database, organizer_did: str) -> bool:
    """:func:`has_any` in its own read transaction."""
    async with db.read() as session:
        return await has_any(session, organizer_did)


async def organizer_consents(db: Database, organizer_did: str, environment: str) -> list[Consent]:
    """``listOrganizerConsents``: :func:`list_consents` in its own read transaction."""
    async with db.read() as session:
        return await list_consents(session, organizer_did, environment)


async def revoke_consent(
    db: Database, organizer_did: str, app_did: str, environment: str, now_ms: int
) -> Consent:
    """``revokeOrganizerConsent``: :func:`revoke` in its own write transaction."""
    async with db.write() as session:
        return await revoke(session, organizer_did, app_did, environment, now_ms)

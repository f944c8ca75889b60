"""Console sign-in: the operator prints a one-time link (``tickets console link``); opening it once
starts a session scoped to one organizer (or, for an operator link, to every organizer). Only hashes
of the link and session secrets are stored; a session carries its own CSRF token and expires."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import ConsoleLink, ConsoleSession

SESSION_MS = 12 * 3600 * 1000
LINK_DEFAULT_MS = 15 * 60 * 1000


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_link(session: AsyncSession, organizer_did: str | None, expires_in_ms: int, now_ms: int) -> str:
    """A fresh one-time link secret (``None``: an operator link, every organizer)."""
    secret = secrets.token_urlsafe(32)
    session.add(
        ConsoleLink(
            token_hash=_digest(secret),
            organizer_did=organizer_did,
            expires_ms=now_ms + expires_in_ms,
            created_ms=now_ms,
        )
    )
    return secret


async def redeem_link(session: AsyncSession, secret: str, now_ms: int) -> tuple[str, ConsoleSession] | None:
    """Spend a link (once, before it expires) for a new session: its cookie secret and row. None
    when the link is unknown, used or expired."""
    spent: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
        update(ConsoleLink)
        .where(
            ConsoleLink.token_hash == _digest(secret),
            ConsoleLink.used_ms.is_(None),
            ConsoleLink.expires_ms > now_ms,
        )
        .values(used_ms=now_ms)
        .returning(ConsoleLink.organizer_did)
    )
    row = spent.first()
    if row is None:
        return None
    cookie = secrets.token_urlsafe(32)
    started = ConsoleSession(
        token_hash=_digest(cookie),
        organizer_did=row.organizer_did,
        csrf_token=secrets.token_urlsafe(32),
        expires_ms=now_ms + SESSION_MS,
        created_ms=now_ms,
    )
    session.add(started)
    return cookie, started


async def find_session(session: AsyncSession, cookie: str | None, now_ms: int) -> ConsoleSession | None:
    """The live session a cookie names: not expired, not signed out."""
    if not cookie:
        return None
    found = await session.get(ConsoleSession, _digest(cookie))
    if found is None or found.ended_ms is not None or found.expires_ms <= now_ms:
        return None
    return found


def csrf_matches(console: ConsoleSession, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(console.csrf_token.encode(), sent.encode())


async def end_session(session: AsyncSession, cookie: str, now_ms: int) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == _digest(cookie), ConsoleSession.ended_ms.is_(None))
        .values(ended_ms=now_ms)
    )


async def live_session(db: Database, cookie: str | None, now_ms: int) -> ConsoleSession | None:
    """The live session of a console cookie, if any (:func:`find_session`)."""
    async with db.read() as session:
        return await find_session(session, cookie, now_ms)


async def sign_in(db: Database, secret: str, now_ms: int) -> tuple[str, ConsoleSession] | None:
    """A link opened: the new session's cookie and the session (:func:`redeem_link`)."""
    async with db.write() as session:
        return await redeem_link(session, secret, now_ms)


async def sign_out(db: Database, cookie: str, now_ms: int) -> None:
    async with db.write() as session:
        await end_session(session, cookie, now_ms)

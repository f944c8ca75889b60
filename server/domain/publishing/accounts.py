"""Organizer logins: the app password an operator gave for an organizer, and the session tokens it
yields, sealed at rest under a key derived from the server key. Nothing here is ever logged."""

from __future__ import annotations

import hashlib
import json

import nacl.exceptions
import nacl.secret
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.atproto.session import Login, Tokens
from server.db.models import OrganizerAccount
from server.errors import OrganizerLoginMissing

_PURPOSE = b"organizer-login"


class Sealer:
    """Seals organizer secrets with a key of their own, derived from the server key."""

    def __init__(self, server_key: bytes) -> None:
        key = hashlib.blake2b(server_key, person=_PURPOSE, digest_size=nacl.secret.SecretBox.KEY_SIZE)
        self._box = nacl.secret.SecretBox(key.digest())

    def seal(self, secret: bytes) -> bytes:
        return bytes(self._box.encrypt(secret))

    def open(self, sealed: bytes) -> bytes:
        try:
            return bytes(self._box.decrypt(sealed))
        except nacl.exceptions.CryptoError:
            raise OrganizerLoginMissing(
                "a stored organizer login cannot be opened with this server key: log in again"
            ) from None


async def store_login(
    session: AsyncSession,
    sealer: Sealer,
    login: Login,
    pds_url: str,
    tokens: Tokens,
    now_ms: int,
) -> None:
    """Keep (or replace) the login of ``login.did``, with the session it just opened."""
    account = await session.get(OrganizerAccount, login.did)
    if account is None:
        account = OrganizerAccount(did=login.did, created_ms=now_ms)
        session.add(account)
    account.identifier = login.identifier
    account.sealed_password = sealer.seal(login.password.encode())
    account.sealed_tokens = _seal_tokens(sealer, tokens)
    account.pds_url = pds_url
    account.updated_ms = now_ms


async def forget_login(session: AsyncSession, did: str) -> bool:
    account = await session.get(OrganizerAccount, did)
    if account is None:
        return False
    await session.delete(account)
    return True


async def logged_in_organizers(session: AsyncSession) -> list[OrganizerAccount]:
    return list(await session.scalars(select(OrganizerAccount).order_by(OrganizerAccount.did)))


async def load_login(
    session: AsyncSession, sealer: Sealer, did: str, pds_url: str
) -> tuple[Login, Tokens | None]:
    """The login of ``did`` and its session tokens when they belong to ``pds_url`` (an account that
    moved to another PDS logs in again there)."""
    account = await session.get(OrganizerAccount, did)
    if account is None:
        raise OrganizerLoginMissing(
            f"no login for organizer {did}: run `tickets organizer login --did {did}` first"
        )
    login = Login(did, account.identifier, sealer.open(account.sealed_password).decode())
    tokens = None
    if account.sealed_tokens is not None and account.pds_url == pds_url:
        stored = json.loads(sealer.open(account.sealed_tokens))
        tokens = Tokens(stored["access"], stored["refresh"])
    return login, tokens


async def store_tokens(
    session: AsyncSession, sealer: Sealer, did: str, pds_url: str, tokens: Tokens, now_ms: int
) -> None:
    account = await session.get(OrganizerAccount, did)
    if account is not None:
        account.sealed_tokens = _seal_tokens(sealer, tokens)
        account.pds_url = pds_url
        account.updated_ms = now_ms


def _seal_tokens(sealer: Sealer, tokens: Tokens) -> bytes:
    return sealer.seal(json.dumps({"access": tokens.access, "refresh": tokens.refresh}).encode())

"""The organizer's console over real HTTP: sign-in links made as the operator command makes them,
and a browser-like client holding the session cookie."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import httpx

from server.db.engine import Database
from server.domain.organizer import signin

if TYPE_CHECKING:
    from conftest import Harness

MINUTE_MS = 60_000


async def console_link(h: Harness, organizer_did: str | None, expires_in_ms: int = 15 * MINUTE_MS) -> str:
    """A one-time sign-in link (``None``: the operator's), as ``tickets console link`` prints it."""
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.write() as session:
            secret = signin.create_link(session, organizer_did, expires_in_ms, int(time.time() * 1000))
    finally:
        await db.dispose()
    return f"{h.server.url}/console/signin/{secret}"


async def signed_in(h: Harness, organizer_did: str | None) -> httpx.AsyncClient:
    """A client that opened a fresh link and pressed "Sign in": it holds the session cookie."""
    client = httpx.AsyncClient(base_url=h.server.url, timeout=30)
    link = await console_link(h, organizer_did)
    answer = await client.post(link)
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a console page."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]

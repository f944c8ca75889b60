"""Do a thing once per key: apps' idempotency keys (docs/contract.md) and the payment broker's delivery ids.

A replay with the same key and input answers the first result; the same key with another input is
refused. :func:`run_once` (apps' keys): the same key while its first call still runs is a conflict.
The key is claimed in its own short transaction (``in_flight``, leased), the work runs in a second
transaction that also stores the response (``done``), and a refused or failed call gives the key
back, so a retry runs again. A call that crashes leaves a lease that lapses after ``lease_ms``;
until then retries get the conflict. :func:`run_once_atomically` (delivery ids): the key is stored,
``done``, by the work's own transaction, so one transaction does it all and a crash leaves nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from server.db.engine import Database, Driver, Unit, driver_of
from server.db.models import IdempotencyKey
from server.db.rows import Shape
from server.domain.caller import Caller
from server.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidRequest

KEY_PATTERN = re.compile(r"[A-Za-z0-9._:/-]{1,200}")

U = TypeVar("U", bound=Unit)
Work = Callable[[U], Awaitable[dict[str, Any]]]
"""A call's work, in the transaction its :data:`Begin` opens."""
Begin = Callable[[], AbstractAsyncContextManager[U]]
"""How a call's work is given its write transaction: ``Database.write`` (an ORM session) or
``Database.transaction`` (the driver alone, for work that needs no ORM)."""
KEY = Shape(IdempotencyKey, "k")
_KEY = f"SELECT {KEY.columns} FROM idempotency_keys k WHERE k.scope = :scope AND k.key = :key"  # noqa: S608 (constant names)
_GIVE_BACK = "DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key AND state = 'in_flight'"


@dataclass(frozen=True, slots=True)
class Once:
    """An app's or a desk's call that runs once per key: the key, its scope, the digest of the
    call's input and how long its first run holds the key."""

    scope: str
    key: str
    digest: str
    lease_ms: int


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidRequest("idempotencyKey must be 1-200 characters of A-Z a-z 0-9 . _ : / -")
    return key


def app_scope(caller: Caller) -> str:
    """Apps' keys are scoped per app and environment."""
    return f"app:{caller.app_id}:{caller.environment}"


def call_scope(caller: Caller) -> str:
    """A desk's keys are its own; an app's are the app's."""
    return f"device:{caller.device_id}" if caller.device_id else app_scope(caller)


def request_hash(method: str, payload: object) -> str:
    """Digest of the call's input (without the key itself), stable across key order."""
    canonical = json.dumps([method, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _key_row(driver: Driver, scope: str, key: str, *, lock: bool = False) -> IdempotencyKey | None:
    """The key's row as it is (``lock``: locked until the transaction ends), if there is one."""
    rows = await driver.fetch(_KEY + driver.for_update() if lock else _KEY, {"scope": scope, "key": key})
    return KEY.load(rows[0]) if rows else None


def _replay(row: IdempotencyKey | None, digest: str, now_ms: int) -> dict[str, Any] | None:
    """The stored response when the key is done; ``None`` when this call may run. Raises when the
    key belongs to another input or its first call still runs."""
    if row is None:
        return None
    if row.request_hash != digest:
        raise IdempotencyKeyReused("this key was already used with a different input")
    if row.state == "done":
        stored: dict[str, Any] = row.response
        return stored
    if row.lease_until_ms > now_ms:
        raise IdempotencyKeyInFlight("a call with this key is still in progress")
    return None  # the first call died and its lease lapsed: this one takes over


def _row(
    scope: str, key: str, digest: str, state: str, lease_until_ms: int, response: Any, now_ms: int
) -> IdempotencyKey:
    """A key's row, to insert."""
    return KEY.new(
        scope=scope,
        key=key,
        request_hash=digest,
        state=state,
        lease_until_ms=lease_until_ms,
        response=response,
        created_ms=now_ms,
    )


async def _claim(
    db: Database, scope: str, key: str, digest: str, now_ms: int, lease_ms: int
) -> dict[str, Any] | None:
    """Claim the key; answers the stored response when the key is already done. The first look is a
    read, so a duplicate of a call still running is answered at once even where writers queue."""
    async with db.read() as session:
        stored = _replay(await _key_row(await driver_of(session), scope, key), digest, now_ms)
    if stored is not None:
        return stored
    async with db.transaction() as unit:
        driver = await unit.driver()
        row = await _key_row(driver, scope, key, lock=True)
        stored = _replay(row, digest, now_ms)
        if stored is not None:
            return stored
        if row is None:
            claimed = _row(scope, key, digest, "in_flight", now_ms + lease_ms, None, now_ms)
            await KEY.insert(driver, claimed)
        else:
            await KEY.update(driver, row, lease_until_ms=now_ms + lease_ms)
        return None


async def run_once(
    db: Database,
    scope: str,
    key: str,
    digest: str,
    now_ms: int,
    lease_ms: int,
    work: Work[U],
    begin: Begin[U],
) -> tuple[dict[str, Any], bool]:
    """Run ``work`` once per ``(scope, key)``, in a transaction ``begin`` opens; answers
    ``(response, reused)``."""
    try:
        stored = await _claim(db, scope, key, digest, now_ms, lease_ms)
    except IntegrityError:
        # Another call inserted the same key between our read and our insert.
        raise IdempotencyKeyInFlight("a call with this key is still in progress") from None
    if stored is not None:
        return stored, True
    try:
        async with begin() as unit:
            response = await work(unit)
            claimed = KEY.new(scope=scope, key=key)  # the row _claim wrote, found by its key
            await KEY.update(await driver_of(unit), claimed, later=True, state="done", response=response)
    except Exception:
        async with db.transaction() as given_back:
            await (await given_back.driver()).execute(_GIVE_BACK, {"scope": scope, "key": key})
        raise
    return response, False


async def run_once_atomically(
    db: Database, scope: str, key: str, digest: str, now_ms: int, work: Work[U], begin: Begin[U]
) -> tuple[dict[str, Any], bool]:
    """Run ``work`` once per ``(scope, key)`` in one transaction that also stores the key and the
    response; answers ``(response, reused)``. A duplicate arriving while the first still runs is not
    refused: it runs too, and when the first commits, the duplicate's own key insert conflicts, its
    whole transaction rolls back and it answers the first's response. So ``work`` must take the row
    locks it depends on (two runs at once then decide one after the other) and must not mind being
    undone."""
    try:
        async with begin() as unit:
            stored = _replay(await _key_row(await driver_of(unit), scope, key), digest, now_ms)
            if stored is not None:
                return stored, True
            response = await work(unit)
            done = _row(scope, key, digest, "done", now_ms, response, now_ms)
            await KEY.insert(await driver_of(unit), done, later=True)  # after what the work left to flush
    except IntegrityError:
        async with db.read() as session:
            row = await _key_row(await driver_of(session), scope, key)
        stored = _replay(row, digest, now_ms)
        if stored is None:
            raise  # not a concurrent run of the same key
        return stored, True
    return response, False


async def write_once(
    db: Database, once: Once | None, now_ms: int, work: Work[U], begin: Begin[U]
) -> dict[str, Any]:
    """Run ``work`` in a write transaction ``begin`` opens, once per key when the call sends one
    (``once``): a replay answers the first result with ``reused: true``."""
    if once is None:
        async with begin() as unit:
            return await work(unit)
    response, reused = await run_once(
        db, once.scope, once.key, once.digest, now_ms, once.lease_ms, work, begin
    )
    return {**response, "reused": True} if reused else response

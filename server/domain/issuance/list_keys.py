"""Check-in list signing keys: made per list, sealed at rest under the server key, loaded once per
process. A pass is signed, when it is rendered, by the active key of every list that admits it.
Keys are only ever added (a retired key still verifies), so what a process has loaded never goes
stale: it reads again only for a key it has not seen."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import nacl.secret
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Unit, driver_of
from server.db.models import CheckInList, ListKey, Ticket
from server.db.rows import Shape
from server.domain.checkin.door import rules_of
from server.domain.common import new_id
from server.domain.publishing.marks import mark_changed
from server.keyfiles import read_or_create
from server.settings import Settings
from sync.passes import MAX_SIGNATURES, ListSigningKey, ListVerifyKey, PassPayload, encode_pass

SERVER_KEY_FILE = "server-secret.key"
MAX_EVENTS_REMEMBERED = 10_000
MAX_KEYS_REMEMBERED = 100_000
_EVENT_KEYS = (
    "SELECT k.key_id, k.public_key FROM list_keys k JOIN check_in_lists l ON l.id = k.list_id "
    "WHERE l.event_id = :event_id"
)
_KEYS = "SELECT k.key_id, k.public_key FROM list_keys k WHERE k.key_id IN (:key_ids)"
KEY, LIST = Shape(ListKey, "k"), Shape(CheckInList, "l")
_RETIRE_KEYS = (
    "UPDATE list_keys SET status = 'retired', retired_ms = :now_ms "
    "WHERE list_id = :list_id AND status = 'active'"
)
_KEY_TAKEN = "SELECT k.key_id FROM list_keys k WHERE k.key_id = :key_id"
_DEFAULT_LIST = (
    f"SELECT {LIST.columns} FROM check_in_lists l "  # noqa: S608 (constant names)
    "WHERE l.event_id = :event_id AND l.is_default"
)


def load_server_key(settings: Settings) -> bytes:
    """``TICKETS_SECRET_KEY`` (base64 of 32 bytes), else a key file made once in the data folder."""
    if settings.secret_key:
        key = base64.b64decode(settings.secret_key)
        if len(key) != nacl.secret.SecretBox.KEY_SIZE:
            raise SystemExit("TICKETS_SECRET_KEY must be 32 bytes, base64-encoded")
        return key
    return read_or_create(
        settings.data_dir / SERVER_KEY_FILE, lambda: secrets.token_bytes(nacl.secret.SecretBox.KEY_SIZE)
    )


@dataclass
class Keyring:
    """Seals list keys at rest and caches the unsealed ones, and the public keys of each event's
    lists (they never change once made)."""

    server_key: bytes
    _box: nacl.secret.SecretBox = field(init=False, repr=False)
    _signing: dict[tuple[str, str], ListSigningKey] = field(default_factory=dict, repr=False)
    _verify: dict[str, dict[str, ListVerifyKey]] = field(default_factory=dict, repr=False)
    _known: dict[str, ListVerifyKey] = field(default_factory=dict, repr=False)
    # Events seen with a committed default list: a default list is never deleted nor made another kind.
    _with_default_list: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._box = nacl.secret.SecretBox(self.server_key)

    def knows_default_list(self, event_id: str) -> bool:
        return event_id in self._with_default_list

    def note_default_list(self, event_id: str) -> None:
        if len(self._with_default_list) >= MAX_EVENTS_REMEMBERED:
            self._with_default_list.clear()
        self._with_default_list.add(event_id)

    def seal(self, seed: bytes) -> bytes:
        return bytes(self._box.encrypt(seed))

    def unseal(self, row: ListKey) -> ListSigningKey:
        cached = self._signing.get((row.list_id, row.key_id))
        if cached is None:
            cached = ListSigningKey.from_seed(self._box.decrypt(row.sealed_seed))
            self._signing[(row.list_id, row.key_id)] = cached
        return cached

    async def event_keys(
        self, session: Unit, event_id: str, key_ids: Collection[str]
    ) -> dict[str, ListVerifyKey]:
        """The public keys of every list of the event, by key id: read again only when one of
        ``key_ids`` (those a pass names) is not among them, so the answer is what the database
        holds for each of ``key_ids``."""
        known = self._verify.get(event_id)
        if known is None or not known.keys() >= set(key_ids):
            rows = await (await driver_of(session)).fetch(_EVENT_KEYS, {"event_id": event_id})
            known = {key_id: ListVerifyKey(public_key) for key_id, public_key in rows}
            if len(self._verify) >= MAX_EVENTS_REMEMBERED:
                self._verify.clear()
            self._verify[event_id] = known
        return known

    async def known_keys(self, session: Unit, key_ids: Collection[str]) -> dict[str, ListVerifyKey]:
        """The public keys, among ``key_ids``, of any list this server made (key ids are unique
        across lists): a pass none of whose signatures is by one of them was not issued here."""
        missing = [key_id for key_id in key_ids if key_id not in self._known]
        if missing:
            rows = await (await driver_of(session)).fetch_in(_KEYS, {}, "key_ids", missing)
            if len(self._known) >= MAX_KEYS_REMEMBERED:
                self._known.clear()
            self._known.update({key_id: ListVerifyKey(public_key) for key_id, public_key in rows})
        return {key_id: self._known[key_id] for key_id in key_ids if key_id in self._known}


async def add_list_key(session: Unit, keyring: Keyring, list_id: str, now_ms: int) -> ListKey:
    """A new active key for the list; the previous active key (if any) retires but still verifies."""
    driver = await driver_of(session)
    await driver.execute(_RETIRE_KEYS, {"list_id": list_id, "now_ms": now_ms})
    signing = ListSigningKey.generate()
    while await driver.fetch(_KEY_TAKEN, {"key_id": signing.key_id}):
        signing = ListSigningKey.generate()  # key ids are 4 bytes: unique across lists, never reused
    row = KEY.new(
        list_id=list_id,
        key_id=signing.key_id,
        public_key=signing.public_key,
        sealed_seed=keyring.seal(signing.seed),
        status="active",
        created_ms=now_ms,
        retired_ms=None,
    )
    await KEY.insert(driver, row)
    return row


async def ensure_default_list(session: Unit, keyring: Keyring, event_id: str, now_ms: int) -> CheckInList:
    """Every ticketed event has a default check-in list admitting all its tiers."""
    rows = await (await driver_of(session)).fetch(_DEFAULT_LIST, {"event_id": event_id})
    if rows:
        keyring.note_default_list(event_id)
        return LIST.load(rows[0])
    return await add_list(
        session, keyring, event_id, now_ms, name="Main entrance", is_default=True, tier_ids=None
    )


async def default_list_made(session: Unit, keyring: Keyring, event_id: str, now_ms: int) -> None:
    """:func:`ensure_default_list` for callers that need only that it exists: no statement for an
    event this process has seen with one (found, so not made by a transaction that may yet roll
    back)."""
    if not keyring.knows_default_list(event_id):
        await ensure_default_list(session, keyring, event_id, now_ms)


async def add_list(session: Unit, keyring: Keyring, event_id: str, now_ms: int, **fields: Any) -> CheckInList:
    """A new active check-in list of the event with its first signing key; the event's public
    records are marked changed. ``fields`` are the list's other column values. Written by the
    driver: the list is as written, in no session."""
    made = LIST.new(
        id=new_id("checklist", now_ms),
        event_id=event_id,
        status="active",
        created_ms=now_ms,
        updated_ms=now_ms,
        **fields,
    )
    await LIST.insert(await driver_of(session), made)
    await add_list_key(session, keyring, made.id, now_ms)
    await mark_changed(session, event_id)
    return made


def admits_tier(checklist: CheckInList, tier_id: str) -> bool:
    rules = rules_of(checklist)
    return rules.active and rules.admits_tier(tier_id)


@dataclass(frozen=True, slots=True)
class PassSigner:
    """Signs the passes of one event: the active key of every active check-in list, with the tiers
    each admits."""

    keys: list[tuple[CheckInList, ListSigningKey]]

    def token(self, ticket: Ticket) -> str | None:
        """The ticket's pass at its current generation, signed for every list admitting its tier (the
        first ``MAX_SIGNATURES`` by list id); ``None`` when no list admits it. Deterministic: the same
        ticket and keys always give the same text."""
        payload = PassPayload(ticket.id, ticket.generation, ticket.created_ms // 1000)
        admitting = [key for checklist, key in self.keys if admits_tier(checklist, ticket.tier_id)]
        if not admitting:
            return None
        return encode_pass(payload, [key.sign(payload) for key in admitting[:MAX_SIGNATURES]])


async def pass_signer(session: AsyncSession, keyring: Keyring, event_id: str) -> PassSigner:
    rows = await session.execute(
        select(CheckInList, ListKey)
        .join(ListKey, ListKey.list_id == CheckInList.id)
        .where(CheckInList.event_id == event_id, ListKey.status == "active")
        .order_by(CheckInList.id)
    )
    return PassSigner([(checklist, keyring.unseal(key)) for checklist, key in rows])


def pass_access_key(keyring: Keyring, ticket: Ticket, generation: int | None = None) -> str:
    """The secret part of a ticket's pass-page address. Bound to the generation (the current one
    unless named): a transfer retires the old address together with the old pass."""
    made_for = ticket.generation if generation is None else generation
    mac = hmac.new(keyring.server_key, f"pass-page:{ticket.id}:{made_for}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()[:15]).decode().lower()

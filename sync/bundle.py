"""Offline bundles: everything a desk needs to decide at the door without the server, for one
check-in list — its rules, its public keys, and a ticket index that a lost device cannot read.

Privacy of the ticket index: each entry is found by a hash of the ticket id and sealed
(XSalsa20-Poly1305) under a key derived from the ticket id. Ticket ids carry 80 random bits and
appear only inside passes, so an entry opens only for someone holding that ticket's pass; the
bundle as a whole reveals how many tickets there are and nothing else about them.

Size: an entry names its tier by an 8-byte reference (a hash of the tier id, like the lookup key)
that the desk resolves with the bundle's tier table (every tier of the event, in every bundle), and
its status by one byte: about 63 bytes an entry before base64 (format 2; format 1 carried the tier
id and status as text, about 97).

Integrity: the bundle is signed by the list's active key (its own signing context), with a sequence
number and issue time, so a desk can forward it to other desks (hub mode) and nobody on the way
can change an entry, drop a revocation unnoticed, or pass off an old bundle as new.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions

from sync.passes import ListSigningKey, ListVerifyKey, ticket_id_to_bytes

BUNDLE_CONTEXT = b"atmosphere-tickets/bundle/v1\x00"
FORMAT_VERSION = 2
LOOKUP_BYTES = 8
TIER_REF_BYTES = 8
NONCE_BYTES = nacl.bindings.crypto_secretbox_NONCEBYTES
SEP = "\x1f"
# A ticket's status as one byte of an entry: its index here.
STATUSES = ("active", "voided", "refunded")


class BundleError(ValueError):
    """A bundle or entry that is malformed, tampered with, or not signed by the list."""


@dataclass(frozen=True, slots=True)
class TicketEntry:
    """What a desk may know of one ticket, once it holds the ticket's pass."""

    ticket_id: str
    ticket_number: str
    display_name: str
    tier_id: str
    status: str
    generation: int


@functools.lru_cache(maxsize=1024)
def tier_ref(tier_id: str) -> bytes:
    """How an entry names its tier (an event has a few tiers and a bundle names them 50,000 times)."""
    return hashlib.blake2b(tier_id.encode(), digest_size=TIER_REF_BYTES, person=b"att-tier").digest()


def tier_refs(tier_ids: Iterable[str]) -> dict[bytes, str]:
    """Tier ids by reference, for a bundle's tier table (raises if two of them share a reference)."""
    distinct = set(tier_ids)
    refs = {tier_ref(tier_id): tier_id for tier_id in distinct}
    if len(refs) != len(distinct):
        raise BundleError("two tiers share an entry reference")
    return refs


def lookup_key(ticket_id: str) -> bytes:
    return _lookup_of(ticket_id_to_bytes(ticket_id))


# Of a ticket id's 16 raw bytes (:func:`sync.passes.ticket_id_to_bytes`), made once an entry.
def _lookup_of(raw_id: bytes) -> bytes:
    return hashlib.blake2b(raw_id, digest_size=LOOKUP_BYTES, person=b"att-lookup").digest()


def _entry_key(raw_id: bytes) -> bytes:
    return hashlib.blake2b(raw_id, digest_size=32, person=b"att-entry").digest()


def _nonce(raw_id: bytes, version: int) -> bytes:
    return hashlib.blake2b(
        raw_id + version.to_bytes(8, "big"), digest_size=NONCE_BYTES, person=b"att-nonce"
    ).digest()


def seal_entry(entry: TicketEntry, version: int) -> bytes:
    """``lookup (8) | version (8) | sealed fields``; ``version`` must change whenever the entry does.
    The fields: ``tier reference (8) | status (1) | number 0x1F name 0x1F generation`` (UTF-8)."""
    if entry.status not in STATUSES:
        raise BundleError(f"no entry status {entry.status!r}")
    text = SEP.join((entry.ticket_number, entry.display_name, str(entry.generation)))
    plain = tier_ref(entry.tier_id) + bytes((STATUSES.index(entry.status),)) + text.encode()
    raw_id = ticket_id_to_bytes(entry.ticket_id)
    sealed = nacl.bindings.crypto_secretbox(plain, _nonce(raw_id, version), _entry_key(raw_id))
    return _lookup_of(raw_id) + version.to_bytes(8, "big") + sealed


def open_entry(ticket_id: str, blob: bytes, tiers: Mapping[bytes, str]) -> TicketEntry:
    """Open a sealed entry with the ticket id read from its pass; ``tiers`` resolves its tier
    reference (:func:`tier_refs` of the bundle's tier table)."""
    version = int.from_bytes(blob[LOOKUP_BYTES : LOOKUP_BYTES + 8], "big")
    raw_id = ticket_id_to_bytes(ticket_id)
    try:
        plain = nacl.bindings.crypto_secretbox_open(
            blob[LOOKUP_BYTES + 8 :], _nonce(raw_id, version), _entry_key(raw_id)
        )
    except nacl.exceptions.CryptoError as exc:
        raise BundleError("the entry does not open with this ticket id") from exc
    try:
        tier_id = tiers[plain[:TIER_REF_BYTES]]
        status = STATUSES[plain[TIER_REF_BYTES]]
        number, name, generation = plain[TIER_REF_BYTES + 1 :].decode().split(SEP)
        return TicketEntry(ticket_id, number, name, tier_id, status, int(generation))
    except (KeyError, IndexError, ValueError) as exc:
        raise BundleError("the entry names a tier or status this bundle does not know") from exc


def pack_entries(blobs: Iterable[bytes]) -> str:
    """Entries as one base64 string: each is ``length (2 bytes) | entry``."""
    return base64.b64encode(b"".join(len(b).to_bytes(2, "big") + b for b in blobs)).decode()


def unpack_entries(packed: str) -> dict[bytes, bytes]:
    """Entries by lookup key."""
    try:
        raw = base64.b64decode(packed, validate=True)
    except ValueError as exc:
        raise BundleError("entries are not base64") from exc
    entries: dict[bytes, bytes] = {}
    at = 0
    while at < len(raw):
        if at + 2 > len(raw):
            raise BundleError("truncated entry length")
        size = int.from_bytes(raw[at : at + 2], "big")
        blob = raw[at + 2 : at + 2 + size]
        if len(blob) != size or size < LOOKUP_BYTES + 8:
            raise BundleError("truncated entry")
        entries[blob[:LOOKUP_BYTES]] = blob
        at += 2 + size
    return entries


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_bundle(body: Mapping[str, Any], key: ListSigningKey) -> dict[str, Any]:
    """The body plus ``signature`` {keyId, sig} over its canonical JSON."""
    digest = hashlib.sha256(_canonical(body)).digest()
    signature = {
        "keyId": key.key_id,
        "sig": base64.b64encode(key.sign_detached(BUNDLE_CONTEXT + digest)).decode(),
    }
    return {**body, "signature": signature}


def verify_bundle(bundle: Mapping[str, Any], keys: Mapping[str, ListVerifyKey]) -> dict[str, Any]:
    """The body of a bundle whose signature verifies with one of ``keys``; else :class:`BundleError`."""
    signature = bundle.get("signature")
    if not isinstance(signature, dict):
        raise BundleError("the bundle is not signed")
    key = keys.get(str(signature.get("keyId")))
    if key is None:
        raise BundleError("the bundle is signed by a key this desk does not know")
    body = {k: v for k, v in bundle.items() if k != "signature"}
    digest = hashlib.sha256(_canonical(body)).digest()
    try:
        raw = base64.b64decode(str(signature.get("sig")), validate=True)
    except ValueError as exc:
        raise BundleError("the bundle signature is not base64") from exc
    if len(raw) != 64 or not key.verifies(BUNDLE_CONTEXT + digest, raw):
        raise BundleError("the bundle signature does not verify")
    return body


@dataclass
class TicketIndex:
    """A desk's merged view of the bundle entries it has received (full, then deltas), and of the
    tiers they name (every bundle carries the event's whole tier table; tiers are never removed)."""

    entries: dict[bytes, bytes] = field(default_factory=dict)
    tiers: dict[bytes, str] = field(default_factory=dict)

    def learn_tiers(self, tier_ids: Iterable[str]) -> None:
        self.tiers.update(tier_refs(tier_ids))

    def apply(self, packed: str) -> int:
        """Upsert entries, keeping the newest version of each; answers how many changed."""
        changed = 0
        for lookup, blob in unpack_entries(packed).items():
            current = self.entries.get(lookup)
            if (
                current is None
                or blob[LOOKUP_BYTES : LOOKUP_BYTES + 8] > current[LOOKUP_BYTES : LOOKUP_BYTES + 8]
            ):
                self.entries[lookup] = blob
                changed += 1
        return changed

    def find(self, ticket_id: str) -> TicketEntry | None:
        blob = self.entries.get(lookup_key(ticket_id))
        return None if blob is None else open_entry(ticket_id, blob, self.tiers)

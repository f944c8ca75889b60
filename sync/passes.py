"""Pass tokens: a compact, versioned binary payload signed once per check-in list, as QR-friendly text.

Layout (version 1, see ``docs/token-spec.md``)::

    core       = version(1) | ticket id(16) | generation(varint) | issued_at(varint, 0 = absent)
    token      = core | signature count(1) | count x (key id(4) | Ed25519 signature(64))
    signed     = SIGNING_CONTEXT | core

Each signature covers the core only, so one list's signature can be added or replaced without
touching the others. The text form is RFC 4648 base32, uppercase, without padding.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import nacl.bindings
import nacl.exceptions

FORMAT_VERSION = 1
SIGNING_CONTEXT = b"atmosphere-tickets/pass/v1\x00"
MAX_SIGNATURES = 8
MAX_VARINT = (1 << 63) - 1
"""Largest generation or issue time: fits a signed 64-bit database column."""

KEY_ID_BYTES = 4
SIGNATURE_BYTES = 64
TICKET_ID_BYTES = 16
_ENTRY_BYTES = KEY_ID_BYTES + SIGNATURE_BYTES
_VARINT_MAX_BYTES = 9  # 9 x 7 bits: exactly MAX_VARINT
_MAX_TOKEN_BYTES = 1 + TICKET_ID_BYTES + 2 * _VARINT_MAX_BYTES + 1 + MAX_SIGNATURES * _ENTRY_BYTES
_MAX_TEXT_CHARS = -(-_MAX_TOKEN_BYTES * 8 // 5)

_TICKET_PREFIX = "ticket_"
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_TICKET_ID = re.compile(r"ticket_[0-7][0-9a-hjkmnp-tv-z]{25}")
# Both base32 alphabets are decoded by translating to the digits of int(text, 32), which runs in C.
_INT_DIGITS = "0123456789abcdefghijklmnopqrstuv"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_CROCKFORD_TO_INT = str.maketrans(_CROCKFORD, _INT_DIGITS)
_CROCKFORD_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _rfc4648_to_int_table() -> bytes:
    """A ``bytes.translate`` table: base32 letters of either case to int() digits, any other byte to
    "!", which int() refuses (so no sign, underscore or inner space slips through)."""
    table = bytearray(b"!" * 256)
    for letter, digit in zip(_RFC4648, _INT_DIGITS, strict=True):
        table[ord(letter)] = table[ord(letter.lower())] = ord(digit)
    return bytes(table)


_RFC4648_TO_INT = _rfc4648_to_int_table()


class RejectReason(StrEnum):
    """Stable codes for why a pass was refused; scanners and the server report these verbatim."""

    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"


class PassRejected(Exception):
    """A pass that must not be honoured, with a stable ``reason`` code."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class PassFormatError(PassRejected):
    """The text is not a well-formed token of a supported version."""

    def __init__(self, detail: str, reason: RejectReason = RejectReason.MALFORMED) -> None:
        super().__init__(reason, detail)


def ticket_id_to_bytes(ticket_id: str) -> bytes:
    """``ticket_`` + 26 lowercase Crockford characters -> the 16 raw bytes of its 128-bit value."""
    if not _TICKET_ID.fullmatch(ticket_id):
        raise ValueError(f"not a ticket id: {ticket_id!r}")
    digits = ticket_id[len(_TICKET_PREFIX) :].translate(_CROCKFORD_TO_INT)
    return int(digits, 32).to_bytes(TICKET_ID_BYTES, "big")


def ticket_id_from_bytes(raw: bytes) -> str:
    """16 raw bytes -> ``ticket_`` + 26 lowercase Crockford characters (two per 10 bits)."""
    if len(raw) != TICKET_ID_BYTES:
        raise ValueError(f"a ticket id is {TICKET_ID_BYTES} bytes, got {len(raw)}")
    value = int.from_bytes(raw, "big")
    return _TICKET_PREFIX + "".join(
        [_CROCKFORD_PAIRS[value >> shift & 0x3FF] for shift in range(120, -1, -10)]
    )


def key_id_for(public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key: first 4 bytes of its SHA-256, lowercase hex."""
    return hashlib.sha256(public_key).digest()[:KEY_ID_BYTES].hex()


@dataclass(frozen=True, slots=True)
class PassPayload:
    """What a pass asserts: this ticket, at this generation. Deliberately nothing else."""

    ticket_id: str
    generation: int
    issued_at: int | None = None
    """Unix seconds; informational only (revocation goes by generation)."""

    def __post_init__(self) -> None:
        if not _TICKET_ID.fullmatch(self.ticket_id):
            raise ValueError(f"not a ticket id: {self.ticket_id!r}")
        if not 0 <= self.generation <= MAX_VARINT:
            raise ValueError(f"generation out of range: {self.generation}")
        if self.issued_at is not None and not 1 <= self.issued_at <= MAX_VARINT:
            raise ValueError(f"issued_at out of range: {self.issued_at}")

    def core(self) -> bytes:
        """The signed part of the token: version, ticket id, generation, issue time."""
        return b"".join(
            (
                bytes((FORMAT_VERSION,)),
                ticket_id_to_bytes(self.ticket_id),
                _varint(self.generation),
                _varint(self.issued_at or 0),
            )
        )


@dataclass(frozen=True, slots=True)
class PassSignature:
    """One check-in list's signature over a pass core."""

    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            raise ValueError(f"a key id is {2 * KEY_ID_BYTES} lowercase hex digits: {self.key_id!r}")
        if len(self.signature) != SIGNATURE_BYTES:
            raise ValueError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class DecodedPass:
    """A structurally valid token; nothing about it is trusted until verified."""

    payload: PassPayload
    signatures: tuple[PassSignature, ...]
    core: bytes = field(repr=False)
    """The signed bytes exactly as they appeared in the token."""


@dataclass(frozen=True, slots=True)
class VerifiedPass:
    """A pass whose signatures by the given keys all verified; ``key_ids`` lists those keys."""

    payload: PassPayload
    key_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListVerifyKey:
    """The public half of a check-in list's key pair: all a scanner holds."""

    public_key: bytes
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.public_key) != nacl.bindings.crypto_sign_PUBLICKEYBYTES:
            raise ValueError("an Ed25519 public key is 32 bytes")
        object.__setattr__(self, "key_id", key_id_for(self.public_key))

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.public_key)
        except nacl.exceptions.BadSignatureError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class ListSigningKey:
    """A check-in list's private key, kept by the server; ``seed`` is what gets stored."""

    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False)
    key_id: str = field(init=False)
    _secret: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.seed) != nacl.bindings.crypto_sign_SEEDBYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        public_key, secret = nacl.bindings.crypto_sign_seed_keypair(self.seed)
        object.__setattr__(self, "public_key", public_key)
        object.__setattr__(self, "key_id", key_id_for(public_key))
        object.__setattr__(self, "_secret", secret)

    @classmethod
    def generate(cls) -> ListSigningKey:
        """A fresh key pair from the operating system's random source."""
        return cls(secrets.token_bytes(nacl.bindings.crypto_sign_SEEDBYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> ListSigningKey:
        """The key pair of a stored 32-byte seed."""
        return cls(seed)

    def verify_key(self) -> ListVerifyKey:
        """The public key to hand to scanners."""
        return ListVerifyKey(self.public_key)

    def sign(self, payload: PassPayload) -> PassSignature:
        """This list's signature over ``payload``."""
        return self._sign_core(payload.core())

    def sign_detached(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message`` exactly; callers prefix their own signing context."""
        return nacl.bindings.crypto_sign(message, self._secret)[:SIGNATURE_BYTES]

    def _sign_core(self, core: bytes) -> PassSignature:
        signed = nacl.bindings.crypto_sign(SIGNING_CONTEXT + core, self._secret)
        return PassSignature(self.key_id, signed[:SIGNATURE_BYTES])


def keys_by_id(keys: Iterable[ListVerifyKey]) -> dict[str, ListVerifyKey]:
    """The lookup table ``verify_for_keys`` takes, built once per check-in list."""
    return {key.key_id: key for key in keys}


def encode_pass(payload: PassPayload, signatures: Sequence[PassSignature]) -> str:
    """The token text; signatures are written in the given order and not verified here."""
    return _encode(payload.core(), signatures)


def decode_pass(text: str) -> DecodedPass:
    """Parse token text (any case, surrounding whitespace ignored); raises only ``PassFormatError``."""
    raw = _from_text(text)
    if raw[0] != FORMAT_VERSION:
        raise PassFormatError(f"token version {raw[0]}", RejectReason.UNSUPPORTED_VERSION)
    end = 1 + TICKET_ID_BYTES
    if len(raw) < end:
        raise PassFormatError("truncated ticket id")
    generation, end = _read_varint(raw, end)
    issued_at, end = _read_varint(raw, end)
    core = raw[:end]
    if len(raw) <= end:
        raise PassFormatError("missing signature count")
    count = raw[end]
    if not 1 <= count <= MAX_SIGNATURES:
        raise PassFormatError(f"signature count {count} outside 1..{MAX_SIGNATURES}")
    end += 1
    if len(raw) != end + count * _ENTRY_BYTES:
        raise PassFormatError(f"{len(raw) - end} signature bytes for {count} signatures")
    signatures = tuple(
        PassSignature(raw[at : at + KEY_ID_BYTES].hex(), raw[at + KEY_ID_BYTES : at + _ENTRY_BYTES])
        for at in range(end, len(raw), _ENTRY_BYTES)
    )
    if len({signature.key_id for signature in signatures}) != count:
        raise PassFormatError("two signatures with one key id")
    payload = PassPayload(ticket_id_from_bytes(raw[1 : 1 + TICKET_ID_BYTES]), generation, issued_at or None)
    return DecodedPass(payload, signatures, core)


def verify_for_keys(token: str | DecodedPass, keys: Mapping[str, ListVerifyKey]) -> VerifiedPass:
    """Accept a pass signed by at least one of ``keys`` (typically one check-in list's keys).

    ``token`` is the scanned text or what ``decode_pass`` returned for it.
    Every signature whose key id is in ``keys`` must verify; signatures by other keys are ignored.
    Raises ``PassRejected`` with reason ``malformed``, ``unsupported_version``, ``unknown_key``
    (no signature by any of ``keys``) or ``bad_signature``.
    """
    decoded = decode_pass(token) if isinstance(token, str) else token
    message = SIGNING_CONTEXT + decoded.core
    verified = []
    for signature in decoded.signatures:
        key = keys.get(signature.key_id)
        if key is None:
            continue
        if not key.verifies(message, signature.signature):
            raise PassRejected(RejectReason.BAD_SIGNATURE, f"signature by key {signature.key_id} is invalid")
        verified.append(signature.key_id)
    if not verified:
        raise PassRejected(RejectReason.UNKNOWN_KEY, "no signature by any of the given keys")
    return VerifiedPass(decoded.payload, tuple(verified))


def resign(text: str, signing_key: ListSigningKey, drop_key_ids: Collection[str] = ()) -> str:
    """Add (or replace) ``signing_key``'s signature and drop those of ``drop_key_ids``; others stay.

    Existing signatures are carried over unverified. Raises ``PassFormatError`` for a malformed
    token and ``ValueError`` if the pass would carry more than ``MAX_SIGNATURES``.
    """
    decoded = decode_pass(text)
    kept = [
        signature
        for signature in decoded.signatures
        if signature.key_id != signing_key.key_id and signature.key_id not in drop_key_ids
    ]
    return _encode(decoded.core, [*kept, signing_key._sign_core(decoded.core)])


def _encode(core: bytes, signatures: Sequence[PassSignature]) -> str:
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise ValueError(f"a pass carries 1..{MAX_SIGNATURES} signatures, got {len(signatures)}")
    if len({signature.key_id for signature in signatures}) != len(signatures):
        raise ValueError("two signatures with one key id")
    raw = b"".join(
        (
            core,
            bytes((len(signatures),)),
            *(bytes.fromhex(signature.key_id) + signature.signature for signature in signatures),
        )
    )
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _from_text(text: str) -> bytes:
    stripped = text.strip()
    if not stripped:
        raise PassFormatError("empty token")
    if len(stripped) > _MAX_TEXT_CHARS:
        raise PassFormatError(f"token longer than {_MAX_TEXT_CHARS} characters")
    try:
        value = int(stripped.encode("ascii").translate(_RFC4648_TO_INT), 32)
    except ValueError:  # UnicodeEncodeError included
        raise PassFormatError("token has characters outside base32 (A-Z, 2-7)") from None
    size, padding = divmod(5 * len(stripped), 8)
    if padding >= 5:
        raise PassFormatError(f"{len(stripped)} base32 characters are not a whole number of bytes")
    if value & ((1 << padding) - 1):
        raise PassFormatError("non-zero padding bits in the last character")
    return (value >> padding).to_bytes(size, "big")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(raw: bytes, at: int) -> tuple[int, int]:
    """Unsigned LEB128 at ``raw[at]``, minimal length only -> (value, next offset)."""
    value = shift = 0
    for end in range(at, min(len(raw), at + _VARINT_MAX_BYTES)):
        byte = raw[end]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and end > at:
                raise PassFormatError("varint with a redundant zero byte")
            return value, end + 1
        shift += 7
    raise PassFormatError("truncated or overlong varint")

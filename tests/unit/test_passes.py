"""Pass tokens: golden vectors, round trips, tamper resistance, hostile input and re-signing."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.passes import (
    MAX_SIGNATURES,
    MAX_VARINT,
    SIGNING_CONTEXT,
    ListSigningKey,
    ListVerifyKey,
    PassFormatError,
    PassPayload,
    PassRejected,
    PassSignature,
    RejectReason,
    decode_pass,
    encode_pass,
    keys_by_id,
    resign,
    ticket_id_from_bytes,
    ticket_id_to_bytes,
    verify_for_keys,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "passes.json").read_text("utf-8")
)
VECTOR_KEYS = {
    key["name"]: ListSigningKey.from_seed(bytes.fromhex(key["seed_hex"])) for key in VECTORS["keys"]
}
# Eight lists, enough for the largest pass; fixed seeds keep failures reproducible.
LIST_KEYS = [ListSigningKey.from_seed(bytes([index + 1]) * 32) for index in range(MAX_SIGNATURES)]
LIST_A, LIST_B, LIST_C = LIST_KEYS[:3]
PAYLOAD = PassPayload("ticket_01kdvdna0004hmasw9nf6yy093", 3, 1767225600)
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
ENTRY = 4 + 64


def ring(*keys: ListSigningKey) -> dict[str, ListVerifyKey]:
    return keys_by_id(key.verify_key() for key in keys)


def signed(payload: PassPayload, *keys: ListSigningKey) -> str:
    return encode_pass(payload, [key.sign(payload) for key in keys])


def raw_of(token: str) -> bytes:
    return base64.b32decode(token + "=" * (-len(token) % 8))


def text_of(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def reference_ticket_id(value: int) -> str:
    """The ticket id of a 128-bit value, one Crockford character per 5 bits, most significant first."""
    return "ticket_" + "".join(CROCKFORD[value >> shift & 31] for shift in range(125, -1, -5))


ticket_ids = st.integers(0, (1 << 128) - 1).map(reference_ticket_id)
payloads = st.builds(
    PassPayload,
    ticket_id=ticket_ids,
    generation=st.integers(0, MAX_VARINT),
    issued_at=st.none() | st.integers(1, MAX_VARINT),
)
signer_sets = st.lists(st.sampled_from(LIST_KEYS), min_size=1, max_size=MAX_SIGNATURES, unique=True)


# -- golden vectors ------------------------------------------------------------------------------------


def test_vector_keys_derive_their_public_key_and_key_id() -> None:
    assert VECTORS["format_version"] == 1
    assert bytes.fromhex(VECTORS["signing_context_hex"]) == SIGNING_CONTEXT
    for entry in VECTORS["keys"]:
        key = VECTOR_KEYS[entry["name"]]
        assert key.public_key.hex() == entry["public_key_hex"]
        assert key.key_id == entry["key_id"] == ListVerifyKey(key.public_key).key_id


@pytest.mark.parametrize("entry", VECTORS["ticket_ids"], ids=lambda entry: entry["ticket_id"])
def test_vector_ticket_ids(entry: dict[str, str]) -> None:
    assert ticket_id_to_bytes(entry["ticket_id"]).hex() == entry["bytes_hex"]
    assert ticket_id_from_bytes(bytes.fromhex(entry["bytes_hex"])) == entry["ticket_id"]


@pytest.mark.parametrize("ticket_id", VECTORS["invalid_ticket_ids"])
def test_vector_invalid_ticket_ids(ticket_id: str) -> None:
    with pytest.raises(ValueError, match="not a ticket id"):
        ticket_id_to_bytes(ticket_id)


@pytest.mark.parametrize("entry", VECTORS["tokens"], ids=lambda entry: entry["name"])
def test_vector_tokens(entry: dict[str, Any]) -> None:
    payload = PassPayload(**entry["payload"])
    signers = [VECTOR_KEYS[name] for name in entry["signed_by"]]
    assert payload.core().hex() == entry["core_hex"]
    assert signed(payload, *signers) == entry["token"]
    decoded = decode_pass(entry["token"])
    assert decoded.payload == payload
    assert [signature.key_id for signature in decoded.signatures] == [key.key_id for key in signers]
    message = bytes.fromhex(entry["signed_message_hex"])
    assert message == SIGNING_CONTEXT + bytes.fromhex(entry["core_hex"])
    for key, signature in zip(signers, decoded.signatures, strict=True):
        nacl.signing.VerifyKey(key.public_key).verify(message, signature.signature)


@pytest.mark.parametrize("entry", VECTORS["verdicts"], ids=lambda entry: entry["name"])
def test_vector_verdicts(entry: dict[str, Any]) -> None:
    keys = ring(*(VECTOR_KEYS[name] for name in entry["keys"]))
    if entry["accept"]:
        verified = verify_for_keys(entry["token"], keys)
        assert list(verified.key_ids) == entry["key_ids"]
        assert verified.payload == PassPayload(**entry["payload"])
    else:
        with pytest.raises(PassRejected) as rejected:
            verify_for_keys(entry["token"], keys)
        assert rejected.value.reason == entry["reason"]


def test_reason_codes_are_stable() -> None:
    assert {reason.value for reason in RejectReason} == {
        "malformed",
        "unsupported_version",
        "unknown_key",
        "bad_signature",
    }


# -- round trips ---------------------------------------------------------------------------------------


@given(st.integers(0, (1 << 128) - 1))
def test_ticket_ids_round_trip_through_16_bytes(value: int) -> None:
    ticket_id = reference_ticket_id(value)
    assert ticket_id_to_bytes(ticket_id) == value.to_bytes(16, "big")
    assert ticket_id_from_bytes(value.to_bytes(16, "big")) == ticket_id


@given(payloads, signer_sets)
def test_passes_round_trip_and_verify_for_each_list(
    payload: PassPayload, signers: list[ListSigningKey]
) -> None:
    token = signed(payload, *signers)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    decoded = decode_pass(f"\r\n {token.lower()}\t\r\n")
    assert decoded.payload == payload
    assert [signature.key_id for signature in decoded.signatures] == [key.key_id for key in signers]
    assert verify_for_keys(decoded, ring(*LIST_KEYS)).key_ids == tuple(key.key_id for key in signers)
    for key in signers:
        assert verify_for_keys(token, ring(key)).key_ids == (key.key_id,)


def test_generate_makes_distinct_working_keys() -> None:
    first, second = ListSigningKey.generate(), ListSigningKey.generate()
    assert first.key_id != second.key_id
    assert ListSigningKey.from_seed(first.seed) == first
    assert verify_for_keys(signed(PAYLOAD, first), ring(first)).payload == PAYLOAD


# -- tampering -----------------------------------------------------------------------------------------


def assert_flip_refused(raw: bytes, bit: int, signers: list[ListSigningKey]) -> None:
    """After flipping ``bit``, each list refuses the pass unless the bit sits in another list's entry."""
    flipped = bytearray(raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    text = text_of(bytes(flipped))
    entries_start = len(raw) - len(signers) * ENTRY
    for index, key in enumerate(signers):
        own_entry = entries_start + index * ENTRY <= bit // 8 < entries_start + (index + 1) * ENTRY
        outside_entries = bit // 8 < entries_start
        try:
            verified = verify_for_keys(text, ring(key))
        except PassRejected:
            continue
        assert not (own_entry or outside_entries), f"bit {bit} flipped and still accepted for {key.key_id}"
        assert verified.payload == decode_pass(text_of(raw)).payload


def test_every_single_bit_flip_of_a_two_list_pass_is_refused() -> None:
    raw = raw_of(signed(PAYLOAD, LIST_A, LIST_B))
    for bit in range(len(raw) * 8):
        assert_flip_refused(raw, bit, [LIST_A, LIST_B])


@given(payloads, signer_sets, st.data())
def test_random_bit_flips_are_refused(
    payload: PassPayload, signers: list[ListSigningKey], data: st.DataObject
) -> None:
    raw = raw_of(signed(payload, *signers))
    assert_flip_refused(raw, data.draw(st.integers(0, len(raw) * 8 - 1)), signers)


def test_signature_without_the_signing_context_is_refused() -> None:
    bare = nacl.signing.SigningKey(LIST_A.seed).sign(PAYLOAD.core()).signature
    forged = encode_pass(PAYLOAD, [PassSignature(LIST_A.key_id, bare)])
    with pytest.raises(PassRejected) as rejected:
        verify_for_keys(forged, ring(LIST_A))
    assert rejected.value.reason is RejectReason.BAD_SIGNATURE


def test_pass_for_list_a_is_unknown_to_list_b() -> None:
    token = signed(PAYLOAD, LIST_A)
    with pytest.raises(PassRejected) as rejected:
        verify_for_keys(token, ring(LIST_B, LIST_C))
    assert rejected.value.reason is RejectReason.UNKNOWN_KEY


# -- hostile input -------------------------------------------------------------------------------------


def assert_only_rejections(text: str) -> None:
    """Decoding and verifying either succeed or raise the pass errors, never anything else."""
    with contextlib.suppress(PassFormatError):
        decode_pass(text)
    with contextlib.suppress(PassRejected):
        verify_for_keys(text, ring(LIST_A))


@given(st.text(max_size=1200))
def test_random_text_raises_only_pass_errors(text: str) -> None:
    assert_only_rejections(text)


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcxyz01=_+- \r\n\t", max_size=400))
def test_base32_like_text_raises_only_pass_errors(text: str) -> None:
    assert_only_rejections(text)


@given(st.data(), st.characters())
def test_any_other_character_in_place_of_one_is_refused(data: st.DataObject, character: str) -> None:
    token = signed(PAYLOAD, LIST_A)
    index = data.draw(st.integers(0, len(token) - 1))
    altered = token[:index] + character + token[index + 1 :]
    if character.upper() == token[index]:
        assert verify_for_keys(altered, ring(LIST_A)).payload == PAYLOAD
    else:
        with pytest.raises(PassRejected):
            verify_for_keys(altered, ring(LIST_A))


@given(st.binary(max_size=700), st.booleans())
def test_random_bytes_as_base32_raise_only_pass_errors(raw: bytes, as_version_1: bool) -> None:
    assert_only_rejections(text_of(b"\x01" + raw if as_version_1 else raw))


@given(payloads, signer_sets, st.integers(0, 3))
def test_truncated_or_extended_passes_are_malformed(
    payload: PassPayload, signers: list[ListSigningKey], extra: int
) -> None:
    raw = raw_of(signed(payload, *signers))
    for text in (text_of(raw[: len(raw) - 1 - extra]), text_of(raw + bytes(extra + 1))):
        with pytest.raises(PassFormatError) as rejected:
            decode_pass(text)
        assert rejected.value.reason is RejectReason.MALFORMED


def test_building_invalid_passes_is_a_programming_error() -> None:
    signature = LIST_A.sign(PAYLOAD)
    with pytest.raises(ValueError, match="signatures, got"):
        encode_pass(PAYLOAD, [])
    with pytest.raises(ValueError, match="signatures, got"):
        encode_pass(PAYLOAD, [key.sign(PAYLOAD) for key in [*LIST_KEYS, ListSigningKey.generate()]])
    with pytest.raises(ValueError, match="one key id"):
        encode_pass(PAYLOAD, [signature, signature])
    with pytest.raises(ValueError, match="not a ticket id"):
        PassPayload("ticket_01KDVDNA0004HMASW9NF6YY093", 0)
    with pytest.raises(ValueError, match="generation"):
        PassPayload(PAYLOAD.ticket_id, -1)
    with pytest.raises(ValueError, match="issued_at"):
        PassPayload(PAYLOAD.ticket_id, 0, 0)
    with pytest.raises(ValueError, match="key id"):
        PassSignature("ab cd ef", signature.signature)
    with pytest.raises(ValueError, match="seed"):
        ListSigningKey.from_seed(bytes(31))
    with pytest.raises(ValueError, match="public key"):
        ListVerifyKey(bytes(33))


# -- re-signing ----------------------------------------------------------------------------------------


def test_resign_adds_a_list_and_keeps_the_others() -> None:
    token = signed(PAYLOAD, LIST_A, LIST_B)
    resigned = resign(token, LIST_C)
    decoded = decode_pass(resigned)
    assert decoded.core == decode_pass(token).core
    assert [signature.key_id for signature in decoded.signatures] == [
        LIST_A.key_id,
        LIST_B.key_id,
        LIST_C.key_id,
    ]
    assert resigned == signed(PAYLOAD, LIST_A, LIST_B, LIST_C)
    for key in (LIST_A, LIST_B, LIST_C):
        assert verify_for_keys(resigned, ring(key)).key_ids == (key.key_id,)


def test_resign_replaces_its_own_and_drops_rotated_keys() -> None:
    token = signed(PAYLOAD, LIST_A, LIST_B)
    assert (
        decode_pass(resign(token, LIST_A)).signatures
        == decode_pass(signed(PAYLOAD, LIST_B, LIST_A)).signatures
    )
    rotated = ListSigningKey.from_seed(bytes([0xAA]) * 32)
    resigned = resign(token, rotated, drop_key_ids={LIST_B.key_id})
    assert verify_for_keys(resigned, ring(LIST_A, rotated)).key_ids == (LIST_A.key_id, rotated.key_id)
    with pytest.raises(PassRejected) as rejected:
        verify_for_keys(resigned, ring(LIST_B))
    assert rejected.value.reason is RejectReason.UNKNOWN_KEY


def test_resign_refuses_malformed_tokens() -> None:
    with pytest.raises(PassFormatError):
        resign("NOT A TOKEN", LIST_A)


def test_resign_refuses_a_ninth_signature() -> None:
    with pytest.raises(ValueError, match="signatures, got 9"):
        resign(signed(PAYLOAD, *LIST_KEYS), ListSigningKey.from_seed(bytes([0xAA]) * 32))

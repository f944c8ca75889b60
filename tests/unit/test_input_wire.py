"""The pure checks on hostile input: the nesting scan (exact at the limit, blind to brackets inside
strings, linear on adversarial text), the NUL walk, versioned cursors, the validator's NUL and
64-bit bounds, and the JWT decoder's NUL refusal."""

from __future__ import annotations

import base64
import json
import time

import pytest

from server.auth.service_jwt import unverified_issuer
from server.auth.signing import SigningKey
from server.devtools import mint_service_jwt
from server.domain.common import decode_cursor, decode_seq_cursor, encode_cursor
from server.errors import BadJwt, InvalidRequest
from server.wire import contains_nul, nesting_exceeds
from server.xrpc.lexicon import LEXICON_DIR, Lexicons, LexiconValidationError

LEXICONS = Lexicons.load(LEXICON_DIR)


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_input_nesting_is_refused_one_level_past_the_limit() -> None:
    assert not nesting_exceeds(nested(32), 32)
    assert nesting_exceeds(nested(33), 32)
    assert nesting_exceeds(b"[" * 10_000, 32)  # unbalanced: refused before a parser sees it
    assert not nesting_exceeds(json.dumps([[1], [2], [[3]]] * 50).encode(), 3)  # wide is not deep


def test_input_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 100, "b": '\\"[{' * 50, "c": ["]]]"]}).encode()
    assert not nesting_exceeds(text, 2)
    assert nesting_exceeds(b'{"a": "\\"", "b": ' + b"[" * 3 + b"]" * 3 + b"}", 3)


@pytest.mark.serial  # measures time
def test_input_the_nesting_scan_is_linear_on_adversarial_text() -> None:
    """A megabyte that would make a backtracking scan quadratic (minutes) takes a fraction of a
    second: unterminated strings of escapes, and a wide array of many small ones."""
    for hostile, deep in (
        (b"[" * 40 + b'"\\"' * 350_000, True),
        (b"[" * 20 + b'"' + b"\\[" * 500_000, False),
        (b"[1]," * 250_000, False),
    ):
        started = time.perf_counter()
        assert nesting_exceeds(hostile, 32) is deep
        assert time.perf_counter() - started < 2.0


def test_input_nul_is_found_at_any_depth_in_keys_and_values() -> None:
    assert not contains_nul({"a": ["b", {"c": 1.5, "d": None}], "e": True})
    assert contains_nul({"a": [{"b": ["x\x00"]}]})
    assert contains_nul([{"k\x00": 1}])
    assert contains_nul("\x00")


def test_input_cursors_carry_a_version_and_are_checked() -> None:
    cursor = encode_cursor("ticket_01m93r8pqf1a5dqwhqjzb0e7x2")
    assert decode_cursor(cursor, "ticket_") == "ticket_01m93r8pqf1a5dqwhqjzb0e7x2"
    forged = [
        base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        for text in (
            "ticket_01m93r8p",
            "2.ticket_01m93r8p",
            "1.ticket_\x00",
            "1.ticket_a' OR 1=1",
            "1.offer_01m9",
        )
    ]
    for bad in [*forged, "!!", "", "\u00e9", cursor + "!"]:
        with pytest.raises(InvalidRequest, match="cursor"):
            decode_cursor(bad, "ticket_")
    assert decode_seq_cursor("0") == 0 and decode_seq_cursor(str(2**31 - 1)) == 2**31 - 1
    for bad in (str(2**31), "\u00b2", "-1", "+1", " 1", "1_000", "\uff11"):
        with pytest.raises(InvalidRequest, match="cursor"):
            decode_seq_cursor(bad)


def test_input_integers_without_bounds_fit_64_bits() -> None:
    offer = {"eventId": "e", "name": "n", "kind": "discount", "code": "CODE"}
    amount = {"amount": 2**63 - 1, "currency": "eur"}
    assert LEXICONS.validate_input("tickets.atmosphere.createOffer", {**offer, "discountAmount": amount})
    for value in (2**63, -(2**63) - 1):
        with pytest.raises(LexiconValidationError, match="discountAmount/amount"):
            LEXICONS.validate_input(
                "tickets.atmosphere.createOffer", {**offer, "discountAmount": {**amount, "amount": value}}
            )


def test_input_no_string_holds_a_nul_also_in_records_read_from_a_pds() -> None:
    event = {
        "$type": "community.lexicon.calendar.event",
        "name": "Night\x00",
        "createdAt": "2026-01-01T00:00:00Z",
    }
    with pytest.raises(LexiconValidationError, match="Record/name must not contain the NUL character"):
        LEXICONS.validate_record("community.lexicon.calendar.event", event)
    LEXICONS.validate_record("community.lexicon.calendar.event", {**event, "name": "Night"})


@pytest.mark.parametrize("claims", [{"jti": "a\x00"}, {"iss": "did:web:app.example\x00"}, {"aud": "\x00"}])
def test_input_the_jwt_decoder_refuses_a_nul_in_any_claim(claims: dict[str, str]) -> None:
    token = mint_service_jwt(
        SigningKey.generate(), iss="did:web:app.example", aud="did:web:x", lxm="a.b.c", extra_claims=claims
    )
    with pytest.raises(BadJwt):
        unverified_issuer(token)

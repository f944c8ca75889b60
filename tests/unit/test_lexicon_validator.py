"""The lexicon validator: every constraint kind, formats, references, unions and parameters."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libipld
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import InvalidRequest
from server.xrpc.lexicon import LexiconLoadError, Lexicons, LexiconValidationError
from server.xrpc.lexicon.formats import FORMATS, grapheme_length, utf8_length
from server.xrpc.transport import MethodNotImplemented

CID = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"
CID_V0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


def body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"encoding": "application/json", "schema": schema}


SHAPES = {
    "lexicon": 1,
    "id": "com.example.shapes",
    "defs": {
        "circle": {
            "type": "object",
            "required": ["radius"],
            "properties": {"radius": {"type": "integer", "minimum": 1}},
        },
        "square": {
            "type": "object",
            "required": ["side"],
            "properties": {"side": {"type": "integer", "minimum": 1}},
        },
        "big": {"type": "token", "description": "A big thing."},
    },
}
POINT = {
    "lexicon": 1,
    "id": "com.example.point",
    "defs": {
        "main": {
            "type": "object",
            "required": ["x"],
            "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}},
        }
    },
}
CHECK = {
    "lexicon": 1,
    "id": "com.example.check",
    "defs": {
        "main": {
            "type": "procedure",
            "input": body(
                {
                    "type": "object",
                    "required": ["name"],
                    "nullable": ["clearable"],
                    "properties": {
                        "name": {"type": "string"},
                        "bytesText": {"type": "string", "minLength": 2, "maxLength": 8},
                        "graphemeText": {"type": "string", "minGraphemes": 2, "maxGraphemes": 3},
                        "choice": {"type": "string", "enum": ["a", "b"]},
                        "fixed": {"type": "string", "const": "x"},
                        "open": {"type": "string", "knownValues": ["red", "blue"]},
                        "count": {"type": "integer", "minimum": 1, "maximum": 10},
                        "odd": {"type": "integer", "enum": [1, 3, 5]},
                        "answer": {"type": "integer", "const": 42},
                        "flag": {"type": "boolean"},
                        "yes": {"type": "boolean", "const": True},
                        "tags": {
                            "type": "array",
                            "minLength": 1,
                            "maxLength": 2,
                            "items": {"type": "string", "maxLength": 3},
                        },
                        "inner": {"type": "ref", "ref": "#inner"},
                        "point": {"type": "ref", "ref": "com.example.point"},
                        "points": {
                            "type": "array",
                            "items": {"type": "ref", "ref": "com.example.point#main"},
                        },
                        "circle": {"type": "ref", "ref": "com.example.shapes#circle"},
                        "closedShape": {
                            "type": "union",
                            "closed": True,
                            "refs": ["com.example.shapes#circle", "com.example.shapes#square"],
                        },
                        "openShape": {
                            "type": "union",
                            "refs": ["com.example.shapes#circle", "com.example.point"],
                        },
                        "extra": {"type": "unknown"},
                        "data": {"type": "bytes", "maxLength": 4},
                        "link": {"type": "cid-link"},
                        "image": {"type": "blob", "accept": ["image/*"], "maxSize": 1000},
                        "size": {"type": "ref", "ref": "com.example.shapes#big"},
                        "nothing": {"type": "null"},
                        "clearable": {"type": "string"},
                        "withDefault": {"type": "integer", "default": 7},
                    },
                }
            ),
            "output": body({"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}),
        },
        "inner": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "string", "maxLength": 5}},
        },
    },
}
FORMAT_CHECK = {
    "lexicon": 1,
    "id": "com.example.formats",
    "defs": {
        "main": {
            "type": "procedure",
            "input": body(
                {
                    "type": "object",
                    "properties": {name: {"type": "string", "format": name} for name in FORMATS},
                }
            ),
        }
    },
}
SEARCH = {
    "lexicon": 1,
    "id": "com.example.search",
    "defs": {
        "main": {
            "type": "query",
            "parameters": {
                "type": "params",
                "required": ["q"],
                "properties": {
                    "q": {"type": "string", "maxLength": 10},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                    "exact": {"type": "boolean"},
                    "ids": {"type": "array", "maxLength": 3, "items": {"type": "integer", "minimum": 0}},
                    "uris": {"type": "array", "items": {"type": "string", "format": "at-uri"}},
                    "raw": {"type": "unknown"},
                },
            },
            "output": body({"type": "ref", "ref": "com.example.point"}),
        }
    },
}
NOTE = {
    "lexicon": 1,
    "id": "com.example.note",
    "defs": {
        "main": {
            "type": "record",
            "key": "tid",
            "record": {
                "type": "object",
                "required": ["text", "createdAt"],
                "properties": {
                    "text": {"type": "string", "maxGraphemes": 5},
                    "createdAt": {"type": "string", "format": "datetime"},
                },
            },
        }
    },
}


@pytest.fixture(scope="module")
def lex() -> Lexicons:
    return Lexicons([SHAPES, POINT, CHECK, FORMAT_CHECK, SEARCH, NOTE])


def assert_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(LexiconValidationError) as caught:
        call()
    assert str(caught.value) == message


def check(lex: Lexicons, **fields: object) -> dict[str, object]:
    return lex.validate_input("com.example.check", {"name": "n", **fields})


def refused(lex: Lexicons, message: str, **fields: object) -> None:
    assert_refused(lambda: check(lex, **fields), message)


# --- objects, defaults, nullable, unknown fields --------------------------------------------------


def test_error_is_an_invalid_request() -> None:
    assert issubclass(LexiconValidationError, InvalidRequest)
    assert LexiconValidationError.code == "InvalidRequest"
    assert LexiconValidationError.status == 400


def test_valid_input_passes_and_gets_defaults(lex: Lexicons) -> None:
    given = {
        "name": "n",
        "bytesText": "abcd",
        "graphemeText": "ab",
        "choice": "a",
        "fixed": "x",
        "open": "green",
        "count": 10,
        "odd": 3,
        "answer": 42,
        "flag": False,
        "yes": True,
        "tags": ["a", "bc"],
        "inner": {"id": "i"},
        "point": {"x": 1},
        "points": [{"x": 1, "y": 2}, {"x": 3}],
        "circle": {"radius": 1},
        "closedShape": {"$type": "com.example.shapes#square", "side": 2},
        "openShape": {"$type": "com.example.point", "x": 5},
        "extra": {"anything": [1, {"goes": None}]},
        "data": {"$bytes": "AQID"},
        "link": {"$link": CID},
        "image": {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/png", "size": 1000},
        "size": "com.example.shapes#big",
        "nothing": None,
        "clearable": None,
        "unknownField": {"is": "ignored"},
    }
    result = lex.validate_input("com.example.check", given)
    assert result["withDefault"] == 7
    assert result["point"] == {"x": 1, "y": 0}
    assert result["points"] == [{"x": 1, "y": 2}, {"x": 3, "y": 0}]
    assert result["openShape"] == {"$type": "com.example.point", "x": 5, "y": 0}
    assert result["unknownField"] == {"is": "ignored"}
    assert "withDefault" not in given, "the caller's dict is not changed"
    assert given["points"] == [{"x": 1, "y": 2}, {"x": 3}]


def test_input_without_changes_is_answered_as_is(lex: Lexicons) -> None:
    given = {"name": "n", "withDefault": 1}
    assert lex.validate_input("com.example.check", given) is given


def test_input_must_be_an_object(lex: Lexicons) -> None:
    values: list[object] = [None, [], "x", 1]
    for value in values:
        with pytest.raises(LexiconValidationError) as caught:
            lex.validate_input("com.example.check", value)
        assert str(caught.value) == "Input must be an object"


def test_required_property(lex: Lexicons) -> None:
    assert_refused(lambda: lex.validate_input("com.example.check", {}), 'Input must have the property "name"')
    refused(lex, 'Input/inner must have the property "id"', inner={})


def test_null_only_where_nullable(lex: Lexicons) -> None:
    assert check(lex, clearable=None)["clearable"] is None
    refused(lex, "Input/name must be a string", name=None)
    refused(lex, "Input/count must be an integer", count=None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": 1}, "Input/name must be a string"),
        ({"choice": "c"}, "Input/choice must be one of (a|b)"),
        ({"fixed": "y"}, 'Input/fixed must be "x"'),
        ({"count": 0}, "Input/count must be >= 1"),
        ({"count": 11}, "Input/count must be <= 10"),
        ({"count": 1.0}, "Input/count must be an integer"),
        ({"count": True}, "Input/count must be an integer"),
        ({"count": "1"}, "Input/count must be an integer"),
        ({"odd": 2}, "Input/odd must be one of (1|3|5)"),
        ({"answer": 41}, "Input/answer must be one of (42)"),
        ({"flag": 0}, "Input/flag must be a boolean"),
        ({"flag": "true"}, "Input/flag must be a boolean"),
        ({"yes": False}, "Input/yes must be true"),
        ({"tags": "a"}, "Input/tags must be an array"),
        ({"tags": []}, "Input/tags must not have fewer than 1 elements"),
        ({"tags": ["a", "b", "c"]}, "Input/tags must not have more than 2 elements"),
        ({"tags": ["a", 2]}, "Input/tags/1 must be a string"),
        ({"tags": ["abcd"]}, "Input/tags/0 must not be longer than 3 bytes"),
        ({"inner": "i"}, "Input/inner must be an object"),
        ({"inner": {"id": "toolong"}}, "Input/inner/id must not be longer than 5 bytes"),
        ({"point": {"x": "1"}}, "Input/point/x must be an integer"),
        ({"points": [{"x": 1}, {}]}, 'Input/points/1 must have the property "x"'),
        ({"circle": {"radius": 0}}, "Input/circle/radius must be >= 1"),
        ({"extra": [1]}, "Input/extra must be an object"),
        ({"extra": "text"}, "Input/extra must be an object"),
        ({"data": "AQID"}, 'Input/data must be an object with only the property "$bytes"'),
        (
            {"data": {"$bytes": "AQID", "x": 1}},
            'Input/data must be an object with only the property "$bytes"',
        ),
        ({"data": {"$bytes": "not base64!"}}, "Input/data must hold base64-encoded bytes"),
        ({"data": {"$bytes": "AQIé"}}, "Input/data must hold base64-encoded bytes"),
        ({"data": {"$bytes": "AQIDBAU"}}, "Input/data must not be longer than 4 bytes"),
        ({"link": CID}, 'Input/link must be an object with only the property "$link" holding a CID'),
        (
            {"link": {"$link": "nope"}},
            'Input/link must be an object with only the property "$link" holding a CID',
        ),
        ({"size": "big"}, 'Input/size must be "com.example.shapes#big"'),
        ({"nothing": 0}, "Input/nothing must be null"),
        ({"withDefault": None}, "Input/withDefault must be an integer"),
    ],
)
def test_constraint_refused(lex: Lexicons, fields: dict[str, object], message: str) -> None:
    refused(lex, message, **fields)


def test_blob_shape(lex: Lexicons) -> None:
    blob = {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/jpeg", "size": 10}
    check(lex, image=blob)
    refused(lex, 'Input/image must be a blob (an object with "$type": "blob")', image={**blob, "$type": "x"})
    refused(
        lex,
        'Input/image/ref must be an object with only the property "$link" holding a CID',
        image={**blob, "ref": CID},
    )
    refused(lex, "Input/image/mimeType must be a non-empty string", image={**blob, "mimeType": ""})
    refused(lex, "Input/image/mimeType must be one of image/*", image={**blob, "mimeType": "text/plain"})
    refused(lex, "Input/image/size must be an integer >= 0", image={**blob, "size": -1})
    refused(lex, "Input/image/size must be <= 1000", image={**blob, "size": 1001})


# --- byte and grapheme lengths --------------------------------------------------------------------

COMBINING = "e\u0301"  # e + combining acute: 2 code points, 3 bytes, 1 grapheme
THUMBS = "\U0001f44d\U0001f3fd"  # thumbs up + skin tone: 2 code points, 8 bytes, 1 grapheme
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # ZWJ sequence: 5 code points, 18 bytes, 1 grapheme


@pytest.mark.parametrize(
    ("text", "size", "graphemes"),
    [
        ("", 0, 0),
        ("abc", 3, 3),
        ("\r\n", 2, 1),
        ("a\r\nb", 4, 3),
        ("é", 2, 1),
        (COMBINING, 3, 1),
        (THUMBS, 8, 1),
        (FAMILY, 18, 1),
        ("🇩🇪", 8, 1),
        ("\ud800", 3, 1),
    ],
)
def test_length_measures(text: str, size: int, graphemes: int) -> None:
    assert utf8_length(text) == size
    assert grapheme_length(text) == graphemes


def test_max_length_counts_bytes_not_characters(lex: Lexicons) -> None:
    check(lex, bytesText="éééé")  # 4 characters, 8 bytes
    refused(lex, "Input/bytesText must not be longer than 8 bytes", bytesText="ééééa")
    refused(lex, "Input/bytesText must not be longer than 8 bytes", bytesText=THUMBS + "a")
    check(lex, bytesText="é")  # one character, but two bytes
    refused(lex, "Input/bytesText must not be shorter than 2 bytes", bytesText="a")


def test_grapheme_limits_count_user_perceived_characters(lex: Lexicons) -> None:
    check(lex, graphemeText=FAMILY * 3)  # 15 code points, 54 bytes, 3 graphemes
    check(lex, graphemeText=COMBINING * 2)
    check(lex, graphemeText=THUMBS + "a")
    refused(lex, "Input/graphemeText must not be longer than 3 graphemes", graphemeText=THUMBS * 4)
    refused(lex, "Input/graphemeText must not be longer than 3 graphemes", graphemeText="abcd")
    refused(lex, "Input/graphemeText must not be shorter than 2 graphemes", graphemeText=FAMILY)
    refused(lex, "Input/graphemeText must not be shorter than 2 graphemes", graphemeText=COMBINING)
    refused(lex, "Input/graphemeText must not be shorter than 2 graphemes", graphemeText="\r\n")


# --- formats --------------------------------------------------------------------------------------

GOOD_FORMATS = {
    "datetime": [
        "2026-11-29T18:02:00.000Z",
        "1985-04-12T23:20:50.123Z",
        "1985-04-12T23:20:50Z",
        "1985-04-12T23:20:50.123456789Z",
        "1985-04-12T23:20:50.120+00:00",
        "1985-04-12T23:20:50.120-07:00",
        "2024-02-29T00:00:00Z",
    ],
    "uri": ["https://example.com/a?b=c#d", "mailto:someone@example.com", "at://did:plc:abc", "did:plc:abc"],
    "at-uri": [
        "at://did:plc:asdf123",
        "at://user.bsky.social",
        "at://did:plc:asdf123/com.atproto.feed.post",
        "at://did:plc:asdf123/com.atproto.feed.post/record",
        "at://did:web:example.com/io.nsid.someFunc/...",
        "at://did:plc:asdf123/com.atproto.feed.postV2",
        "at://did:plc:asdf123/com.atproto.feed.post/record#/fragment",
    ],
    "did": [
        "did:plc:z72i7hdynmk6r22z27h6tvur",
        "did:web:example.com",
        "did:web:localhost%3A8080",
        "did:method:a-b.c_d",
    ],
    "handle": ["alice.bsky.social", "example.com", "xn--ls8h.test", "a.b-c.io", "8.cn"],
    "at-identifier": ["alice.example.com", "did:plc:z72i7hdynmk6r22z27h6tvur"],
    "nsid": [
        "tickets.atmosphere.createTicketHold",
        "com.example.fooBar",
        "a.b.c",
        "net.users.bob.ping",
        "a-0.b-1.c",
    ],
    "cid": [CID, CID_V0, "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"],
    "language": ["en", "pt-BR", "zh-Hant-TW", "de-CH-1901", "i-klingon", "x-private", "en-GB-oed", "es-419"],
    "tid": ["3jzfcijpj2z2a", "7777777777777", "3zzzzzzzzzzzz"],
    "record-key": ["self", "3jzfcijpj2z2a", "literal:self", "a", "_", "~1.2-3", "..."],
}
BAD_FORMATS = {
    "datetime": [
        "2026-11-29T18:02:00",  # no time zone
        "2026-11-29t18:02:00Z",  # lower-case t
        "2026-11-29 18:02:00Z",
        "2026-11-29T18:02Z",
        "1985-04-12T23:20:50.123-00:00",
        "1985-00-12T23:20:50.123Z",
        "1985-13-12T23:20:50.123Z",
        "1985-04-00T23:20:50.123Z",
        "1985-04-12T25:20:50.123Z",
        "1985-04-12T23:20:60Z",
        "2023-02-29T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1985-04-12T23:20:50.Z",
        "1985-04-12T23:20:50.123+24:00",
        "١٩٨٥-04-12T23:20:50Z",
        "1985-04-12T23:20:50Z\n",
        "",
    ],
    "uri": ["", "example.com", "https://", "https:// space", "/relative/path", "1http://x.y"],
    "at-uri": [
        "",
        "at://",
        "https://did:plc:abc",
        "at://did:plc:asdf123/",
        "at://did:plc:asdf123/com.atproto.feed.post/",
        "at://did:plc:asdf123/com.atproto.feed.post/a/b",
        "at://did:plc:asdf123/not-an-nsid",
        "at://not a handle",
        "at://did:plc:asdf123#",
        "at://did:plc:asdf123#nofragmentslash",
        "at://did:plc:asdf123/com.atproto.feed.post/r#/a#b",
    ],
    "did": ["", "did:", "did:plc:", "did:PLC:abc", "did:plc:abc:", "did:plc:abc%", "plc:abc", "did:plc:a b"],
    "handle": [
        "",
        "alice",
        "alice.",
        ".alice.com",
        "alice..com",
        "-a.com",
        "a-.com",
        "a.123",
        "alice.bsky.social.",
    ],
    "at-identifier": ["", "alice", "did:plc:"],
    "nsid": [
        "",
        "com.example",
        "com.example.",
        "com..example.foo",
        "1com.example.foo",
        "com.example.3foo",
        "com.example.foo-bar",
    ],
    "cid": [
        "",
        "bafy",
        "Bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
        "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2",
        CID_V0[:-1],
        "fafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbd0",
    ],
    "language": ["", "e", "en-", "123", "en_US", "toolonglanguage", "en--US"],
    "tid": ["", "3jzfcijpj2z2", "3jzfcijpj2z2aa", "kjzfcijpj2z2a", "3JZFCIJPJ2Z2A", "3jzfcijpj2z21"],
    "record-key": ["", ".", "..", "a/b", "a b", "a#b", "a" * 513, "é"],
}


def format_cases(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, values in table.items() for value in values]


@pytest.mark.parametrize(("format_name", "value"), format_cases(GOOD_FORMATS))
def test_format_accepted(lex: Lexicons, format_name: str, value: str) -> None:
    lex.validate_input("com.example.formats", {format_name: value})


@pytest.mark.parametrize(("format_name", "value"), format_cases(BAD_FORMATS))
def test_format_refused(lex: Lexicons, format_name: str, value: str) -> None:
    with pytest.raises(LexiconValidationError) as caught:
        lex.validate_input("com.example.formats", {format_name: value})
    assert str(caught.value) == f"Input/{format_name} must be a valid {format_name}"


def test_every_format_is_covered() -> None:
    assert set(GOOD_FORMATS) == set(BAD_FORMATS) == set(FORMATS)


def test_long_identifiers() -> None:
    assert FORMATS["handle"]("a" * 63 + ".com")
    assert not FORMATS["handle"]("a" * 64 + ".com")
    assert not FORMATS["handle"](("a" * 63 + ".") * 4 + "com")
    assert not FORMATS["did"]("did:plc:" + "a" * 2048)
    assert FORMATS["at-uri"]("at://did:plc:asdf123/com.atproto.feed.post/" + "o" * 512)
    assert not FORMATS["at-uri"]("at://did:plc:asdf123/com.atproto.feed.post/" + "o" * 8192)


# --- CIDs -----------------------------------------------------------------------------------------

CID_BYTES = libipld.decode_multibase(CID)[1]


def varint(number: int) -> bytes:
    """Unsigned LEB128, as multiformats writes it (no more bytes than the number needs)."""
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def test_a_cid_in_base58btc_is_accepted() -> None:
    assert FORMATS["cid"](libipld.encode_multibase("z", CID_BYTES))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(CID[:-1] + "b", id="base32 bits set past the last byte"),
        pytest.param(libipld.encode_multibase("b", varint(0x80) + CID_BYTES[1:]), id="version 128"),
        pytest.param(libipld.encode_multibase("b", b"\x81\x00" + CID_BYTES[1:]), id="non-minimal varint"),
        pytest.param(libipld.encode_multibase("b", b"\x01\x71\x12\x41" + bytes(65)), id="65-byte digest"),
        pytest.param(libipld.encode_multibase("b", CID_BYTES + b"\0"), id="base32 bytes after multihash"),
        pytest.param(libipld.encode_multibase("z", CID_BYTES + b"\0"), id="base58 bytes after multihash"),
        pytest.param(CID_V0 + "1", id="CIDv0 bytes after multihash"),
        pytest.param("z" + CID_V0, id="CIDv0 behind a multibase prefix"),
        pytest.param("B" + CID[1:].upper(), id="base32 upper case"),
        pytest.param("b" + CID[1:].upper(), id="base32 upper case behind b"),
        pytest.param(libipld.encode_multibase("f", CID_BYTES), id="base16"),
    ],
)
def test_a_cid_is_refused_unless_written_as_multiformats_write_it(lex: Lexicons, value: str) -> None:
    assert not FORMATS["cid"](value)
    with pytest.raises(LexiconValidationError, match=r"^Input/cid must be a valid cid$"):
        lex.validate_input("com.example.formats", {"cid": value})


@given(
    codec=st.integers(0, 2**63 - 1),
    hash_code=st.integers(0, 2**63 - 1),
    digest=st.binary(min_size=8, max_size=64),
    extra=st.binary(min_size=1, max_size=8),
)
def test_any_cidv1_is_accepted_whole_and_refused_with_bytes_after_it(
    codec: int, hash_code: int, digest: bytes, extra: bytes
) -> None:
    raw = varint(1) + varint(codec) + varint(hash_code) + varint(len(digest)) + digest
    for base in "bz":
        assert FORMATS["cid"](libipld.encode_multibase(base, raw))
        assert not FORMATS["cid"](libipld.encode_multibase(base, raw + extra))


# --- references and unions ------------------------------------------------------------------------


def test_references_across_documents(lex: Lexicons) -> None:
    check(lex, circle={"radius": 2}, point={"x": 1, "y": 1})
    refused(lex, 'Input/circle must have the property "radius"', circle={"side": 2})


def test_closed_union(lex: Lexicons) -> None:
    check(lex, closedShape={"$type": "com.example.shapes#circle", "radius": 1})
    refused(
        lex,
        "Input/closedShape/radius must be >= 1",
        closedShape={"$type": "com.example.shapes#circle", "radius": 0},
    )
    refused(
        lex,
        "Input/closedShape/$type must be one of com.example.shapes#circle, com.example.shapes#square",
        closedShape={"$type": "com.example.shapes#triangle", "sides": 3},
    )
    refused(
        lex,
        'Input/closedShape must be an object which includes the "$type" property',
        closedShape={"radius": 1},
    )
    refused(lex, 'Input/closedShape must be an object which includes the "$type" property', closedShape=[])


def test_open_union(lex: Lexicons) -> None:
    check(lex, openShape={"$type": "com.example.shapes#triangle", "anything": True})
    check(lex, openShape={"$type": "com.example.point#main", "x": 1})
    refused(lex, 'Input/openShape must have the property "x"', openShape={"$type": "com.example.point"})
    refused(
        lex,
        'Input/openShape must be an object which includes the "$type" property',
        openShape={"$type": 5},
    )


# --- parameters -----------------------------------------------------------------------------------

SEARCH_NSID = "com.example.search"


def test_params_are_coerced(lex: Lexicons) -> None:
    result = lex.validate_params(
        SEARCH_NSID,
        {"q": ["hello"], "limit": "20", "exact": ["true"], "ids": ["1", "2"], "raw": "?", "other": "x"},
    )
    assert result == {"q": "hello", "limit": 20, "exact": True, "ids": [1, 2], "raw": "?"}
    assert lex.validate_params(SEARCH_NSID, {"q": "a", "exact": "false", "ids": "3"}) == {
        "q": "a",
        "limit": 50,
        "exact": False,
        "ids": [3],
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, 'Params must have the property "q"'),
        ({"q": []}, 'Params must have the property "q"'),
        ({"q": "x" * 11}, "Params/q must not be longer than 10 bytes"),
        ({"q": ["a", "b"]}, "Params/q must be given once"),
        ({"q": "a", "limit": "ten"}, "Params/limit must be an integer"),
        ({"q": "a", "limit": "1.5"}, "Params/limit must be an integer"),
        ({"q": "a", "limit": "0"}, "Params/limit must be >= 1"),
        ({"q": "a", "limit": "101"}, "Params/limit must be <= 100"),
        ({"q": "a", "exact": "1"}, 'Params/exact must be a boolean ("true" or "false")'),
        ({"q": "a", "exact": "True"}, 'Params/exact must be a boolean ("true" or "false")'),
        ({"q": "a", "ids": ["1", "x"]}, "Params/ids/1 must be an integer"),
        ({"q": "a", "ids": ["-1"]}, "Params/ids/0 must be >= 0"),
        ({"q": "a", "ids": ["1", "2", "3", "4"]}, "Params/ids must not have more than 3 elements"),
        ({"q": "a", "uris": ["at://did:plc:abc", "nope"]}, "Params/uris/1 must be a valid at-uri"),
    ],
)
def test_params_refused(lex: Lexicons, params: dict[str, str | list[str]], message: str) -> None:
    with pytest.raises(LexiconValidationError) as caught:
        lex.validate_params(SEARCH_NSID, params)
    assert str(caught.value) == message


def test_procedure_without_parameters_ignores_the_query(lex: Lexicons) -> None:
    assert lex.validate_params("com.example.check", {"x": "1"}) == {}


# --- outputs, records, methods --------------------------------------------------------------------


def test_output(lex: Lexicons) -> None:
    lex.validate_output("com.example.check", {"ok": True})
    assert_refused(
        lambda: lex.validate_output("com.example.check", {"ok": "yes"}), "Output/ok must be a boolean"
    )
    lex.validate_output(SEARCH_NSID, {"x": 1})
    assert_refused(lambda: lex.validate_output(SEARCH_NSID, {}), 'Output must have the property "x"')


def test_record(lex: Lexicons) -> None:
    note = {"$type": "com.example.note", "text": "hi 👋🏽", "createdAt": "2026-01-01T00:00:00.000Z"}
    lex.validate_record("com.example.note", note)
    lex.validate_record("com.example.note", {k: v for k, v in note.items() if k != "$type"})
    assert_refused(
        lambda: lex.validate_record("com.example.note", {**note, "$type": "com.example.other"}),
        'Record/$type must be "com.example.note"',
    )
    assert_refused(
        lambda: lex.validate_record("com.example.note", {**note, "text": "abcdef"}),
        "Record/text must not be longer than 5 graphemes",
    )
    assert_refused(lambda: lex.validate_record("com.example.note", "text"), "Record must be an object")
    with pytest.raises(LexiconValidationError, match="not declared"):
        lex.validate_record("com.example.unknown", note)


def test_methods(lex: Lexicons) -> None:
    assert lex.method_nsids() == frozenset({"com.example.check", "com.example.formats", SEARCH_NSID})
    query = lex.method(SEARCH_NSID)
    assert query is not None
    assert query.kind == "query"
    assert query.parameters is not None
    assert query.input is None
    procedure = lex.method("com.example.check")
    assert procedure is not None
    assert procedure.kind == "procedure"
    assert procedure.output == CHECK["defs"]["main"]["output"]  # type: ignore[index]
    assert lex.method("com.example.note") is None
    assert lex.method("com.example.nothing") is None


def test_unknown_method_is_not_implemented(lex: Lexicons) -> None:
    for validate in (lex.validate_input, lex.validate_output):
        with pytest.raises(MethodNotImplemented):
            validate("com.example.nothing", {})
    with pytest.raises(MethodNotImplemented):
        lex.validate_params("com.example.nothing", {})


@pytest.mark.serial  # measures time per call
def test_validation_is_fast() -> None:
    lexicons = Lexicons.load(Path(__file__).resolve().parents[2] / "lexicons")
    hold = {
        "eventId": "event_1",
        "items": [{"tierId": "tier_a", "quantity": 2}, {"tierId": "tier_b", "quantity": 1}],
        "buyerDid": "did:plc:z72i7hdynmk6r22z27h6tvur",
        "returnUrl": "https://example.com/done",
        "idempotencyKey": "order-1",
        "environment": "test",
    }
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        lexicons.validate_input("tickets.atmosphere.createTicketHold", hold)
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 200e-6, f"{per_call * 1e6:.1f} µs per call"


# --- loading --------------------------------------------------------------------------------------


def doc(defs: dict[str, Any], lexicon_id: str = "com.example.bad") -> dict[str, Any]:
    return {"lexicon": 1, "id": lexicon_id, "defs": defs}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], '"id" is a valid NSID'),
        ({"lexicon": 1, "id": "not an nsid", "defs": {}}, '"id" is a valid NSID'),
        ({"lexicon": 2, "id": "com.example.bad", "defs": {"a": {"type": "string"}}}, '"lexicon" must be 1'),
        (doc({}), '"defs" must hold at least one definition'),
        (
            doc({"a": {"type": "string", "maxLength": "5"}}),
            'com.example.bad#a: "maxLength" must be an integer',
        ),
        (doc({"a": {"type": "string", "format": "email"}}), 'unknown string format "email"'),
        (doc({"a": {"type": "strin"}}), 'definition type "strin" is not supported'),
        (doc({"a": {"maxLength": 5}}), 'com.example.bad#a: "type" is required'),
        (
            doc({"a": {"type": "record", "key": "tid", "record": {"type": "object"}}}),
            "must be the main definition",
        ),
        (doc({"main": {"type": "record", "record": {"type": "object"}}}), '"key" is required'),
        (
            doc({"main": {"type": "record", "key": "uuid", "record": {"type": "object"}}}),
            "unknown record key",
        ),
        (doc({"main": {"type": "record", "key": "tid"}}), '"record" must be an object schema'),
        (
            doc({"a": {"type": "object", "required": ["b"], "properties": {}}}),
            '"b" is required or nullable but not among the properties',
        ),
        (
            doc({"a": {"type": "object", "properties": {"b": {"type": "token"}}}}),
            "com.example.bad#a/properties/b: a token can only be a definition of its own",
        ),
        (doc({"a": {"type": "array"}}), '"items" is required'),
        (doc({"a": {"type": "union"}}), '"refs" is required'),
        (doc({"a": {"type": "string", "default": 1}}), '"default" must be a str'),
        (
            doc({"a": {"type": "ref", "ref": "#missing"}}),
            'reference "com.example.bad#missing" does not resolve',
        ),
        (
            doc({"a": {"type": "union", "refs": ["com.example.other"]}}),
            'reference "com.example.other#main" does not resolve',
        ),
        (
            doc({"main": {"type": "query", "input": body({"type": "object"})}}),
            "a query has no input",
        ),
        (
            doc({"main": {"type": "procedure", "input": {"schema": {"type": "object"}}}}),
            'com.example.bad#main/input: "encoding" is required',
        ),
        (
            doc({"main": {"type": "procedure", "input": body({"type": "string"})}}),
            '"type" must be "object", "ref" or "union"',
        ),
        (
            doc({"main": {"type": "query", "parameters": {"type": "object"}}}),
            '"type" must be "params"',
        ),
        (
            doc(
                {
                    "main": {
                        "type": "query",
                        "parameters": {"type": "params", "properties": {"p": {"type": "object"}}},
                    }
                }
            ),
            "a parameter must be a boolean, integer, string or unknown, or an array",
        ),
        (
            doc({"main": {"type": "procedure", "errors": [{"description": "no name"}]}}),
            'com.example.bad#main/errors/0: "name" is required',
        ),
    ],
)
def test_malformed_documents_are_refused(document: object, message: str) -> None:
    with pytest.raises(LexiconLoadError) as caught:
        Lexicons([document])
    assert message in str(caught.value)


def test_duplicate_documents_are_refused() -> None:
    with pytest.raises(LexiconLoadError, match="defined by two documents"):
        Lexicons([POINT, POINT])


def test_load_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "com" / "example").mkdir(parents=True)
    good = tmp_path / "com" / "example" / "point.json"
    good.write_text(json.dumps(POINT))
    assert Lexicons.load(tmp_path).method_nsids() == frozenset()

    broken = tmp_path / "com" / "example" / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(LexiconLoadError, match=r"broken\.json: not a readable JSON document"):
        Lexicons.load(tmp_path)

    broken.write_text(json.dumps(doc({"a": {"type": "ref", "ref": "#nowhere"}}, "com.example.broken")))
    with pytest.raises(LexiconLoadError, match=r"broken\.json: .*com\.example\.broken#nowhere"):
        Lexicons.load(tmp_path)

    broken.write_text(json.dumps({**POINT, "id": "not-an-nsid"}))
    with pytest.raises(LexiconLoadError, match=r"broken\.json: .*valid NSID"):
        Lexicons.load(tmp_path)

    broken.write_text(json.dumps(POINT))
    with pytest.raises(LexiconLoadError, match=r"com\.example\.point is already defined by"):
        Lexicons.load(tmp_path)


def test_load_needs_documents(tmp_path: Path) -> None:
    with pytest.raises(LexiconLoadError, match="no lexicon documents"):
        Lexicons.load(tmp_path)

"""The string formats of atproto's Lexicon, and the two ways a string's length is counted.

``maxLength`` counts UTF-8 bytes and ``maxGraphemes`` extended grapheme clusters. Each format is a
predicate on a string, as atproto's reference validator defines it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import libipld
import regex

_DATETIME: Final = re.compile(
    r"([0-9]{4})-([01][0-9])-([0-3][0-9])T([0-2][0-9]):([0-6][0-9]):([0-6][0-9])(?:\.[0-9]{1,20})?"
    r"(?:Z|[+-]([0-2][0-9]):([0-5][0-9]))"
)
_DID: Final = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_HANDLE: Final = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
_NSID: Final = re.compile(
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}"
)
_TID: Final = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
_RECORD_KEY: Final = re.compile(r"[a-zA-Z0-9_~.:-]{1,512}")
_URI: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:(?://)?[^\s/]\S*")
_AT_URI_BODY: Final = re.compile(r"[a-zA-Z0-9._~:@!$&')(*+,;=%/-]*")
_AT_URI_FRAGMENT: Final = re.compile(r"/[a-zA-Z0-9._~:@!$&')(*+,;=%\[\]/-]*")
_LANGUAGE: Final = re.compile(
    r"(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"  # language and extended language
    r"(?:-[A-Za-z]{4})?"  # script
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"  # variants
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[A-Za-z0-9]{1,8})+)?"  # private use suffix
    r"|x(?:-[A-Za-z0-9]{1,8})+)"  # private use only
)
# BCP 47 grandfathered tags that the regular grammar above does not cover.
_IRREGULAR_LANGUAGE_TAGS: Final = frozenset(
    {
        "en-GB-oed", "i-ami", "i-bnn", "i-default", "i-enochian", "i-hak", "i-klingon", "i-lux",
        "i-mingo", "i-navajo", "i-pwn", "i-tao", "i-tay", "i-tsu", "sgn-BE-FR", "sgn-BE-NL", "sgn-CH-DE",
    }
)  # fmt: skip


def is_datetime(value: str) -> bool:
    """RFC 3339 with an upper-case ``T`` and a time zone, as atproto's ``datetime`` format."""
    match = _DATETIME.fullmatch(value)
    if match is None or len(value) > 64 or value.endswith("-00:00") or value.startswith("000"):
        return False
    year, month, day, hour, minute, second, offset_hours, _ = match.groups()
    if offset_hours is not None and int(offset_hours) > 23:
        return False
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))  # noqa: DTZ001
    except ValueError:
        return False
    return True


def is_did(value: str) -> bool:
    return len(value) <= 2048 and _DID.fullmatch(value) is not None


def is_handle(value: str) -> bool:
    return len(value) <= 253 and _HANDLE.fullmatch(value) is not None


def is_at_identifier(value: str) -> bool:
    return is_did(value) if value.startswith("did:") else is_handle(value)


def is_nsid(value: str) -> bool:
    return len(value) <= 317 and len(value.rpartition(".")[0]) <= 253 and _NSID.fullmatch(value) is not None


def is_at_uri(value: str) -> bool:
    """``at://<did or handle>[/<collection NSID>[/<record key>]][#/<fragment>]``."""
    body, hash_sign, fragment = value.partition("#")
    if len(value) > 8192 or (hash_sign and _AT_URI_FRAGMENT.fullmatch(fragment) is None):
        return False
    parts = body.split("/")
    return (
        _AT_URI_BODY.fullmatch(body) is not None
        and 3 <= len(parts) <= 5
        and parts[0] == "at:"
        and parts[1] == ""
        and is_at_identifier(parts[2])
        and (len(parts) < 4 or is_nsid(parts[3]))
        and (len(parts) < 5 or parts[4] != "")
    )


def is_uri(value: str) -> bool:
    return len(value) <= 8192 and _URI.fullmatch(value) is not None


def is_tid(value: str) -> bool:
    return _TID.fullmatch(value) is not None


def is_record_key(value: str) -> bool:
    return value not in (".", "..") and _RECORD_KEY.fullmatch(value) is not None


def is_language(value: str) -> bool:
    return value in _IRREGULAR_LANGUAGE_TAGS or _LANGUAGE.fullmatch(value) is not None


def is_cid(value: str) -> bool:
    """A CIDv0 (``Qm…``) or a CIDv1 in base32 (``b…``) or base58btc (``z…``), as libipld reads it,
    with nothing after its multihash."""
    if not 8 <= len(value) <= 256:
        return False
    if value.startswith("Qm"):  # a CIDv0 is a SHA-256 multihash in base58btc, without a multibase prefix
        text = "z" + value
    elif value[0] in "bz":
        text = value
    else:
        return False
    try:
        raw = libipld.decode_multibase(text)[1]
        # libipld reads one CID from the bytes and ignores any after it; its text form is canonical:
        # base58btc for a CIDv0, lower-case base32 for a CIDv1.
        canonical = libipld.encode_cid(raw)
    except ValueError:
        return False
    if value[0] == "z":
        return canonical[0] == "b" and libipld.decode_multibase(canonical)[1] == raw
    return canonical == value


FORMATS: Final[Mapping[str, Callable[[str], bool]]] = {
    "datetime": is_datetime,
    "uri": is_uri,
    "at-uri": is_at_uri,
    "did": is_did,
    "handle": is_handle,
    "at-identifier": is_at_identifier,
    "nsid": is_nsid,
    "cid": is_cid,
    "language": is_language,
    "tid": is_tid,
    "record-key": is_record_key,
}

_GRAPHEME: Final = regex.compile(r"\X")


def utf8_length(text: str) -> int:
    """Length in UTF-8 bytes (a lone surrogate counts as the three bytes it would take)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def grapheme_length(text: str) -> int:
    """Number of extended grapheme clusters (in ASCII only CR LF joins two code points)."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))

"""Lexicon registry and validator for the XRPC surface and the records it refers to.

Loads the Lexicon v1 documents under ``lexicons/`` and checks query parameters, procedure inputs,
outputs and records against them with atproto's rules: ``maxLength`` counts UTF-8 bytes and
``maxGraphemes`` extended grapheme clusters, unknown properties are ignored, ``knownValues`` is
documentation only, and unions are open unless ``closed``. Missing optional properties that declare
a ``default`` get it. Beyond those rules, no string may hold a NUL, and an integer without bounds of
its own must fit 64 bits signed (a BIGINT column). Every schema is compiled once, when the documents
are loaded, into a tree of small validator objects; every reference is resolved then, so a broken
document fails at start-up and a call costs microseconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, cast

import regex

from server.errors import InvalidRequest
from server.xrpc.transport import MethodNotImplemented

# The lexicons ship inside the package: ``server/lexicons`` links to the repository's ``lexicons/``,
# and the wheel carries the documents themselves.
LEXICON_DIR: Final = Path(__file__).resolve().parents[1] / "lexicons"

JsonObject = Mapping[str, object]


class LexiconValidationError(InvalidRequest):
    """A value does not match its lexicon; the message starts with the path of the bad value."""


class LexiconLoadError(ValueError):
    """A lexicon document is malformed, or refers to a definition that no loaded document has."""

    def __init__(self, message: str, lexicon_id: str | None = None) -> None:
        super().__init__(message)
        self.lexicon_id = lexicon_id


@dataclass(frozen=True, slots=True)
class MethodSchema:
    """One XRPC method as its lexicon declares it; the mappings are the documents' own JSON."""

    nsid: str
    kind: Literal["query", "procedure"]
    description: str | None
    parameters: JsonObject | None
    input: JsonObject | None
    output: JsonObject | None
    errors: tuple[str, ...]


def _fail(path: str, message: str) -> LexiconValidationError:
    return LexiconValidationError(f"{path} {message}")


# --- string formats ------------------------------------------------------------------------------

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
_BASE32_BODY: Final = re.compile(r"[a-z2-7]+")
_BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX: Final = {c: i for i, c in enumerate(_BASE58_ALPHABET)}
_SHA256: Final = 0x12


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


def _read_varint(data: bytes, offset: int) -> tuple[int, int] | None:
    """An unsigned LEB128 integer at ``offset`` and the offset after it, or None when truncated."""
    result = shift = 0
    while offset < len(data) and shift < 64:
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, offset
        shift += 7
    return None


def _decode_base58(text: str) -> bytes | None:
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            return None
        number = number * 58 + digit
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def _decode_base32(text: str) -> bytes | None:
    if _BASE32_BODY.fullmatch(text) is None:
        return None
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except binascii.Error:
        return None


def is_cid(value: str) -> bool:
    """A CIDv0 (``Qm…``) or a CIDv1 in base32 (``b…``) or base58btc (``z…``) with a whole multihash."""
    if not 8 <= len(value) <= 256:
        return False
    if value.startswith("Qm"):
        raw = _decode_base58(value)
        return raw is not None and len(raw) == 34 and raw[0] == _SHA256 and raw[1] == 32
    if value[0] == "b":
        raw = _decode_base32(value[1:])
    elif value[0] == "z":
        raw = _decode_base58(value[1:])
    else:
        return False
    if raw is None:
        return False
    offset = 0
    fields: list[int] = []
    for _ in range(4):  # version, content codec, hash function, digest length
        read = _read_varint(raw, offset)
        if read is None:
            return False
        field, offset = read
        fields.append(field)
    version, _codec, _hash_function, digest_length = fields
    return version == 1 and digest_length == len(raw) - offset


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


# --- compiled validators -------------------------------------------------------------------------

_MISSING: Final = object()
_StringCheck = Callable[[str, str], None]


class _Node(ABC):
    """A compiled schema: checks a value and answers it, with defaults filled in where declared."""

    __slots__ = ()

    @abstractmethod
    def check(self, value: object, path: str) -> object: ...


class _StringNode(_Node):
    __slots__ = ("_checks",)

    def __init__(self, checks: Sequence[_StringCheck]) -> None:
        self._checks = tuple(checks)

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, str):
            raise _fail(path, "must be a string")
        if "\0" in value:  # no field means it, and PostgreSQL cannot store it in text
            raise _fail(path, "must not contain the NUL character")
        for string_check in self._checks:
            string_check(value, path)
        return value


def _const_check(const: str) -> _StringCheck:
    def check(value: str, path: str) -> None:
        if value != const:
            raise _fail(path, f'must be "{const}"')

    return check


def _enum_check(allowed: Sequence[str]) -> _StringCheck:
    members = frozenset(allowed)
    listing = "|".join(allowed)

    def check(value: str, path: str) -> None:
        if value not in members:
            raise _fail(path, f"must be one of ({listing})")

    return check


def _bounds_check(minimum: int | None, maximum: int | None, size: int, unit: str, path: str) -> None:
    if minimum is not None and size < minimum:
        raise _fail(path, f"must not be shorter than {minimum} {unit}")
    if maximum is not None and size > maximum:
        raise _fail(path, f"must not be longer than {maximum} {unit}")


def _byte_length_check(minimum: int | None, maximum: int | None) -> _StringCheck:
    def check(value: str, path: str) -> None:
        _bounds_check(minimum, maximum, utf8_length(value), "bytes", path)

    return check


def _grapheme_length_check(minimum: int | None, maximum: int | None) -> _StringCheck:
    def check(value: str, path: str) -> None:
        # A string never has more graphemes than code points, so short strings need no counting.
        if minimum is None and maximum is not None and len(value) <= maximum:
            return
        _bounds_check(minimum, maximum, grapheme_length(value), "graphemes", path)

    return check


def _format_check(name: str, predicate: Callable[[str], bool]) -> _StringCheck:
    message = f"must be a valid {name}"

    def check(value: str, path: str) -> None:
        if not predicate(value):
            raise _fail(path, message)

    return check


# atproto's data model has 64-bit signed integers: a field without bounds of its own gets these, so
# no integer a caller sends is too large for a BIGINT column.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class _IntegerNode(_Node):
    __slots__ = ("_allowed", "_maximum", "_minimum")

    def __init__(self, minimum: int | None, maximum: int | None, allowed: frozenset[int] | None) -> None:
        self._minimum = INT64_MIN if minimum is None else minimum
        self._maximum = INT64_MAX if maximum is None else maximum
        self._allowed = allowed

    def check(self, value: object, path: str) -> object:
        if type(value) is not int:
            raise _fail(path, "must be an integer")
        if value < self._minimum:
            raise _fail(path, f"must be >= {self._minimum}")
        if value > self._maximum:
            raise _fail(path, f"must be <= {self._maximum}")
        if self._allowed is not None and value not in self._allowed:
            raise _fail(path, f"must be one of ({'|'.join(map(str, sorted(self._allowed)))})")
        return value


class _BooleanNode(_Node):
    __slots__ = ("_const",)

    def __init__(self, const: bool | None) -> None:
        self._const = const

    def check(self, value: object, path: str) -> object:
        if type(value) is not bool:
            raise _fail(path, "must be a boolean")
        if self._const is not None and value is not self._const:
            raise _fail(path, f"must be {str(self._const).lower()}")
        return value


class _NullNode(_Node):
    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        if value is not None:
            raise _fail(path, "must be null")
        return value


class _AnyNode(_Node):
    """A parameter of type ``unknown``: its text is passed on as it is."""

    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        return value


class _UnknownNode(_Node):
    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise _fail(path, "must be an object")
        return value


class _TokenNode(_Node):
    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def check(self, value: object, path: str) -> object:
        if value != self._token:
            raise _fail(path, f'must be "{self._token}"')
        return value


class _BytesNode(_Node):
    __slots__ = ("_max", "_min")

    def __init__(self, minimum: int | None, maximum: int | None) -> None:
        self._min = minimum
        self._max = maximum

    def check(self, value: object, path: str) -> object:
        encoded = value.get("$bytes") if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(encoded, str):
            raise _fail(path, 'must be an object with only the property "$bytes"')
        try:
            data = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII string
            raise _fail(path, "must hold base64-encoded bytes") from None
        if self._min is not None and len(data) < self._min:
            raise _fail(path, f"must not be shorter than {self._min} bytes")
        if self._max is not None and len(data) > self._max:
            raise _fail(path, f"must not be longer than {self._max} bytes")
        return value


def _check_link(value: object, path: str) -> None:
    link = value.get("$link") if isinstance(value, dict) and len(value) == 1 else None
    if not isinstance(link, str) or not is_cid(link):
        raise _fail(path, 'must be an object with only the property "$link" holding a CID')


class _CidLinkNode(_Node):
    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        _check_link(value, path)
        return value


class _BlobNode(_Node):
    __slots__ = ("_accept", "_max_size")

    def __init__(self, accept: tuple[str, ...] | None, max_size: int | None) -> None:
        self._accept = accept
        self._max_size = max_size

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, dict) or value.get("$type") != "blob":
            raise _fail(path, 'must be a blob (an object with "$type": "blob")')
        _check_link(value.get("ref"), f"{path}/ref")
        mime_type, size = value.get("mimeType"), value.get("size")
        if not isinstance(mime_type, str) or not mime_type:
            raise _fail(f"{path}/mimeType", "must be a non-empty string")
        if type(size) is not int or size < 0:
            raise _fail(f"{path}/size", "must be an integer >= 0")
        if self._max_size is not None and size > self._max_size:
            raise _fail(f"{path}/size", f"must be <= {self._max_size}")
        if self._accept is not None and not any(_mime_matches(a, mime_type) for a in self._accept):
            raise _fail(f"{path}/mimeType", f"must be one of {', '.join(self._accept)}")
        return value


def _mime_matches(pattern: str, mime_type: str) -> bool:
    if pattern == "*/*":
        return True
    if pattern.endswith("/*"):
        return mime_type.startswith(pattern[:-1])
    return mime_type == pattern


@dataclass(frozen=True, slots=True)
class _Property:
    name: str
    node: _Node
    required: bool
    nullable: bool
    default: object


class _ObjectNode(_Node):
    __slots__ = ("_properties",)

    def __init__(self, properties: Sequence[_Property]) -> None:
        self._properties = tuple(properties)

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise _fail(path, "must be an object")
        result: dict[str, object] = value
        for prop in self._properties:
            item = value.get(prop.name, _MISSING)
            if item is _MISSING:
                if prop.required:
                    raise _fail(path, f'must have the property "{prop.name}"')
                if prop.default is _MISSING:
                    continue
                checked = prop.default
            elif item is None and prop.nullable:
                continue
            else:
                checked = prop.node.check(item, f"{path}/{prop.name}")
                if checked is item:
                    continue
            if result is value:
                result = dict(value)
            result[prop.name] = checked
        return result


class _ArrayNode(_Node):
    __slots__ = ("_items", "_max", "_min")

    def __init__(self, items: _Node, minimum: int | None, maximum: int | None) -> None:
        self._items = items
        self._min = minimum
        self._max = maximum

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, list):
            raise _fail(path, "must be an array")
        if self._min is not None and len(value) < self._min:
            raise _fail(path, f"must not have fewer than {self._min} elements")
        if self._max is not None and len(value) > self._max:
            raise _fail(path, f"must not have more than {self._max} elements")
        result: list[object] = value
        for index, item in enumerate(value):
            checked = self._items.check(item, f"{path}/{index}")
            if checked is not item:
                if result is value:
                    result = list(value)
                result[index] = checked
        return result


class _Unresolved(_Node):
    """Stands in for a reference target until all documents are compiled."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def check(self, value: object, path: str) -> object:
        raise RuntimeError(f"lexicon reference {self._key} was never resolved")


class _RefNode(_Node):
    __slots__ = ("key", "target")

    def __init__(self, key: str) -> None:
        self.key = key
        self.target: _Node = _Unresolved(key)

    def check(self, value: object, path: str) -> object:
        return self.target.check(value, path)


class _UnionNode(_Node):
    __slots__ = ("_closed", "_names", "_targets")

    def __init__(self, targets: Mapping[str, _RefNode], names: Sequence[str], closed: bool) -> None:
        self._targets = dict(targets)
        self._names = ", ".join(names)
        self._closed = closed

    def check(self, value: object, path: str) -> object:
        type_name = value.get("$type") if isinstance(value, dict) else None
        if not isinstance(type_name, str):
            raise _fail(path, 'must be an object which includes the "$type" property')
        target = self._targets.get(type_name.removesuffix("#main"))
        if target is not None:
            return target.check(value, path)
        if self._closed:
            raise _fail(f"{path}/$type", f"must be one of {self._names}")
        return value


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    coerce: Callable[[str, str], object]
    node: _Node
    is_array: bool
    required: bool
    default: object


_INTEGER_TEXT: Final = re.compile(r"-?[0-9]{1,19}")


def _integer_from_text(text: str, path: str) -> object:
    if _INTEGER_TEXT.fullmatch(text) is None:
        raise _fail(path, "must be an integer")
    return int(text)


def _boolean_from_text(text: str, path: str) -> object:
    if text == "true":
        return True
    if text == "false":
        return False
    raise _fail(path, 'must be a boolean ("true" or "false")')


def _text(text: str, _path: str) -> object:
    return text


_PARAM_COERCERS: Final[Mapping[str, Callable[[str, str], object]]] = {
    "integer": _integer_from_text,
    "boolean": _boolean_from_text,
    "string": _text,
    "unknown": _text,
}


class _ParamsNode:
    """Query-string parameters: each value is coerced from text per its type, then checked."""

    __slots__ = ("_params",)

    def __init__(self, params: Sequence[_Param]) -> None:
        self._params = tuple(params)

    def check(self, query: Mapping[str, str | list[str]]) -> dict[str, object]:
        result: dict[str, object] = {}
        for param in self._params:
            raw = query.get(param.name)
            texts = [raw] if isinstance(raw, str) else list(raw or ())
            path = f"Params/{param.name}"
            if not texts:
                if param.required:
                    raise _fail("Params", f'must have the property "{param.name}"')
                if param.default is not _MISSING:
                    result[param.name] = param.default
                continue
            if param.is_array:
                value: object = [param.coerce(text, f"{path}/{i}") for i, text in enumerate(texts)]
            elif len(texts) == 1:
                value = param.coerce(texts[0], path)
            else:
                raise _fail(path, "must be given once")
            result[param.name] = param.node.check(value, path)
        return result


# --- compiling lexicon documents -----------------------------------------------------------------


class _Schema:
    """Typed, checked access to one JSON object of a lexicon document; errors say where it is."""

    __slots__ = ("data", "lexicon_id", "where")

    def __init__(self, data: object, where: str, lexicon_id: str) -> None:
        if not isinstance(data, dict):
            raise LexiconLoadError(f"{where} must be a JSON object", lexicon_id)
        self.data: dict[str, object] = data
        self.where = where
        self.lexicon_id = lexicon_id

    def error(self, message: str) -> LexiconLoadError:
        return LexiconLoadError(f"{self.where}: {message}", self.lexicon_id)

    def child(self, key: str) -> _Schema | None:
        value = self.data.get(key)
        return None if value is None else _Schema(value, f"{self.where}/{key}", self.lexicon_id)

    def string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f'"{key}" must be a string')
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key)
        if value is None:
            raise self.error(f'"{key}" is required')
        return value

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and type(value) is not int:
            raise self.error(f'"{key}" must be an integer')
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is not None and type(value) is not bool:
            raise self.error(f'"{key}" must be a boolean')
        return value

    def strings(self, key: str) -> list[str] | None:
        value = self.data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise self.error(f'"{key}" must be an array of strings')
        return value

    def integers(self, key: str) -> list[int] | None:
        value = self.data.get(key)
        if value is not None and not (isinstance(value, list) and all(type(v) is int for v in value)):
            raise self.error(f'"{key}" must be an array of integers')
        return value

    def scalar(self, key: str, kind: type[object]) -> object:
        """A ``default`` or ``const`` value, which must have the field's own type."""
        value = self.data.get(key, _MISSING)
        if value is not _MISSING and type(value) is not kind:
            raise self.error(f'"{key}" must be a {kind.__name__}')
        return value


_FIELD_TYPES: Final = frozenset(
    {"null", "boolean", "integer", "string", "bytes", "cid-link", "blob", "array", "object", "ref",
     "union", "unknown", "token"}
)  # fmt: skip
_PARAM_TYPES: Final = frozenset(_PARAM_COERCERS)
_BODY_SCHEMA_TYPES: Final = frozenset({"object", "ref", "union"})
_METHOD_TYPES: Final = frozenset({"query", "procedure"})
_PRIMARY_TYPES: Final = _METHOD_TYPES | {"record"}


def _full_ref(ref: str, lexicon_id: str) -> str:
    """``#x`` → ``<lexicon_id>#x``; ``a.b.c`` → ``a.b.c#main``."""
    if ref.startswith("#"):
        return f"{lexicon_id}{ref}"
    return ref if "#" in ref else f"{ref}#main"


class _Compiler:
    """Compiles the definitions of a set of documents and links their references."""

    def __init__(self) -> None:
        self.defs: dict[str, _Node] = {}
        self.refs: list[tuple[_RefNode, _Schema]] = []

    def field(self, schema: _Schema) -> _Node:
        kind = schema.required_string("type")
        if kind not in _FIELD_TYPES:
            raise schema.error(f'type "{kind}" is not allowed here')
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            allowed = schema.integers("enum")
            const = schema.scalar("const", int)
            schema.scalar("default", int)
            if const is not _MISSING:
                allowed = [cast(int, const)]
            return _IntegerNode(
                schema.integer("minimum"),
                schema.integer("maximum"),
                None if allowed is None else frozenset(allowed),
            )
        if kind == "boolean":
            const = schema.scalar("const", bool)
            schema.scalar("default", bool)
            return _BooleanNode(None if const is _MISSING else cast(bool, const))
        if kind == "object":
            return self.object(schema)
        if kind == "array":
            items = schema.child("items")
            if items is None:
                raise schema.error('"items" is required')
            return _ArrayNode(self.field(items), schema.integer("minLength"), schema.integer("maxLength"))
        if kind == "ref":
            return self.ref(schema, schema.required_string("ref"))
        if kind == "union":
            return self.union(schema)
        if kind == "bytes":
            return _BytesNode(schema.integer("minLength"), schema.integer("maxLength"))
        if kind == "blob":
            accept = schema.strings("accept")
            return _BlobNode(None if accept is None else tuple(accept), schema.integer("maxSize"))
        if kind == "cid-link":
            return _CidLinkNode()
        if kind == "null":
            return _NullNode()
        if kind == "unknown":
            return _UnknownNode()
        raise schema.error("a token can only be a definition of its own, not a field")

    def string(self, schema: _Schema) -> _StringNode:
        checks: list[_StringCheck] = []
        const = schema.scalar("const", str)
        schema.scalar("default", str)
        if const is not _MISSING:
            checks.append(_const_check(cast(str, const)))
        allowed = schema.strings("enum")
        if allowed is not None:
            checks.append(_enum_check(allowed))
        min_bytes, max_bytes = schema.integer("minLength"), schema.integer("maxLength")
        if min_bytes is not None or max_bytes is not None:
            checks.append(_byte_length_check(min_bytes, max_bytes))
        min_graphemes, max_graphemes = schema.integer("minGraphemes"), schema.integer("maxGraphemes")
        if min_graphemes is not None or max_graphemes is not None:
            checks.append(_grapheme_length_check(min_graphemes, max_graphemes))
        format_name = schema.string("format")
        if format_name is not None:
            if format_name not in FORMATS:
                raise schema.error(f'unknown string format "{format_name}"')
            checks.append(_format_check(format_name, FORMATS[format_name]))
        return _StringNode(checks)

    def object(self, schema: _Schema) -> _ObjectNode:
        properties = schema.child("properties")
        members = {} if properties is None else properties.data
        required = set(schema.strings("required") or ())
        nullable = set(schema.strings("nullable") or ())
        undeclared = sorted((required | nullable) - members.keys())
        if undeclared:
            raise schema.error(f'"{undeclared[0]}" is required or nullable but not among the properties')
        compiled = []
        for name, member in members.items():
            member_schema = _Schema(member, f"{schema.where}/properties/{name}", schema.lexicon_id)
            compiled.append(
                _Property(
                    name,
                    self.field(member_schema),
                    name in required,
                    name in nullable,
                    member_schema.data.get("default", _MISSING),
                )
            )
        return _ObjectNode(compiled)

    def ref(self, schema: _Schema, ref: str) -> _RefNode:
        node = _RefNode(_full_ref(ref, schema.lexicon_id))
        self.refs.append((node, schema))
        return node

    def union(self, schema: _Schema) -> _UnionNode:
        refs = schema.strings("refs")
        if refs is None:
            raise schema.error('"refs" is required')
        targets = {}
        for ref in refs:
            node = self.ref(schema, ref)
            targets[node.key.removesuffix("#main")] = node
        return _UnionNode(targets, refs, bool(schema.boolean("closed")))

    def params(self, schema: _Schema) -> _ParamsNode:
        if schema.string("type") != "params":
            raise schema.error('"type" must be "params"')
        properties = schema.child("properties")
        members = {} if properties is None else properties.data
        required = set(schema.strings("required") or ())
        undeclared = sorted(required - members.keys())
        if undeclared:
            raise schema.error(f'"{undeclared[0]}" is required but not among the properties')
        params = []
        for name, member in members.items():
            member_schema = _Schema(member, f"{schema.where}/properties/{name}", schema.lexicon_id)
            kind = member_schema.required_string("type")
            scalar_schema = member_schema.child("items") if kind == "array" else member_schema
            scalar_kind = None if scalar_schema is None else scalar_schema.string("type")
            if scalar_kind not in _PARAM_TYPES:
                raise member_schema.error(
                    "a parameter must be a boolean, integer, string or unknown, or an array"
                )
            if scalar_kind != "unknown":
                node = self.field(member_schema)
            elif kind == "array":
                node = _ArrayNode(
                    _AnyNode(), member_schema.integer("minLength"), member_schema.integer("maxLength")
                )
            else:
                node = _AnyNode()
            params.append(
                _Param(
                    name,
                    _PARAM_COERCERS[scalar_kind],
                    node,
                    kind == "array",
                    name in required,
                    member_schema.data.get("default", _MISSING),
                )
            )
        return _ParamsNode(params)

    def link(self) -> None:
        for node, schema in self.refs:
            target = self.defs.get(node.key)
            if target is None:
                raise schema.error(f'reference "{node.key}" does not resolve to a loaded definition')
            node.target = target


# --- documents and the registry ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Method:
    schema: MethodSchema
    params: _ParamsNode | None
    input: _Node | None
    output: _Node | None


_RECORD_KEY_TYPES: Final = frozenset({"tid", "nsid", "any"})


def _body(compiler: _Compiler, method: _Schema, key: str) -> tuple[JsonObject | None, _Node | None]:
    """The raw ``input``/``output`` of a method and the compiled validator of its ``schema``."""
    body = method.child(key)
    if body is None:
        return None, None
    body.required_string("encoding")
    schema = body.child("schema")
    if schema is None:
        return body.data, None
    if schema.string("type") not in _BODY_SCHEMA_TYPES:
        raise schema.error('"type" must be "object", "ref" or "union"')
    return body.data, compiler.field(schema)


def _compile_method(compiler: _Compiler, schema: _Schema, nsid: str, kind: str) -> _Method:
    parameters = schema.child("parameters")
    if kind == "query" and "input" in schema.data:
        raise schema.error("a query has no input")
    input_data, input_node = _body(compiler, schema, "input")
    output_data, output_node = _body(compiler, schema, "output")
    errors = []
    for index, entry in enumerate(cast(list[object], schema.data.get("errors") or [])):
        errors.append(_Schema(entry, f"{schema.where}/errors/{index}", nsid).required_string("name"))
    return _Method(
        MethodSchema(
            nsid=nsid,
            kind="query" if kind == "query" else "procedure",
            description=schema.string("description"),
            parameters=None if parameters is None else parameters.data,
            input=input_data,
            output=output_data,
            errors=tuple(errors),
        ),
        None if parameters is None else compiler.params(parameters),
        input_node,
        output_node,
    )


def _compile_document(
    compiler: _Compiler, document: object, methods: dict[str, _Method], records: dict[str, _Node]
) -> str:
    """Compiles the definitions of one document into ``compiler``; answers the document's NSID."""
    lexicon_id = document.get("id") if isinstance(document, dict) else None
    if not isinstance(lexicon_id, str) or not is_nsid(lexicon_id):
        raise LexiconLoadError(
            'a lexicon document must be a JSON object whose "id" is a valid NSID',
            lexicon_id if isinstance(lexicon_id, str) else None,
        )
    top = _Schema(document, lexicon_id, lexicon_id)
    if top.integer("lexicon") != 1:
        raise top.error('"lexicon" must be 1')
    defs = top.child("defs")
    if defs is None or not defs.data:
        raise top.error('"defs" must hold at least one definition')
    for name, definition in defs.data.items():
        key = f"{lexicon_id}#{name}"
        schema = _Schema(definition, key, lexicon_id)
        kind = schema.required_string("type")
        if kind in _PRIMARY_TYPES and name != "main":
            raise schema.error(f"a {kind} must be the main definition")
        if kind == "record":
            record_key = schema.required_string("key")
            if record_key not in _RECORD_KEY_TYPES and not record_key.startswith("literal:"):
                raise schema.error(f'unknown record key type "{record_key}"')
            record = schema.child("record")
            if record is None or record.string("type") != "object":
                raise schema.error('"record" must be an object schema')
            compiler.defs[key] = records[lexicon_id] = compiler.object(record)
        elif kind in _METHOD_TYPES:
            methods[lexicon_id] = _compile_method(compiler, schema, lexicon_id, kind)
        elif kind == "token":
            compiler.defs[key] = _TokenNode(lexicon_id if name == "main" else key)
        elif kind in _FIELD_TYPES:
            compiler.defs[key] = compiler.field(schema)
        else:
            raise schema.error(f'definition type "{kind}" is not supported')
    return lexicon_id


class Lexicons:
    """A compiled set of lexicon documents: looks up methods and validates values against them."""

    def __init__(self, documents: Iterable[object]) -> None:
        """Compiles parsed lexicon documents; raises :class:`LexiconLoadError` for a bad one."""
        compiler = _Compiler()
        self._documents: dict[str, dict[str, object]] = {}
        self._methods: dict[str, _Method] = {}
        self._records: dict[str, _Node] = {}
        seen: set[str] = set()
        for document in documents:
            lexicon_id = _compile_document(compiler, document, self._methods, self._records)
            if lexicon_id in seen:
                raise LexiconLoadError(f"{lexicon_id}: defined by two documents", lexicon_id)
            seen.add(lexicon_id)
            self._documents[lexicon_id] = cast(dict[str, object], document)
        compiler.link()
        self._method_nsids = frozenset(self._methods)

    @classmethod
    def load(cls, root: Path) -> Lexicons:
        """Loads every ``*.json`` file under ``root``; errors name the offending file."""
        documents: list[object] = []
        paths: dict[str, Path] = {}
        for path in sorted(root.rglob("*.json")):
            try:
                document = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise LexiconLoadError(f"{path}: not a readable JSON document ({exc})") from exc
            lexicon_id = document.get("id") if isinstance(document, dict) else None
            if not isinstance(lexicon_id, str):
                raise LexiconLoadError(f'{path}: a lexicon document must be a JSON object with an "id"')
            if lexicon_id in paths:
                raise LexiconLoadError(
                    f"{path}: {lexicon_id} is already defined by {paths[lexicon_id]}", lexicon_id
                )
            paths[lexicon_id] = path
            documents.append(document)
        if not documents:
            raise LexiconLoadError(f"{root}: no lexicon documents found")
        try:
            return cls(documents)
        except LexiconLoadError as exc:
            raise LexiconLoadError(f"{paths.get(exc.lexicon_id or '', root)}: {exc}", exc.lexicon_id) from exc

    def method(self, nsid: str) -> MethodSchema | None:
        """The query or procedure ``nsid``, or None when no loaded lexicon declares it."""
        method = self._methods.get(nsid)
        return None if method is None else method.schema

    def method_nsids(self) -> frozenset[str]:
        return self._method_nsids

    def document(self, nsid: str) -> dict[str, object] | None:
        """The lexicon document ``nsid`` as loaded, for publishing."""
        return self._documents.get(nsid)

    def _method(self, nsid: str) -> _Method:
        method = self._methods.get(nsid)
        if method is None:
            raise MethodNotImplemented(f"method {nsid} is not declared by any lexicon")
        return method

    def validate_params(self, nsid: str, params: Mapping[str, str | list[str]]) -> dict[str, object]:
        """Coerces query-string values to their declared types and checks them; unknown ones are dropped."""
        compiled = self._method(nsid).params
        return {} if compiled is None else compiled.check(params)

    def validate_input(self, nsid: str, body: object) -> dict[str, object]:
        """Checks a procedure's JSON body; answers it with declared defaults filled in (no input: {})."""
        compiled = self._method(nsid).input
        if compiled is None:
            return {}
        if not isinstance(body, dict):
            raise _fail("Input", "must be an object")
        return cast(dict[str, object], compiled.check(body, "Input"))

    def validate_output(self, nsid: str, body: object) -> None:
        """Checks a method's JSON answer; a failure here is a fault of this service, not the caller."""
        compiled = self._method(nsid).output
        if compiled is not None:
            compiled.check(body, "Output")

    def validate_record(self, nsid: str, record: object) -> None:
        """Checks a record of the collection ``nsid``; its ``$type``, when present, must be ``nsid``."""
        compiled = self._records.get(nsid)
        if compiled is None:
            raise LexiconValidationError(f"Record type {nsid} is not declared by any lexicon")
        if isinstance(record, dict) and record.get("$type", nsid) != nsid:
            raise _fail("Record/$type", f'must be "{nsid}"')
        compiled.check(record, "Record")

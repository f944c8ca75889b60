"""The compiled validators: a tree of small nodes, each checking one value and answering it.

A node answers the value it was given, or a copy with declared defaults filled in. Every refusal is a
:class:`LexiconValidationError` whose message starts with the path of the bad value (``Input/items/0``).
Beyond atproto's rules, no string may hold a NUL, and an integer without bounds of its own must fit
64 bits signed (a BIGINT column).
"""

from __future__ import annotations

import base64
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from server.errors import InvalidRequest
from server.xrpc.lexicon.formats import grapheme_length, is_cid, utf8_length


class LexiconValidationError(InvalidRequest):
    """A value does not match its lexicon; the message starts with the path of the bad value."""


def fail(path: str, message: str) -> LexiconValidationError:
    return LexiconValidationError(f"{path} {message}")


# A property or parameter that is absent, or that declares no default.
MISSING: Final = object()
StringCheck = Callable[[str, str], None]


class Node(ABC):
    """A compiled schema: checks a value and answers it, with defaults filled in where declared."""

    __slots__ = ()

    @abstractmethod
    def check(self, value: object, path: str) -> object: ...


class StringNode(Node):
    __slots__ = ("_checks",)

    def __init__(self, checks: Sequence[StringCheck]) -> None:
        self._checks = tuple(checks)

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, str):
            raise fail(path, "must be a string")
        if "\0" in value:  # no field means it, and PostgreSQL cannot store it in text
            raise fail(path, "must not contain the NUL character")
        for string_check in self._checks:
            string_check(value, path)
        return value


def const_check(const: str) -> StringCheck:
    def check(value: str, path: str) -> None:
        if value != const:
            raise fail(path, f'must be "{const}"')

    return check


def enum_check(allowed: Sequence[str]) -> StringCheck:
    members = frozenset(allowed)
    listing = "|".join(allowed)

    def check(value: str, path: str) -> None:
        if value not in members:
            raise fail(path, f"must be one of ({listing})")

    return check


def _bounds_check(minimum: int | None, maximum: int | None, size: int, unit: str, path: str) -> None:
    if minimum is not None and size < minimum:
        raise fail(path, f"must not be shorter than {minimum} {unit}")
    if maximum is not None and size > maximum:
        raise fail(path, f"must not be longer than {maximum} {unit}")


def byte_length_check(minimum: int | None, maximum: int | None) -> StringCheck:
    def check(value: str, path: str) -> None:
        _bounds_check(minimum, maximum, utf8_length(value), "bytes", path)

    return check


def grapheme_length_check(minimum: int | None, maximum: int | None) -> StringCheck:
    def check(value: str, path: str) -> None:
        # A string never has more graphemes than code points, so short strings need no counting.
        if minimum is None and maximum is not None and len(value) <= maximum:
            return
        _bounds_check(minimum, maximum, grapheme_length(value), "graphemes", path)

    return check


def format_check(name: str, predicate: Callable[[str], bool]) -> StringCheck:
    message = f"must be a valid {name}"

    def check(value: str, path: str) -> None:
        if not predicate(value):
            raise fail(path, message)

    return check


# atproto's data model has 64-bit signed integers: a field without bounds of its own gets these, so
# no integer a caller sends is too large for a BIGINT column.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class IntegerNode(Node):
    __slots__ = ("_allowed", "_maximum", "_minimum")

    def __init__(self, minimum: int | None, maximum: int | None, allowed: frozenset[int] | None) -> None:
        self._minimum = INT64_MIN if minimum is None else minimum
        self._maximum = INT64_MAX if maximum is None else maximum
        self._allowed = allowed

    def check(self, value: object, path: str) -> object:
        if type(value) is not int:
            raise fail(path, "must be an integer")
        if value < self._minimum:
            raise fail(path, f"must be >= {self._minimum}")
        if value > self._maximum:
            raise fail(path, f"must be <= {self._maximum}")
        if self._allowed is not None and value not in self._allowed:
            raise fail(path, f"must be one of ({'|'.join(map(str, sorted(self._allowed)))})")
        return value


class BooleanNode(Node):
    __slots__ = ("_const",)

    def __init__(self, const: bool | None) -> None:
        self._const = const

    def check(self, value: object, path: str) -> object:
        if type(value) is not bool:
            raise fail(path, "must be a boolean")
        if self._const is not None and value is not self._const:
            raise fail(path, f"must be {str(self._const).lower()}")
        return value


class NullNode(Node):
    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        if value is not None:
            raise fail(path, "must be null")
        return value


class AnyNode(Node):
    """A parameter of type ``unknown``: its text is passed on as it is."""

    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        return value


class UnknownNode(Node):
    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise fail(path, "must be an object")
        return value


class TokenNode(Node):
    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def check(self, value: object, path: str) -> object:
        if value != self._token:
            raise fail(path, f'must be "{self._token}"')
        return value


class BytesNode(Node):
    __slots__ = ("_max", "_min")

    def __init__(self, minimum: int | None, maximum: int | None) -> None:
        self._min = minimum
        self._max = maximum

    def check(self, value: object, path: str) -> object:
        encoded = value.get("$bytes") if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(encoded, str):
            raise fail(path, 'must be an object with only the property "$bytes"')
        try:
            data = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII string
            raise fail(path, "must hold base64-encoded bytes") from None
        if self._min is not None and len(data) < self._min:
            raise fail(path, f"must not be shorter than {self._min} bytes")
        if self._max is not None and len(data) > self._max:
            raise fail(path, f"must not be longer than {self._max} bytes")
        return value


def _check_link(value: object, path: str) -> None:
    link = value.get("$link") if isinstance(value, dict) and len(value) == 1 else None
    if not isinstance(link, str) or not is_cid(link):
        raise fail(path, 'must be an object with only the property "$link" holding a CID')


class CidLinkNode(Node):
    __slots__ = ()

    def check(self, value: object, path: str) -> object:
        _check_link(value, path)
        return value


class BlobNode(Node):
    __slots__ = ("_accept", "_max_size")

    def __init__(self, accept: tuple[str, ...] | None, max_size: int | None) -> None:
        self._accept = accept
        self._max_size = max_size

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, dict) or value.get("$type") != "blob":
            raise fail(path, 'must be a blob (an object with "$type": "blob")')
        _check_link(value.get("ref"), f"{path}/ref")
        mime_type, size = value.get("mimeType"), value.get("size")
        if not isinstance(mime_type, str) or not mime_type:
            raise fail(f"{path}/mimeType", "must be a non-empty string")
        if type(size) is not int or size < 0:
            raise fail(f"{path}/size", "must be an integer >= 0")
        if self._max_size is not None and size > self._max_size:
            raise fail(f"{path}/size", f"must be <= {self._max_size}")
        if self._accept is not None and not any(_mime_matches(a, mime_type) for a in self._accept):
            raise fail(f"{path}/mimeType", f"must be one of {', '.join(self._accept)}")
        return value


def _mime_matches(pattern: str, mime_type: str) -> bool:
    if pattern == "*/*":
        return True
    if pattern.endswith("/*"):
        return mime_type.startswith(pattern[:-1])
    return mime_type == pattern


@dataclass(frozen=True, slots=True)
class Property:
    name: str
    node: Node
    required: bool
    nullable: bool
    default: object


class ObjectNode(Node):
    __slots__ = ("_properties",)

    def __init__(self, properties: Sequence[Property]) -> None:
        self._properties = tuple(properties)

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise fail(path, "must be an object")
        result: dict[str, object] = value
        for prop in self._properties:
            item = value.get(prop.name, MISSING)
            if item is MISSING:
                if prop.required:
                    raise fail(path, f'must have the property "{prop.name}"')
                if prop.default is MISSING:
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


class ArrayNode(Node):
    __slots__ = ("_items", "_max", "_min")

    def __init__(self, items: Node, minimum: int | None, maximum: int | None) -> None:
        self._items = items
        self._min = minimum
        self._max = maximum

    def check(self, value: object, path: str) -> object:
        if not isinstance(value, list):
            raise fail(path, "must be an array")
        if self._min is not None and len(value) < self._min:
            raise fail(path, f"must not have fewer than {self._min} elements")
        if self._max is not None and len(value) > self._max:
            raise fail(path, f"must not have more than {self._max} elements")
        result: list[object] = value
        for index, item in enumerate(value):
            checked = self._items.check(item, f"{path}/{index}")
            if checked is not item:
                if result is value:
                    result = list(value)
                result[index] = checked
        return result


class _Unresolved(Node):
    """Stands in for a reference target until all documents are compiled."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def check(self, value: object, path: str) -> object:
        raise RuntimeError(f"lexicon reference {self._key} was never resolved")


class RefNode(Node):
    __slots__ = ("key", "target")

    def __init__(self, key: str) -> None:
        self.key = key
        self.target: Node = _Unresolved(key)

    def check(self, value: object, path: str) -> object:
        return self.target.check(value, path)


class UnionNode(Node):
    __slots__ = ("_closed", "_names", "_targets")

    def __init__(self, targets: Mapping[str, RefNode], names: Sequence[str], closed: bool) -> None:
        self._targets = dict(targets)
        self._names = ", ".join(names)
        self._closed = closed

    def check(self, value: object, path: str) -> object:
        type_name = value.get("$type") if isinstance(value, dict) else None
        if not isinstance(type_name, str):
            raise fail(path, 'must be an object which includes the "$type" property')
        target = self._targets.get(type_name.removesuffix("#main"))
        if target is not None:
            return target.check(value, path)
        if self._closed:
            raise fail(f"{path}/$type", f"must be one of {self._names}")
        return value


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    coerce: Callable[[str, str], object]
    node: Node
    is_array: bool
    required: bool
    default: object


_INTEGER_TEXT: Final = re.compile(r"-?[0-9]{1,19}")


def _integer_from_text(text: str, path: str) -> object:
    if _INTEGER_TEXT.fullmatch(text) is None:
        raise fail(path, "must be an integer")
    return int(text)


def _boolean_from_text(text: str, path: str) -> object:
    if text == "true":
        return True
    if text == "false":
        return False
    raise fail(path, 'must be a boolean ("true" or "false")')


def _text(text: str, _path: str) -> object:
    return text


PARAM_COERCERS: Final[Mapping[str, Callable[[str, str], object]]] = {
    "integer": _integer_from_text,
    "boolean": _boolean_from_text,
    "string": _text,
    "unknown": _text,
}


class ParamsNode:
    """Query-string parameters: each value is coerced from text per its type, then checked."""

    __slots__ = ("_params",)

    def __init__(self, params: Sequence[Param]) -> None:
        self._params = tuple(params)

    def check(self, query: Mapping[str, str | list[str]]) -> dict[str, object]:
        result: dict[str, object] = {}
        for param in self._params:
            raw = query.get(param.name)
            texts = [raw] if isinstance(raw, str) else list(raw or ())
            path = f"Params/{param.name}"
            if not texts:
                if param.required:
                    raise fail("Params", f'must have the property "{param.name}"')
                if param.default is not MISSING:
                    result[param.name] = param.default
                continue
            if param.is_array:
                value: object = [param.coerce(text, f"{path}/{i}") for i, text in enumerate(texts)]
            elif len(texts) == 1:
                value = param.coerce(texts[0], path)
            else:
                raise fail(path, "must be given once")
            result[param.name] = param.node.check(value, path)
        return result

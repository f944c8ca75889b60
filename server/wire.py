"""Checks on raw input that no handler should have to make: how deep a JSON text nests, before it
is parsed, and whether decoded JSON carries the NUL character, which PostgreSQL cannot store in
text and no field of this service means."""

from __future__ import annotations

import re
from typing import Final

# A JSON string, escapes included; the closing quote is optional so that an unterminated string
# still matches (in one pass) and the scan stays linear whatever the input.
_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKET: Final = re.compile(rb"[\[\]{}]")
_OPENERS: Final = frozenset(b"[{")
NUL_MESSAGE: Final = "text must not contain the NUL character (\\u0000)"


def nesting_exceeds(text: bytes, limit: int) -> bool:
    """Whether the arrays and objects of the JSON ``text`` nest more than ``limit`` deep: a scan
    of its brackets outside strings, so a parser never recurses into a hostile document."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub(b'""', text)):
        depth += 1 if bracket[0] in _OPENERS else -1
        if depth > limit:
            return True
    return False


def contains_nul(value: object) -> bool:
    """Whether a decoded JSON value has a NUL in any string or object key, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\0" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False

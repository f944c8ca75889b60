"""An event's place as people read it, from the ``locations`` of its calendar record.

``locations`` is a list of union objects: a street address (``community.lexicon.location.address``),
coordinates (``...location.geo``), a Foursquare place (``...location.fsq``), an H3 cell
(``...location.hthree``) or a link (``community.lexicon.calendar.event#uri``). Records are read
defensively: an item without ``$type`` is recognised by its shape, an unknown type still gives its
``name``, non-string values and control characters are dropped, and the text is short.
"""

from __future__ import annotations

import math
import re
from typing import Any

from server.atproto.text import clip

ADDRESS = "community.lexicon.location.address"
GEO = "community.lexicon.location.geo"
FSQ = "community.lexicon.location.fsq"
HTHREE = "community.lexicon.location.hthree"
URI = "community.lexicon.calendar.event#uri"
# At most this many locations are named, and the whole text is cut to the limits below.
MAX_LOCATIONS = 3
PLACE_MAX_GRAPHEMES = 300
PLACE_MAX_BYTES = 2000
_PART_MAX_GRAPHEMES = 120
_SEPARATOR = " · "
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")


def _text(value: object) -> str:
    """A string field as one short line (empty for anything else)."""
    if not isinstance(value, str):
        return ""
    line = _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()
    return clip(line, _PART_MAX_GRAPHEMES, _PART_MAX_GRAPHEMES * 8)


def _coordinate(value: object, bound: float) -> str:
    text = _text(value)
    try:
        number = float(text)
    except ValueError:
        return ""
    return text if math.isfinite(number) and abs(number) <= bound else ""


def _coordinates(item: dict[str, Any]) -> str:
    latitude, longitude = _coordinate(item.get("latitude"), 90), _coordinate(item.get("longitude"), 180)
    return f"{latitude}, {longitude}" if latitude and longitude else ""


def _kind(item: dict[str, Any]) -> str:
    kind = item.get("$type")
    if isinstance(kind, str):
        return kind.removesuffix("#main")
    if "country" in item:
        return ADDRESS
    if "fsq_place_id" in item:
        return FSQ
    if "latitude" in item and "longitude" in item:
        return GEO
    if "uri" in item:
        return URI
    return ""


def _address(item: dict[str, Any]) -> str:
    parts: list[str] = []
    for field in ("name", "street", "locality", "region", "postalCode", "country"):
        part = _text(item.get(field))
        if part and part not in parts:
            parts.append(part)
    return ", ".join(parts)


def _uri(item: dict[str, Any]) -> str:
    name = _text(item.get("name"))
    if name:
        return name
    uri = _text(item.get("uri"))
    return uri if uri.startswith(("https://", "http://")) else ""


def location_text(item: object) -> str:
    """One location as a line of text (empty when it says nothing a person can use)."""
    if not isinstance(item, dict):
        return ""
    kind = _kind(item)
    if kind == ADDRESS:
        return _address(item)
    if kind in (GEO, FSQ):
        return _text(item.get("name")) or _coordinates(item)
    if kind == URI:
        return _uri(item)
    return _text(item.get("name"))  # an H3 cell, or a kind this service does not know


def place_text(locations: object) -> str | None:
    """The record's places, the first few that say something, as one short line; None for none."""
    if not isinstance(locations, list):
        return None
    texts: list[str] = []
    for item in locations:
        text = location_text(item)
        if text and text not in texts:
            texts.append(text)
        if len(texts) == MAX_LOCATIONS:
            break
    return clip(_SEPARATOR.join(texts), PLACE_MAX_GRAPHEMES, PLACE_MAX_BYTES) or None

"""Strings from other people's records, cut to fit our limits without splitting a character."""

from __future__ import annotations

import regex

_GRAPHEME = regex.compile(r"\X")


def clip(text: str, max_graphemes: int, max_bytes: int) -> str:
    """``text`` cut after at most ``max_graphemes`` grapheme clusters and ``max_bytes`` UTF-8
    bytes, on a cluster boundary (a cut never leaves half an emoji or a bare combining mark)."""
    if len(text) <= max_graphemes and len(text.encode("utf-8", "surrogatepass")) <= max_bytes:
        return text
    kept: list[str] = []
    size = 0
    for count, match in enumerate(_GRAPHEME.finditer(text)):
        cluster = match.group()
        width = len(cluster.encode("utf-8", "surrogatepass"))
        if count == max_graphemes or size + width > max_bytes:
            break
        kept.append(cluster)
        size += width
    return "".join(kept)

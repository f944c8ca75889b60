"""Block letters for the verdict word, big enough to read from across the door."""

from __future__ import annotations

_GLYPHS: dict[str, tuple[str, ...]] = {
    "A": (" ███ ", "█   █", "█████", "█   █", "█   █"),
    "D": ("████ ", "█   █", "█   █", "█   █", "████ "),
    "E": ("█████", "█    ", "████ ", "█    ", "█████"),
    "F": ("█████", "█    ", "████ ", "█    ", "█    "),
    "I": ("███", " █ ", " █ ", " █ ", "███"),
    "M": ("█   █", "██ ██", "█ █ █", "█   █", "█   █"),
    "N": ("█   █", "██  █", "█ █ █", "█  ██", "█   █"),
    "O": (" ███ ", "█   █", "█   █", "█   █", " ███ "),
    "R": ("████ ", "█   █", "████ ", "█  █ ", "█   █"),
    "S": (" ████", "█    ", " ███ ", "    █", "████ "),
    "T": ("█████", "  █  ", "  █  ", "  █  ", "  █  "),
    "U": ("█   █", "█   █", "█   █", "█   █", " ███ "),
    "X": ("█   █", " █ █ ", "  █  ", " █ █ ", "█   █"),
}
ROWS = 5


def banner(word: str) -> list[str] | None:
    """``word`` in block letters, one string per row; None if a letter has no glyph."""
    try:
        glyphs = [_GLYPHS[letter] for letter in word.upper()]
    except KeyError:
        return None
    return [" ".join(glyph[row] for glyph in glyphs) for row in range(ROWS)]

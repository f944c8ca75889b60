"""Charts as inline SVG, drawn on the server: horizontal bars, one per labelled value. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

ROW = 28
LABEL_WIDTH = 140
BAR_WIDTH = 220
WIDTH = LABEL_WIDTH + BAR_WIDTH + 60


def bars(title: str, rows: Sequence[tuple[str, int]]) -> str:
    """One bar per ``(label, value)``, scaled to the largest value; an accessible ``<title>``."""
    height = max(1, len(rows)) * ROW + 8
    top = max((value for _, value in rows), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if not rows:
        parts.append('<text x="0" y="20" class="muted">nothing yet</text>')
    for n, (label, value) in enumerate(rows):
        y = 4 + n * ROW
        width = round(BAR_WIDTH * value / top)
        parts.append(f'<text x="0" y="{y + 17}">{escape(label[:22])}</text>')
        parts.append(f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width}" height="{ROW - 8}" rx="3"></rect>')
        parts.append(f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 17}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)

"""``tickets-scanner``: the desk scanner's command line."""

from __future__ import annotations

import sys


def main() -> None:
    print(
        "tickets-scanner: the desk scanner is not in this release yet; see the CHANGELOG.",
        file=sys.stderr,
    )
    raise SystemExit(2)

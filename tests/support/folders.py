"""Looking at a desk's data folder as whoever stole it would: every file's bytes, and the guest data
that must not be found in them."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sync.passes import ticket_id_to_bytes


def folder_bytes(folder: Path) -> dict[Path, bytes]:
    """Every file under ``folder`` (the store, its WAL and shared memory, the key file)."""
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def needles(ticket: dict[str, Any]) -> list[bytes]:
    """How a ticket's id, number and attendee name could appear in a file: as UTF-8 and UTF-16 text,
    any case, the number without its dashes, and the id's raw 16 bytes."""
    texts = [
        ticket["id"],
        ticket["attendeeName"],
        ticket["ticketNumber"],
        ticket["ticketNumber"].replace("-", ""),
    ]
    found = [ticket_id_to_bytes(ticket["id"])]
    for text in texts:
        for variant in {text, text.upper(), text.lower()}:
            found += [variant.encode(), variant.encode("utf-16-le")]
    return found


def leaks(folder: Path, tickets: Iterable[dict[str, Any]]) -> list[str]:
    """What of ``tickets`` the folder's files give away, as ``file: what`` lines (none, we hope)."""
    files = folder_bytes(folder)
    return [
        f"{path.name}: {needle!r}"
        for ticket in tickets
        for needle in needles(ticket)
        for path, content in files.items()
        if needle in content
    ]


def modes(folder: Path) -> dict[str, int]:
    """Permission bits of the folder (``.``) and of every file in it."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    found.update({path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()})
    return found

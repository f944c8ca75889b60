"""The status line: connecting, online, via a hub desk (or the hub lost) or offline; when the desk
last synced (kept across restarts); how many scans wait for upload; how old the offline data is, in
red when it is out of date."""

from __future__ import annotations

from textual.widgets import Static

from scanner_app.core.desk import SyncStatus


def age(ms: int) -> str:
    """``8 s``, ``3 min``, ``2 h 5 min``."""
    seconds = max(ms, 0) // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


LINKS = {
    "connecting": "◌ CONNECTING",
    "online": "● ONLINE",
    "hub": "◐ OFFLINE, syncing with the hub desk",
    "offline": "○ OFFLINE, deciding on this desk",
}


def describe(status: SyncStatus, now_ms: int, *, chosen: bool = True) -> str:
    """The line; ``chosen``: a check-in list is chosen (before that no data is out of date)."""
    link = LINKS[status.link]
    if status.hub_lost and status.link != "online":
        link = "○ OFFLINE, the hub desk is not answering"
    last = status.last_sync_ms
    synced = "never synced" if last is None else f"synced {age(now_ms - last)} ago"
    parts = [link]
    if status.conflicts:  # early in the line, so that it is never cut off
        parts.append(f"{status.conflicts} conflicts: F6")
    parts += [synced, f"{status.pending_uploads} to upload"]
    if not chosen:
        parts.append("no check-in list chosen")
    elif status.bundle_age_ms is None:
        parts.append("no offline data")
    else:
        parts.append(f"offline data {age(status.bundle_age_ms)} old")
    if chosen and status.stale:
        parts.append("OUT OF DATE")
    return " │ ".join(parts)


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; width: 100%; padding: 0 1; background: #1f5f99; color: #ffffff; }
    StatusBar.-offline { background: #5c5c5c; }
    StatusBar.-stale { background: #b00020; text-style: bold; }
    """

    def __init__(self) -> None:
        super().__init__("", markup=False)

    def show(self, status: SyncStatus, now_ms: int, *, chosen: bool = True) -> None:
        self.update(describe(status, now_ms, chosen=chosen))
        self.tooltip = status.problem
        self.set_class(not status.online, "-offline")
        self.set_class(chosen and status.stale, "-stale")

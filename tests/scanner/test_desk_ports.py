"""The desk core over adapters the test hands it: its records take their time from the clock it is
given and their ids from the id source it is given, and a peer that never answers sends every scan
to the offline decision. The store and the vault are the real ones; no server runs."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import DeskCore
from scanner_app.core.ports import BundleState, DeskEnrollment, ListInfo, PeerAddress, ServerUnreachable
from scanner_app.io.sqlite_store import SqliteDeskStore
from scanner_app.io.vault import SecretBoxVault
from sync.bundle import FORMAT_VERSION, TicketEntry, TicketIndex, pack_entries, seal_entry
from sync.checkin import Reason, Verdict
from sync.passes import ListSigningKey, PassPayload, encode_pass, ticket_id_from_bytes

LIST_ID = "checklist_door"
TIER_ID = "tier_door"
WALL_MS = 1_798_743_600_000  # 2026-12-31 20:00 UTC
ISSUED_S = WALL_MS // 1000 - 3600


class FixedClock:
    def __init__(self) -> None:
        self.wall = WALL_MS
        self.now_s = 50.0

    def wall_ms(self) -> int:
        return self.wall

    def monotonic(self) -> float:
        return self.now_s


class CountingIds:
    def __init__(self) -> None:
        self.made = 0

    def record_id(self) -> str:
        self.made += 1
        return f"rec_test_{self.made}"

    def hub_token(self) -> str:
        return "hub-token-of-the-test"


class Unreachable:
    """Every peer: no call of it is ever answered."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def connect(self, peer: PeerAddress) -> Unreachable:
        return self

    def _timed_out(self, method: str) -> dict[str, Any]:
        self.calls.append(method)
        raise ServerUnreachable("timed out")

    async def aclose(self) -> None:
        pass

    async def enroll(self, code: str, device_name: str | None) -> dict[str, Any]:
        return self._timed_out("enroll")

    async def check_in(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return self._timed_out("check_in")

    async def check_in_searched(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return self._timed_out("check_in_searched")

    async def bundle(self, list_id: str, since: int | None) -> dict[str, Any]:
        return self._timed_out("bundle")

    async def upload(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self._timed_out("upload")

    async def search(self, list_id: str, query: str) -> dict[str, Any]:
        return self._timed_out("search")

    async def pull(self, list_id: str, cursor: int) -> dict[str, Any]:
        return self._timed_out("pull")


def enrolled_store(folder: Path) -> str:
    """A desk's store enrolled for one list whose bundle holds one ticket; answers its pass."""
    key = ListSigningKey.generate()
    payload = PassPayload(ticket_id_from_bytes(bytes(range(16))), 0, ISSUED_S)
    index = TicketIndex()
    index.learn_tiers([TIER_ID])
    index.apply(
        pack_entries([seal_entry(TicketEntry(payload.ticket_id, "T-0001", "Ada", TIER_ID, "active", 0), 1)])
    )
    body = {
        "format": FORMAT_VERSION,
        "checkInListId": LIST_ID,
        "list": {"name": "Door", "status": "active", "tierIds": None},
        "keys": [
            {"keyId": key.key_id, "publicKey": base64.b64encode(key.public_key).decode(), "status": "active"}
        ],
        "tiers": {TIER_ID: "General admission"},
    }
    store = SqliteDeskStore(folder / "scanner.sqlite3")
    enrollment = DeskEnrollment(
        "http://127.0.0.1:9", "dev_test", "Test desk", "test", "event_test", (ListInfo(LIST_ID, "Door"),)
    )
    store.save_enrollment(enrollment, SecretBoxVault(folder, None).seal("dev_test.secret"))
    store.save_bundle(LIST_ID, BundleState(body, 1, WALL_MS - 60_000), index.entries, full=True)
    store.put_settings({"selected_list": LIST_ID})
    store.close()
    return encode_pass(payload, [key.sign(payload)])


async def test_a_scan_is_timed_and_named_by_what_the_core_is_handed(tmp_path: Path) -> None:
    token = enrolled_store(tmp_path)
    clock, ids, peers = FixedClock(), CountingIds(), Unreachable()
    settings = ScannerSettings(data_dir=tmp_path, representation_seconds=5)
    store = SqliteDeskStore(settings.database_path)
    core = DeskCore(settings, store, SecretBoxVault(tmp_path, None), peers, clock, ids)
    core.load()
    try:
        admitted = await core.scan(token)
        assert (admitted.verdict, admitted.reason, admitted.online) == (Verdict.ADMIT, Reason.OK, False)
        assert admitted.record.record_id == "rec_test_1" and admitted.latency_ms == 0
        assert [(r.record_id, r.device_ms) for r in store.records()] == [("rec_test_1", WALL_MS)]
        assert peers.calls == ["check_in"]  # asked once; the breaker keeps the next scans offline

        clock.now_s += 4.9  # within the re-presentation window, on the clock the core was given
        assert (await core.scan(token)).repeat
        clock.now_s += 0.2
        clock.wall += 1000
        again = await core.scan(token)
        assert (again.verdict, again.reason) == (Verdict.REFUSE, Reason.ALREADY_CHECKED_IN)
        assert [(r.record_id, r.device_ms) for r in store.records()][1:] == [("rec_test_2", WALL_MS + 1000)]
        assert core.status().bundle_age_ms == 61_000
        assert core.hub_token == "hub-token-of-the-test" and store.setting("hub_token") == core.hub_token
    finally:
        await core.close()

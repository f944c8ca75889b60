"""A desk uploads only its own check-in records: a record under another desk's id, or under the
server's own ``online``, refuses the whole batch (403 ``RecordDeviceMismatch``), so nobody can take
the key of a scan another device will make and spoil the holder's first real entry. On SQLite and
PostgreSQL."""

from __future__ import annotations

from conftest import Harness
from support.doors import enrolled_desk, record, sold


async def test_doors_a_desk_cannot_upload_under_a_borrowed_device_id(harness: Harness) -> None:
    _, tickets, list_id = await sold(harness, 2)
    thief = await enrolled_desk(harness, list_id)
    honest = await enrolled_desk(harness, list_id)
    borrowed = {
        "another desk": record(honest.device_id, 1, list_id, tickets[0]),
        "online": record("online", 1, list_id, tickets[1]),
    }
    own = record(thief.device_id, 9, list_id, tickets[1])
    for name, forged in borrowed.items():
        refused = await thief.call("uploadCheckIns", {"records": [own.to_wire(), forged.to_wire()]})
        assert refused.status_code == 403, name
        assert refused.json()["error"] == "RecordDeviceMismatch", name
    pulled = await thief.ok("pullCheckIns", {"checkInListId": list_id}, query=True)
    assert pulled["records"] == []  # nothing of the batches, not even the desk's own record

    # The holders' first real scans are admitted: at the honest desk under the very key that was
    # borrowed, and online.
    stored = await honest.ok("uploadCheckIns", {"records": [borrowed["another desk"].to_wire()]})
    assert [r["status"] for r in stored["results"]] == ["stored"]
    online = await harness.app.ok("checkInTicket", {"ticketToken": tickets[1]["passToken"]})
    assert online["status"] == "checked_in"

"""A desk's manual admission carries door staff's reason: bounded text, checked before anything is
stored. An over-long or non-text reason refuses the upload (400 ``InvalidRequest``), never a 5xx,
and nothing of the batch is stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Harness
from support.doors import enrolled_desk, record, sold


@pytest.mark.parametrize("reason", ["x" * 101, 7, ["booking"], {"why": "x"}, ""])
async def test_a_bad_manual_reason_is_refused_and_nothing_stored(harness: Harness, reason: Any) -> None:
    _, tickets, list_id = await sold(harness, 1)
    desk = await enrolled_desk(harness, list_id)
    wire = {**record(desk.device_id, 1, list_id, tickets[0]).to_wire(), "manualReason": reason}
    answer = await desk.call("uploadCheckIns", {"records": [wire]})
    assert answer.status_code == 400 and answer.json()["error"] == "InvalidRequest"
    pulled = await desk.ok("pullCheckIns", {"checkInListId": list_id}, query=True)
    assert pulled["records"] == []
    good = {**wire, "manualReason": "booking checked by hand"}
    assert [r["status"] for r in (await desk.ok("uploadCheckIns", {"records": [good]}))["results"]] == [
        "stored"
    ]
    (back,) = (await desk.ok("pullCheckIns", {"checkInListId": list_id}, query=True))["records"]
    assert back["manualReason"] == "booking checked by hand"

"""Attacks with a stolen desk credential on the desk methods: ``searchTickets`` gives no passes
(and every search is logged for the device, without its query), a searched ticket is checked in
by id only within the desk's event, and record sync carries ticket references, never ticket ids."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Harness
from scanner.desks import Sale, enrollment_code, sell
from sqlalchemy import select

from server.db.engine import Database
from server.db.models import CheckInRecord, DeviceSearch
from sync.passes import PassRejected, decode_pass
from sync.records import ticket_ref

NS = "tickets.atmosphere."


class StolenCredential:
    """Whoever holds a desk's credential, calling the device methods directly."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, credential: str) -> None:
        self.http, self.base_url, self.credential = http, base_url, credential
        self.device_id = credential.partition(".")[0]

    async def call(self, method: str, body: dict[str, Any], *, query: bool = False) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.credential}"}
        url = f"{self.base_url}/xrpc/{NS}{method}"
        if query:
            return await self.http.get(url, params=body, headers=headers)
        return await self.http.post(url, json=body, headers=headers)


async def stolen(h: Harness, sale: Sale) -> StolenCredential:
    code = await enrollment_code(h, [sale.main_list])
    url = f"{h.server.url}/xrpc/{NS}enrollDevice"
    answer = (await h.app.http.post(url, json={"code": code})).json()
    return StolenCredential(h.app.http, h.server.url, answer["credential"])


def no_pass_in(value: object) -> bool:
    """No string anywhere in ``value`` reads as a pass."""
    if isinstance(value, dict):
        return all(no_pass_in(v) for v in value.values())
    if isinstance(value, list):
        return all(no_pass_in(v) for v in value)
    if isinstance(value, str):
        try:
            decode_pass(value)
        except PassRejected:
            return True
        return False
    return True


async def logged_searches(h: Harness) -> list[DeviceSearch]:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(DeviceSearch).order_by(DeviceSearch.id)))
    finally:
        await db.dispose()


async def test_lostdesk_search_answers_no_pass_and_is_logged_without_its_query(harness: Harness) -> None:
    sale = await sell(harness, 3)
    desk = await stolen(harness, sale)
    number = sale.ticket(2)["ticketNumber"][:7]  # "K7QM2-9": a piece with its dash
    for query in ("GA 1", "ga", number):
        response = await desk.call("searchTickets", {"checkInListId": sale.main_list, "q": query}, query=True)
        assert response.status_code == 200
        found = response.json()["tickets"]
        assert found and all("passToken" not in match for match in found)
        assert no_pass_in(response.json())
        assert all(sale.token(n) not in response.text for n in range(3))

    logged = await logged_searches(harness)
    assert [(s.device_id, s.list_id, s.query_kind, s.matches) for s in logged] == [
        (desk.device_id, sale.main_list, "name", 1),
        (desk.device_id, sale.main_list, "name", 3),
        (desk.device_id, sale.main_list, "number", 1),
    ]
    columns = [str(getattr(s, c.key)) for s in logged for c in DeviceSearch.__table__.columns]
    assert not any(query in value for value in columns for query in ("GA 1", number))


async def test_lostdesk_a_searched_ticket_is_checked_in_by_id_within_the_desks_event(
    harness: Harness,
) -> None:
    sale, elsewhere = await sell(harness, 2), await sell(harness, 1)
    desk = await stolen(harness, sale)
    ticket_id = sale.ticket(1)["id"]
    body = {"ticketId": ticket_id, "checkInListId": sale.main_list, "idempotencyKey": "rec_manual_1"}
    first = await desk.call("checkInSearchedTicket", body)
    assert first.status_code == 200 and first.json()["status"] == "checked_in"
    assert first.json()["ticket"]["id"] == ticket_id and no_pass_in(first.json())
    again = await desk.call("checkInSearchedTicket", {**body, "idempotencyKey": "rec_manual_2"})
    assert again.json()["status"] == "already_checked_in"

    other_event = {**body, "ticketId": elsewhere.ticket(0)["id"], "idempotencyKey": "rec_manual_3"}
    refused = await desk.call("checkInSearchedTicket", other_event)
    assert refused.status_code == 404 and refused.json()["error"] == "TicketNotFound"
    unknown = await desk.call("checkInSearchedTicket", {**body, "ticketId": "ticket_nope"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "TicketNotFound"
    not_mine = await desk.call("checkInSearchedTicket", {**body, "checkInListId": elsewhere.main_list})
    assert not_mine.status_code == 401 and not_mine.json()["error"] == "DeviceAuthenticationRequired"


async def test_lostdesk_record_sync_names_tickets_by_reference(harness: Harness) -> None:
    sale = await sell(harness, 2)
    desk = await stolen(harness, sale)
    record = {
        "deviceId": desk.device_id,
        "id": "rec_1",
        "checkInListId": sale.main_list,
        "ticketRef": ticket_ref(sale.ticket(0)["id"]),
        "tokenGeneration": 1,
        "direction": "entry",
        "decision": "admit",
        "reason": "ok",
        "deviceTimeMs": 1_000,
        "clockOffsetMs": 0,
    }
    forged = {**record, "id": "rec_2", "ticketRef": "tref_" + "0" * 32}
    both = {**record, "id": "rec_3", "ticketId": sale.ticket(1)["id"]}
    uploaded = await desk.call("uploadCheckIns", {"records": [record, forged, both]})
    statuses = {r["id"]: r["status"] for r in uploaded.json()["results"]}
    assert statuses == {"rec_1": "stored", "rec_2": "rejected", "rec_3": "rejected"}

    db = Database(harness.settings.resolved_database_url)
    try:
        async with db.read() as session:
            stored = await session.scalar(select(CheckInRecord).where(CheckInRecord.id == "rec_1"))
    finally:
        await db.dispose()
    assert stored is not None and stored.ticket_id == sale.ticket(0)["id"]

    online = await harness.app.ok("checkInTicket", {"ticketToken": sale.token(1)})
    assert online["status"] == "checked_in"
    pulled = await desk.call("pullCheckIns", {"checkInListId": sale.main_list}, query=True)
    records = pulled.json()["records"]
    assert sorted(r["ticketRef"] for r in records) == sorted(ticket_ref(t["id"]) for t in sale.tickets)
    assert all("ticketId" not in r for r in records)
    assert all(t["id"] not in pulled.text for t in sale.tickets)

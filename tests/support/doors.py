"""Desks and sold tickets over real HTTP: a minimal desk client speaking the device methods, its
enrollment, and an event with paid tickets of one tier."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from server.db.engine import Database
from server.domain.devices import service as devices
from support.broker import FakeBroker, new_payment_id
from support.catalog import active_event, tier_id
from sync.checkin import Direction, Reason, Verdict
from sync.records import Record

if TYPE_CHECKING:
    from conftest import Harness

BROKER = FakeBroker()
NS = "tickets.atmosphere."


class Desk:
    """A minimal desk client speaking the device methods."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http, self.base_url = http, base_url
        self.credential = ""

    @property
    def device_id(self) -> str:
        return self.credential.split(".")[0]

    async def call(
        self, method: str, body: dict[str, Any] | None = None, *, query: bool = False
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.credential}"} if self.credential else {}
        url = f"{self.base_url}/xrpc/{NS}{method}"
        if query:
            return await self.http.get(url, params=body or {}, headers=headers)
        return await self.http.post(url, json=body or {}, headers=headers)

    async def ok(
        self, method: str, body: dict[str, Any] | None = None, *, query: bool = False
    ) -> dict[str, Any]:
        response = await self.call(method, body, query=query)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


async def enrollment(h: Harness, list_ids: list[str]) -> str:
    db = Database(h.settings.resolved_database_url)
    try:
        async with db.write() as session:
            made = await devices.create_enrollment(
                session, "test", list_ids, "Door 1", int(time.time() * 1000)
            )
    finally:
        await db.dispose()
    return made.code


async def sold(
    h: Harness, quantity: int = 3, *, customer_email: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    event = await active_event(h.app)
    tier = await tier_id(h.app, event, "GA", unit_amount=900, quantity=100)
    hold = await h.app.ok(
        "createTicketHold",
        {
            "items": [{"tierId": tier, "quantity": quantity}],
            "attendees": [{"name": f"Guest {n}"} for n in range(quantity)],
            **({"customerEmail": customer_email} if customer_email else {}),
        },
    )
    await BROKER.send(h.app.http, h.server.url, BROKER.paid(hold, payment_id=(pid := new_payment_id())))
    tickets = (await h.app.ok("listBuyerTickets", {"paymentId": pid}))["tickets"]
    lists = (await h.app.ok("listCheckInLists", {"eventId": event["id"]}))["checkInLists"]
    return event, tickets, lists[0]["id"]


async def enrolled_desk(h: Harness, list_id: str) -> Desk:
    desk = Desk(h.app.http, h.server.url)
    code = await enrollment(h, [list_id])
    made = await desk.ok("enrollDevice", {"code": code.lower().replace("-", " "), "deviceName": "North door"})
    assert made["deviceId"].startswith("dev_") and made["checkInLists"][0]["id"] == list_id
    desk.credential = made["credential"]
    again = await Desk(h.app.http, h.server.url).call("enrollDevice", {"code": code})
    assert again.status_code == 401 and again.json()["error"] == "EnrollmentCodeInvalid"
    return desk


def record(
    desk_id: str,
    n: int,
    list_id: str,
    ticket: dict[str, Any],
    *,
    decision: Verdict = Verdict.ADMIT,
    direction: Direction = Direction.ENTRY,
) -> Record:
    return Record(
        desk_id,
        f"rec_{n:04d}",
        list_id,
        ticket["id"],
        ticket["generation"],
        direction,
        decision,
        Reason.OK if decision is Verdict.ADMIT else Reason.ALREADY_CHECKED_IN,
        int(time.time() * 1000) - 60_000 + n,
        5,
        "North",
    )

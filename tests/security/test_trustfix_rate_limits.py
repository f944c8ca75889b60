"""Attack: floods of the methods whose general limits do not fit them, with the default limits. Public
discovery answers anyone without a token: 30 calls a minute per client address (the public
service's limit). A desk's manual search answers guests' names: whoever holds a stolen desk
credential searches, and checks in what it found, at a person's pace (30 calls of each per five
minutes per desk). Each limit is the method's own: other addresses, other desks and other methods
go on. And the operator sets any method's own limits. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import Harness, running_harness
from support.catalog import ORGANIZER
from support.doors import enrolled_desk, sold
from support.limits import assert_cut_after

NS = "tickets.atmosphere."
PUBLIC = f"/xrpc/{NS}listPublicConfig"
# Behind one trusted proxy, so that the test can speak from several addresses.
LIMITED = {"rate_limits_enabled": True, "trusted_proxy_count": 1}


async def discover(h: Harness, address: str) -> httpx.Response:
    """``listPublicConfig`` without a token, from ``address``."""
    params = {"organizer": ORGANIZER, "environment": "test"}
    return await h.app.http.get(
        f"{h.server.url}{PUBLIC}", params=params, headers={"x-forwarded-for": address}
    )


async def test_trustfix_public_discovery_is_cut_at_30_a_minute_per_address(
    database_url: str, tmp_path: Path
) -> None:
    async with running_harness(database_url, tmp_path, **LIMITED) as h:
        burst = [await discover(h, "198.51.100.7") for _ in range(33)]
        assert_cut_after(burst, 30, 60)
        assert burst[0].json() == {"records": []}
        assert (await discover(h, "198.51.100.8")).status_code == 200  # another address
        forwarded = {"x-forwarded-for": "198.51.100.7"}  # another method from the same address
        other = await h.app.call("getTicketAvailability", {"eventId": "event_x"}, headers=forwarded)
        assert (other.status_code, other.json()["error"]) == (404, "EventNotFound")


async def test_trustfix_a_desk_searches_and_checks_in_found_guests_at_a_persons_pace(
    database_url: str, tmp_path: Path
) -> None:
    async with running_harness(database_url, tmp_path, **LIMITED) as h:
        _, tickets, list_id = await sold(h, 1)
        desk, other_desk = await enrolled_desk(h, list_id), await enrolled_desk(h, list_id)
        search = {"checkInListId": list_id, "q": "Guest"}
        searches = [await desk.call("searchTickets", search, query=True) for _ in range(33)]
        assert_cut_after(searches, 30, 300)
        assert len(searches[0].json()["tickets"]) == 1
        found = {"ticketId": tickets[0]["id"], "checkInListId": list_id}
        check_ins = [
            await desk.call("checkInSearchedTicket", {**found, "idempotencyKey": f"rec_manual_{n}"})
            for n in range(33)
        ]
        assert_cut_after(check_ins, 30, 300)
        assert [c.json()["status"] for c in check_ins[:2]] == ["checked_in", "already_checked_in"]
        # The limit is the desk's own, and its other methods go on.
        assert (await other_desk.call("searchTickets", search, query=True)).status_code == 200
        assert (await desk.call("pullCheckIns", {"checkInListId": list_id}, query=True)).status_code == 200


async def test_trustfix_the_operator_sets_a_methods_own_limits(database_url: str, tmp_path: Path) -> None:
    methods = {
        NS + "getTicketAvailability": {"per_caller": {"calls": 3, "window_seconds": 60}},
        NS + "listPublicConfig": {"per_ip": {"calls": 5, "window_seconds": 120}},
    }
    async with running_harness(database_url, tmp_path, **LIMITED, rate_limit_methods=methods) as h:
        availability = [await h.app.call("getTicketAvailability", {"eventId": "event_x"}) for _ in range(5)]
        assert_cut_after(availability, 3, 60)
        assert_cut_after([await discover(h, "198.51.100.9") for _ in range(7)], 5, 120)
        # Methods the operator left alone keep the general limits.
        lists = [await h.app.call("listCheckInLists", {"eventId": "event_x"}) for _ in range(5)]
        assert {response.status_code for response in lists} == {404}

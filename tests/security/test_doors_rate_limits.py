"""One rate limiter in the database, shared by every server process: bursts of wrong enrollment
codes, of calls from one app, and of calls from one address are cut with 429 ``RateLimitExceeded``
and ``Retry-After``, with the default limits. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import APP_DID, Harness, running_harness
from support.catalog import active_event
from support.doors import enrollment, sold
from support.limits import assert_cut
from support.serve_process import ServeProcess, run_tickets, server_env
from support.server import AppClient, Identity, register

from server.xrpc.ratelimits import client_ip

ENROLL = "/xrpc/tickets.atmosphere.enrollDevice"


async def enroll(h: Harness, code: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return await h.app.http.post(f"{h.server.url}{ENROLL}", json={"code": code}, headers=headers)


async def test_doors_wrong_enrollment_codes_are_cut_then_even_the_right_one(
    database_url: str, tmp_path: Path
) -> None:
    async with running_harness(database_url, tmp_path, rate_limits_enabled=True) as h:
        _, _, list_id = await sold(h, 1)
        code = await enrollment(h, [list_id])
        for n in range(10):  # a client header is no way out: no proxy is trusted by default
            wrong = await enroll(h, f"WRONG-CODE-{n:04d}", forwarded_for=f"10.0.0.{n}")
            assert wrong.json()["error"] == "EnrollmentCodeInvalid"
        assert_cut(await enroll(h, code), 600)


async def test_doors_wrong_enrollment_codes_are_cut_in_total(database_url: str, tmp_path: Path) -> None:
    limits = {"enroll_failures_per_ip": 2, "enroll_failures_total": 6, "trusted_proxy_count": 1}
    async with running_harness(database_url, tmp_path, rate_limits_enabled=True, **limits) as h:
        _, _, list_id = await sold(h, 1)
        code = await enrollment(h, [list_id])
        for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
            for n in range(2):
                wrong = await enroll(h, f"WRONG-CODE-{n:04d}", forwarded_for=f"203.0.113.9, {address}")
                assert wrong.json()["error"] == "EnrollmentCodeInvalid"
        assert_cut(await enroll(h, "WRONG-CODE-0009", forwarded_for="198.51.100.1"), 600)
        assert_cut(await enroll(h, code, forwarded_for="198.51.100.4"), 600)


async def test_doors_a_burst_of_150_calls_from_one_app_is_cut(database_url: str, tmp_path: Path) -> None:
    # The default limit (100 calls of one method per app); the window is stretched from 10 s to a
    # minute so that the burst is one however slowly a loaded test machine answers.
    window = {"rate_limit_window_seconds": 60}
    async with running_harness(database_url, tmp_path, rate_limits_enabled=True, **window) as h:
        event = await active_event(h.app)
        answers = [await h.app.call("getTicketAvailability", {"eventId": event["id"]}) for _ in range(150)]
        statuses = [answer.status_code for answer in answers]
        assert statuses[:100] == [200] * 100
        assert 429 in statuses[100:]
        assert_cut(answers[statuses.index(429)], 60)
        other = await h.client("did:web:other-app.example")
        try:  # the limit is the app's, not everyone's
            assert (await other.call("getTicketAvailability", {"eventId": event["id"]})).status_code != 429
        finally:
            await other.aclose()


async def test_doors_calls_without_credentials_are_cut_per_address(database_url: str, tmp_path: Path) -> None:
    limits = {"rate_limit_per_ip": 20, "rate_limit_window_seconds": 60}
    async with running_harness(database_url, tmp_path, rate_limits_enabled=True, **limits) as h:
        statuses = [
            (await h.app.call("getTicketAvailability", {"eventId": "event_x"}, token="not-a-jwt")).status_code
            for _ in range(25)
        ]
        assert statuses[:20] == [401] * 20 and statuses[20:] == [429] * 5


async def test_doors_two_server_processes_share_the_limit(database_url: str, tmp_path: Path) -> None:
    did_docs = tmp_path / "did-docs"
    did_docs.mkdir()
    env = server_env(
        database_url,
        tmp_path,
        did_docs=did_docs,
        rate_limits_enabled=True,
        rate_limit_window_seconds=60,
        rate_limit_per_caller=20,
    )
    await run_tickets(env, "db", "upgrade")
    await register(database_url, APP_DID)
    identity = Identity.create(APP_DID, did_docs)
    servers = [ServeProcess(env), ServeProcess(env)]
    clients = [AppClient(server.url, identity) for server in servers]
    try:
        for server in servers:
            await server.start()
        first, second = [
            [(await client.call("listCheckInLists", {"eventId": "event_x"})).status_code for _ in range(12)]
            for client in clients
        ]
        assert 429 not in first
        assert 429 in second  # 24 calls of one method by one app: over 20, whichever process answers
    finally:
        for client in clients:
            await client.aclose()
        for server in servers:
            await server.stop()


def test_doors_the_client_address_is_the_peer_unless_proxies_are_trusted() -> None:
    assert client_ip("192.0.2.7", "10.0.0.1", 0) == "192.0.2.7"
    assert client_ip("192.0.2.7", "10.0.0.1, 198.51.100.1, 192.0.2.1", 2) == "198.51.100.1"
    assert client_ip("192.0.2.7", "198.51.100.1", 2) == "192.0.2.7"  # not through both proxies

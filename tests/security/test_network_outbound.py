"""With the default settings the server never connects to a loopback or private address, whatever
DID, PLC directory, PDS endpoint or webhook URL names it, and every refusal reads the same: it tells
neither the address nor whether a port was open."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import running_harness
from support.catalog import ORGANIZER, event_input
from support.server import AppClient, Identity, make_settings, register

from server import outbound
from server.atproto.client import PdsClient, PdsError
from server.auth.signing import SigningKey
from server.domain.outbox.delivery import RECEIVER_UNREACHABLE, ClaimedDelivery, deliver
from server.outbound import OutboundPolicy, outbound_client
from server.settings import Settings

PRIVATE_NAME = "intranet.tickets.test"  # resolves to 127.0.0.1 below, like a rebinding name would


class Listener:
    """A loopback port that accepts connections into its backlog without ever answering: whoever
    connects, even without TLS or HTTP, is seen by :meth:`connections`."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                connection, _ = self.sock.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.sock.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:  # free a moment ago, nothing listening
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def private_name(monkeypatch: pytest.MonkeyPatch) -> None:
    real = outbound.resolve

    async def resolve(host: str, port: int) -> list[outbound.IpAddress]:
        if host == PRIVATE_NAME:
            return [ipaddress.ip_address("127.0.0.1")]
        return await real(host, port)

    monkeypatch.setattr(outbound, "resolve", resolve)


def hosts(port: int) -> list[str]:
    """Ways to write an address of this machine (or of a private network) with ``port``."""
    return [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"{PRIVATE_NAME}:{port}",
        f"0.0.0.0:{port}",
        f"[::1]:{port}",
        f"[::ffff:127.0.0.1]:{port}",
        f"[::ffff:7f00:1]:{port}",
        f"10.0.0.1:{port}",
        f"169.254.169.254:{port}",
    ]


async def test_network_did_web_and_plc_never_reach_loopback(
    database_url: str, tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    plc_did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    dids = [
        f"did:web:127.0.0.1%3A{listener.port}",
        f"did:web:localhost%3A{listener.port}",
        f"did:web:{PRIVATE_NAME}%3A{listener.port}",
        f"did:web:127.0.0.1%3A{closed_port}",
        f"did:web:localhost%3A{closed_port}",
        plc_did,
    ]
    async with running_harness(
        database_url,
        tmp_path,
        outbound_allow_private=False,
        did_web_scheme="http",
        plc_url=f"http://127.0.0.1:{listener.port}",
    ) as h:
        answers = []
        for did in dids:
            await register(h.settings.resolved_database_url, did)
            # The DID's document is not in the local folder: the server has to fetch it.
            caller = AppClient(h.server.url, Identity(did, SigningKey.generate()))
            for _ in range(2):
                response = await caller.call(
                    "createTicketEvent", {"organizerDid": ORGANIZER, "event": event_input()}
                )
                assert response.status_code == 401, response.text
                answers.append((response.json()["error"], response.json()["message"], did))
            await caller.aclose()
    assert listener.connections() == 0
    assert len({error for error, _, _ in answers}) == 1
    messages = [message.replace(did, "<did>") for _, message, did in answers]
    assert len(set(messages)) == 1, messages
    assert messages[0].endswith("the DID document host of <did> could not be reached"), messages[0]
    assert "127.0.0.1" not in messages[0] and str(listener.port) not in messages[0]


async def test_network_pds_endpoints_in_did_documents_never_reach_loopback(
    database_url: str, tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    """An event record whose organizer's DID document names a PDS on this machine: the server does
    not read it there, and says the same whatever the endpoint. The organizer is the event's own
    (the authority of its URI) and consents to the app, so nothing but the PDS stands in the way."""
    async with running_harness(database_url, tmp_path, outbound_allow_private=False) as h:
        assert h.settings.did_docs is not None
        answers = []
        for n, host in enumerate(hosts(listener.port) + hosts(closed_port)):
            did = f"did:plc:pdsloop{chr(ord('a') + n)}".ljust(32, "a")
            pds = {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": f"http://{host}",
            }
            key = SigningKey.generate()
            document = {**key.did_document(did), "service": [pds]}
            (h.settings.did_docs / f"pds-{n}.json").write_text(json.dumps(document))
            h.app.acts_for[did] = Identity(did, key)
            uri = f"at://{did}/community.lexicon.calendar.event/3kloop0000001"
            response = await h.app.call("createTicketEvent", {"organizerDid": did, "event": {"uri": uri}})
            assert response.status_code == 502, response.text
            answers.append(response.json()["message"].replace(uri, "<uri>").replace(did, "<did>"))
    assert listener.connections() == 0
    assert len(set(answers)) == 1, answers
    assert "could not be reached" in answers[0] and str(listener.port) not in answers[0]


async def _each_loopback_answer(
    tmp_path: Path,
    listener: Listener,
    closed_port: int,
    attempt: Callable[[httpx.AsyncClient, Settings, str], Awaitable[str | None]],
) -> set[str | None]:
    """``attempt`` through the guarded client at every loopback host of the listener's port and of
    a closed port (private networks not allowed); answers what the attempts said, once none of
    them reached the listener."""
    settings = make_settings("sqlite+aiosqlite://", tmp_path, outbound_allow_private=False)
    answers = []
    async with outbound_client(OutboundPolicy.from_settings(settings)) as http:
        for port in (listener.port, closed_port):
            for host in hosts(port):
                answers.append(await attempt(http, settings, host))
    assert listener.connections() == 0
    return set(answers)


async def test_network_pds_endpoints_never_reach_loopback(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    async def attempt(http: httpx.AsyncClient, _: Settings, host: str) -> str:
        client = PdsClient(http, timeout=2, max_response_bytes=1024 * 1024, allow_http=True)
        with pytest.raises(PdsError) as refused:
            await client.query(f"http://{host}", "com.atproto.repo.getRecord", {"repo": "x"})
        assert refused.value.transient
        return refused.value.message

    messages = await _each_loopback_answer(tmp_path, listener, closed_port, attempt)
    assert messages == {"the PDS for com.atproto.repo.getRecord could not be reached"}


async def test_network_webhooks_never_reach_loopback(
    tmp_path: Path, listener: Listener, closed_port: int
) -> None:
    async def attempt(http: httpx.AsyncClient, settings: Settings, host: str) -> str | None:
        claimed = ClaimedDelivery(
            id=1,
            delivery_id="whd_1",
            event_type="ticket.issued",
            environment="test",
            body=b"{}",
            attempts=0,
            webhook_url=f"http://{host}/hooks",
            webhook_secret="whsec_test",
        )
        result = await deliver(claimed, http, settings, 0)
        assert not result.delivered and result.status_code is None
        return result.error

    errors = await _each_loopback_answer(tmp_path, listener, closed_port, attempt)
    assert errors == {RECEIVER_UNREACHABLE}


async def test_network_private_addresses_are_reachable_when_allowed(
    tmp_path: Path, listener: Listener
) -> None:
    """The development switch: the same client connects once private networks are allowed."""
    settings = make_settings("sqlite+aiosqlite://", tmp_path, webhook_timeout_seconds=0.2)
    assert settings.outbound_allow_private
    async with outbound_client(OutboundPolicy.from_settings(settings)) as http:
        claimed = ClaimedDelivery(
            1, "whd_1", "ticket.issued", "test", b"{}", 0, f"http://{PRIVATE_NAME}:{listener.port}/", "s"
        )
        result = await deliver(claimed, http, settings, 0)
    assert result.error == RECEIVER_UNREACHABLE  # the listener never answers: a timeout
    assert listener.connections() == 1


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.53", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.251", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.10", False),
        ("::", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::1", False),
        ("64:ff9b::a00:1", False),
        ("2001:db8::1", False),
    ],
)
def test_network_public_addresses(address: str, public: bool) -> None:
    assert outbound.is_public(ipaddress.ip_address(address)) is public

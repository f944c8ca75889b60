"""The one HTTP client for every request the service makes to a host a caller can name: DID
documents (``did:web`` and the PLC directory), PDS calls and lifecycle webhooks.

- The host name is resolved here, every address it resolves to is checked, and the connection goes
  to an address that passed the check. TLS still verifies the certificate against the name and the
  ``Host`` header stays the name, but a name cannot resolve to a public address for the check and
  to a private one for the connection (no DNS rebinding window).
- By default only globally routable unicast addresses are called: loopback, private, shared,
  link-local, multicast, unspecified, reserved and documentation ranges are refused, also when
  carried inside an IPv6 address (IPv4-mapped, 6to4, NAT64). ``allow_private`` lifts this for
  development and tests, whose stand-ins listen on loopback.
- A refused address fails like a host where nothing listens (:class:`httpx.ConnectError`), and
  callers report every transport failure with one message (:data:`UNREACHABLE`): the answer does
  not tell a refused address, a closed port, an open port that never answers HTTP or a timeout
  apart, and never names the address.
- Connecting, the whole exchange (including reading the body) and the response size are bounded
  here, whatever the caller asks; environment proxies are ignored (a proxy would connect unchecked).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpcore
import httpx

from server.settings import Settings

# What callers say about any transport failure (refused address, DNS failure, connection refused or
# reset, timeout, oversized answer), after naming what they tried to reach.
UNREACHABLE = "could not be reached"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class OutboundPolicy:
    allow_private: bool = False
    connect_timeout_seconds: float = 3.0
    total_timeout_seconds: float = 30.0
    max_response_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(
            allow_private=settings.outbound_allow_private,
            connect_timeout_seconds=settings.outbound_connect_timeout_seconds,
            total_timeout_seconds=settings.outbound_total_timeout_seconds,
            max_response_bytes=settings.outbound_max_response_bytes,
        )


class AddressRefused(httpcore.ConnectError):
    """The host resolves to no address the policy allows (surfaces as :class:`httpx.ConnectError`)."""


class ResponseTooLarge(httpx.ReadError):
    """The answer exceeds the policy's size bound."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IpAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address (and so is any IPv4 address it
    carries)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
    )


async def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to (an address literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IpAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, and connects to the checked address itself."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        limit = self._policy.connect_timeout_seconds
        timeout = limit if timeout is None else min(timeout, limit)
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(host, port)
        except (OSError, UnicodeError, ValueError, TimeoutError):
            raise httpcore.ConnectError(UNREACHABLE) from None
        allowed = [a for a in addresses if self._policy.allow_private or is_public(a)]
        if not allowed:
            raise AddressRefused(UNREACHABLE)
        failure: Exception = httpcore.ConnectError(UNREACHABLE)
        for address in allowed:
            try:
                return await self._backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(UNREACHABLE)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _BoundedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, deadline: float, max_bytes: int) -> None:
        self._stream = stream
        self._deadline = deadline
        self._max_bytes = max_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._stream)
        received = 0
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise httpx.ReadTimeout(UNREACHABLE) from None
            received += len(chunk)
            if received > self._max_bytes:
                raise ResponseTooLarge(UNREACHABLE)
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


@functools.cache
def verifying_tls() -> ssl.SSLContext:
    """The TLS context every outbound client verifies servers with: the CA bundle is read once a
    process, not once a client (each read costs tens of milliseconds of CPU)."""
    return httpx.create_ssl_context(trust_env=False)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool whose network backend checks addresses; every
    exchange ends by the policy's total deadline and reads at most its size bound."""

    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(verify=verifying_tls(), trust_env=False)
        self._policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verifying_tls(),
            network_backend=_CheckedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = asyncio.get_running_loop().time() + self._policy.total_timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                response = await super().handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(UNREACHABLE, request=request) from None
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _BoundedStream(response.stream, deadline, self._policy.max_response_bytes)
        return response


def outbound_client(policy: OutboundPolicy) -> httpx.AsyncClient:
    """A client for caller-named hosts under ``policy``; never follows redirects."""
    return httpx.AsyncClient(
        transport=CheckedTransport(policy),
        timeout=httpx.Timeout(policy.total_timeout_seconds, connect=policy.connect_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
    )

"""The device methods over HTTP (httpx), against the server or a hub desk (same paths, same shapes).

Every answer carrying ``serverTimeMs`` feeds the clock offset estimate (NTP-style: the server's
time against the midpoint of the request's send and receive times, keeping the sample with the
shortest round trip of the last few, whose midpoint is the least uncertain). A revoked device is
told so by a typed exception; a network failure or timeout by another, so callers can fall back to
deciding offline.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import httpx

NAMESPACE = "tickets.atmosphere."
CLOCK_SAMPLES = 8


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class DeviceRevokedError(Exception):
    """The server revoked this desk: its local data must be wiped."""


class ServerUnreachable(Exception):
    """No answer: the network is down, the server is stopped, or it did not answer in time."""


class ServerRefused(Exception):
    """The server answered with an error ``{error, message}``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message


class ClockOffset:
    """Server time minus this desk's time, in milliseconds (0 until measured)."""

    def __init__(self, initial_ms: int = 0) -> None:
        self._initial = initial_ms
        self._samples: deque[tuple[int, int]] = deque(maxlen=CLOCK_SAMPLES)

    def add(self, sent_ms: int, received_ms: int, server_ms: int) -> None:
        self._samples.append((received_ms - sent_ms, server_ms - (sent_ms + received_ms) // 2))

    @property
    def value_ms(self) -> int:
        return min(self._samples)[1] if self._samples else self._initial

    def now_ms(self) -> int:
        """The server's clock, as well as this desk can tell."""
        return wall_ms() + self.value_ms


class XrpcClient:
    """One peer (the server or a hub desk), authenticated by ``Bearer <credential>``."""

    def __init__(
        self,
        base_url: str,
        credential: str,
        clock: ClockOffset,
        timeout_s: float,
        connect_s: float | None = None,
    ) -> None:
        """``timeout_s`` bounds each read and write of a call; ``connect_s`` (default: the same)
        bounds connecting, short, so a stopped peer is known at once."""
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.clock = clock
        self.timeout_s = timeout_s
        self.connect_s = connect_s or timeout_s
        self._http = httpx.AsyncClient()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """A procedure (``body``) or a query (``params``); the answer's JSON object."""
        url = f"{self.base_url}/xrpc/{NAMESPACE}{method}"
        headers = {"authorization": f"Bearer {self.credential}"} if self.credential else {}
        limit = timeout_s or self.timeout_s
        timeout = httpx.Timeout(limit, connect=min(limit, self.connect_s))
        sent = wall_ms()
        try:
            if body is None:
                response = await self._http.get(url, params=params, headers=headers, timeout=timeout)
            else:
                response = await self._http.post(url, json=body, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{type(exc).__name__}: {exc}") from None
        received = wall_ms()
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ServerRefused(response.status_code, "NotJson", "the answer is not a JSON object")
        if response.status_code != 200:
            error, message = str(data.get("error", "")), str(data.get("message", ""))
            if error == "DeviceRevoked":
                raise DeviceRevokedError(message)
            raise ServerRefused(response.status_code, error, message)
        server_ms = data.get("serverTimeMs")
        if isinstance(server_ms, int) and not isinstance(server_ms, bool):
            self.clock.add(sent, received, server_ms)
        return data

    async def enroll(self, code: str, device_name: str | None) -> dict[str, Any]:
        body = {"code": code, **({"deviceName": device_name} if device_name else {})}
        return await self.call("enrollDevice", body=body)

    async def check_in(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return await self.call("checkInTicket", body=body, timeout_s=timeout_s)

    async def check_in_searched(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return await self.call("checkInSearchedTicket", body=body, timeout_s=timeout_s)

    async def bundle(self, list_id: str, since: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {"checkInListId": list_id}
        if since is not None:
            params["since"] = since
        return await self.call("getScannerBundle", params=params)

    async def upload(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.call("uploadCheckIns", body={"records": records})

    async def search(self, list_id: str, query: str) -> dict[str, Any]:
        return await self.call("searchTickets", params={"checkInListId": list_id, "q": query})

    async def pull(self, list_id: str, cursor: int) -> dict[str, Any]:
        return await self.call("pullCheckIns", params={"checkInListId": list_id, "cursor": str(cursor)})

"""The device methods over HTTP (httpx), against the server or a hub desk (same paths, same shapes):
the desk's :class:`~scanner_app.core.ports.PeerClient`.

Every answer carrying ``serverTimeMs`` feeds the desk's clock offset estimate
(:class:`~scanner_app.core.ports.ClockOffset`, timed by the desk's clock). A revoked device is told
so by a typed exception; a network failure or timeout by another, so callers can fall back to
deciding offline.
"""

from __future__ import annotations

from typing import Any

import httpx

from scanner_app.core.ports import (
    DeviceRevokedError,
    PeerAddress,
    ServerRefused,
    ServerUnreachable,
)

NAMESPACE = "tickets.atmosphere."


class HttpPeerClient:
    """One peer (the server or a hub desk) over HTTP, authenticated by ``Bearer <credential>``."""

    def __init__(self, peer: PeerAddress) -> None:
        self.base_url = peer.base_url.rstrip("/")
        self.credential = peer.credential
        self.offset = peer.offset
        self.timeout_s = peer.timeout_s
        self.connect_s = peer.connect_s or peer.timeout_s
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
        sent = self.offset.clock.wall_ms()
        try:
            if body is None:
                response = await self._http.get(url, params=params, headers=headers, timeout=timeout)
            else:
                response = await self._http.post(url, json=body, headers=headers, timeout=timeout)
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"{type(exc).__name__}: {exc}") from None
        received = self.offset.clock.wall_ms()
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
            self.offset.add(sent, received, server_ms)
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


class HttpPeers:
    """Connects the desk to its peers over HTTP (:class:`~scanner_app.core.ports.Peers`)."""

    def connect(self, peer: PeerAddress) -> HttpPeerClient:
        return HttpPeerClient(peer)

"""XRPC calls to another atproto service (a PDS): bounded in time and size, never following
redirects, with the service's ``{error, message}`` answers turned into :class:`XrpcError`. The HTTP
client passed in is the service's :func:`~server.outbound.outbound_client` (public addresses only),
and every transport failure or timeout reads the same, without the endpoint or its address."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx

from server.outbound import UNREACHABLE

PDS_SERVICE_ID = "#atproto_pds"
PDS_SERVICE_TYPE = "AtprotoPersonalDataServer"


class PdsError(Exception):
    """A call to a PDS failed. ``transient``: the same call may well work later (the PDS could not
    be reached, timed out, or failed on its side)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


class XrpcError(PdsError):
    """The PDS answered an XRPC error: ``error`` is its name (``RecordNotFound``, ``InvalidSwap``…)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(
            f"{error} (HTTP {status}): {message}" if message else f"{error} (HTTP {status})",
            transient=status >= 500 or status == 429,
        )
        self.status = status
        self.error = error


def service_endpoint(
    document: Mapping[str, Any], service_id: str, service_type: str | None = None
) -> str | None:
    """The endpoint of the service ``service_id`` (``#fragment``, or the DID and fragment) of a DID
    document, of ``service_type`` when one is given; None when it names none."""
    services = document.get("service")
    if not isinstance(services, list):
        return None
    did = document.get("id")
    for service in services:
        if (
            isinstance(service, dict)
            and service.get("id") in (service_id, f"{did}{service_id}")
            and (service_type is None or service.get("type") == service_type)
            and isinstance(service.get("serviceEndpoint"), str)
        ):
            endpoint: str = service["serviceEndpoint"]
            return endpoint.rstrip("/")
    return None


def pds_endpoint(document: Mapping[str, Any]) -> str | None:
    """The ``#atproto_pds`` service endpoint of a DID document, or None when it names none."""
    return service_endpoint(document, PDS_SERVICE_ID, PDS_SERVICE_TYPE)


class PdsClient:
    """One client for every PDS the service talks to. ``allow_http`` admits ``http://`` endpoints
    (development and tests); otherwise only ``https://`` is called."""

    def __init__(
        self, http: httpx.AsyncClient, *, timeout: float, max_response_bytes: int, allow_http: bool = False
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._schemes = ("https://", "http://") if allow_http else ("https://",)

    async def query(
        self, service: str, nsid: str, params: Mapping[str, str], *, token: str | None = None
    ) -> dict[str, Any]:
        return await self._call("GET", service, nsid, params=params, token=token)

    async def procedure(
        self, service: str, nsid: str, body: Mapping[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        return await self._call("POST", service, nsid, body=body, token=token)

    async def _call(
        self,
        method: str,
        service: str,
        nsid: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        token: str | None,
    ) -> dict[str, Any]:
        if not service.startswith(self._schemes):
            raise PdsError(f"the PDS endpoint {service!r} is not an allowed URL", transient=False)
        headers = {"accept": "application/json"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._http.stream(
                    method,
                    f"{service}/xrpc/{nsid}",
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=self._timeout,
                    follow_redirects=False,
                ) as response,
            ):
                raw = await self._read(response)
        except (TimeoutError, httpx.HTTPError):
            raise PdsError(f"the PDS for {nsid} {UNREACHABLE}", transient=True) from None
        answer = _json_object(raw)
        if response.status_code != 200:
            error = answer.get("error") if answer is not None else None
            message = answer.get("message") if answer is not None else None
            raise XrpcError(
                response.status_code,
                error if isinstance(error, str) else f"HTTP{response.status_code}",
                message[:500] if isinstance(message, str) else "",
            )
        if answer is None:
            raise PdsError(f"{nsid} at {service} answered something other than a JSON object", transient=True)
        return answer

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise PdsError(f"the answer is larger than {self._max_bytes} bytes", transient=False)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise PdsError(f"the answer is larger than {self._max_bytes} bytes", transient=False)
            chunks.append(chunk)
        return b"".join(chunks)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None

"""Who may call which method: apps (service-auth JWT), enrolled desks (device credential), or the
holder of a one-time enrollment code."""

from __future__ import annotations

from typing import Any

from server.domain.caller import Caller
from server.domain.devices import service as devices
from server.xrpc.auth import authenticate
from server.xrpc.framework import Services


async def device_auth(
    services: Services, _nsid: str, authorization: str | None, _params: dict[str, Any]
) -> Caller:
    device = await devices.device_of(services.db, authorization)
    return Caller(
        app_id="",
        app_did=device.id,
        environment=device.environment,
        device_id=device.id,
        device_lists=tuple(device.list_ids),
    )


async def code_auth(
    _services: Services, _nsid: str, _authorization: str | None, params: dict[str, Any]
) -> Caller:
    """Enrollment is authorized by the one-time code in the input, checked by the method itself."""
    return Caller(app_id="", app_did="", environment=params.get("environment") or "live")


async def app_or_device_auth(
    services: Services, nsid: str, authorization: str | None, params: dict[str, Any]
) -> Caller:
    """Door methods: an app's JWT, or an enrolled desk's credential (``Bearer dev_…``)."""
    token = (authorization or "").partition(" ")[2].strip()
    if token.startswith("dev_"):
        return await device_auth(services, nsid, authorization, params)
    return await authenticate(services, nsid, authorization, params)

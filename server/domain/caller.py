"""Who is calling: an authenticated, registered app in one environment."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.offers.pricing import Fees


@dataclass(frozen=True, slots=True)
class AppSettings:
    """What a call of an app reads of its registration: its fees, and where its lifecycle events
    go (``server.domain.outbox.service.DESTINATION``; None: nowhere)."""

    fees: Fees
    destination: str | None


@dataclass(frozen=True, slots=True)
class Caller:
    app_id: str
    app_did: str
    environment: str
    # The organizer DID proven by a verified (and now spent) organizer assertion on this call, if
    # one was sent, and that assertion's jti (recorded with the consent it grants).
    organizer_did: str | None = None
    organizer_jti: str | None = None
    # Set when the caller is an enrolled desk (its device id and the lists it may scan), not an app.
    device_id: str | None = None
    device_lists: tuple[str, ...] = ()
    # The app's settings, when the caller's authentication already knows them current (an XRPC
    # call's token spend answers the app row's version); otherwise a hold reads them itself.
    settings: AppSettings | None = None

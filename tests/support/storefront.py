"""A ticketed event as the hosted event page shows it: tiers on sale, sold out, not yet on sale,
hidden and free, and a presale code that opens the hidden tier and takes 20% off it and General."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from support.catalog import ORGANIZER, event_input, tier_id
from support.server import AppClient, LiveServer

OFFER_CODE = "FRIENDS-20"
LATER = "2099-01-01T10:00:00.000Z"


@dataclass(frozen=True, slots=True)
class Storefront:
    event: dict[str, Any]
    path: str
    tiers: dict[str, str]  # title → tier id


def served_at_its_own_url(server: LiveServer) -> None:
    """The page sends buyers back to the public URL: make it the test server's own address."""
    server.settings.public_url = server.url


def event_path(uri: str) -> str:
    return f"/p/{ORGANIZER}/e/{uri.rsplit('/', 1)[-1]}"


async def _tier(app: AppClient, event: dict[str, Any], title: str, amount: int, **fields: Any) -> str:
    quantity = fields.pop("quantityTotal", 50)
    return await tier_id(
        app,
        event,
        title,
        unit_amount=amount,
        quantity=quantity,
        maxPerOrder=fields.pop("maxPerOrder", 4),
        **fields,
    )


async def storefront(app: AppClient, *, timezone: str = "Europe/Paris") -> Storefront:
    body = {**event_input("Harbour Lights"), "timezone": timezone}
    event = (
        await app.ok("createTicketEvent", {"organizerDid": ORGANIZER, "event": body, "status": "active"})
    )["event"]
    tiers = {
        "General": await _tier(app, event, "General", 2_500),
        "Sold out": await _tier(app, event, "Sold out", 1_000, quantityTotal=1),
        "Early bird": await _tier(app, event, "Early bird", 1_500, saleStartsAt=LATER),
        "Crew": await _tier(app, event, "Crew", 1_200, visibility="hidden"),
        "Community": await _tier(app, event, "Community", 0),
    }
    await app.ok("createTicketHold", {"items": [{"tierId": tiers["Sold out"], "quantity": 1}]})
    await app.ok(
        "createOffer",
        {
            "eventId": event["id"],
            "name": "Friends",
            "kind": "presale",
            "code": OFFER_CODE,
            "discountPercent": 20,
            "tierIds": [tiers["General"], tiers["Crew"]],
        },
    )
    return Storefront(event, event_path(event["uri"]), tiers)


def outcome(page: str) -> str | None:
    found = re.search(r'data-outcome="([a-z]+)"', page)
    return found.group(1) if found else None


def pass_links(page: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in re.findall(r'href="([^"]*/passes/[^"]+)"', page)]

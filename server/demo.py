"""Demo data for a laptop: a registered demo app with its own key and DID document, and a ticketed
demo event with two tiers sharing one capacity group and a VIP tier of its own."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from server.auth.keys import SigningKey, mint_service_jwt
from server.db import migrate
from server.db.engine import Database
from server.db.models import Tier
from server.domain import apps
from server.domain.caller import Caller
from server.domain.catalog import service as catalog
from server.domain.catalog.service import EventInput, TierInput
from server.domain.common import SystemClock, parse_datetime
from server.settings import Settings
from server.xrpc.lexicon import LEXICON_DIR, Lexicons

DEMO_APP_DID = "did:web:demo-app.localhost"
DEMO_ORGANIZER_DID = "did:plc:demoorganizer0000000000"
DEMO_EVENT_URI = f"at://{DEMO_ORGANIZER_DID}/community.lexicon.calendar.event/3demoevent000"
DEMO_ENVIRONMENT = "test"


def demo_key(data_dir: Path) -> SigningKey:
    """The demo app's signing key, made once and kept in the data folder."""
    path = data_dir / "demo" / "app-key.pem"
    if path.exists():
        return SigningKey.from_pem(path.read_bytes())
    key = SigningKey.generate("ES256K")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.to_pem())
    path.chmod(0o600)
    return key


def call_as_demo_app(settings: Settings, method: str, body: dict[str, Any], base_url: str) -> tuple[int, Any]:
    """One XRPC call signed by the demo app (``tickets call``): how to try the server by hand."""
    nsid = method if "." in method else f"tickets.atmosphere.{method}"
    token = mint_service_jwt(
        demo_key(settings.data_dir), iss=DEMO_APP_DID, aud=sorted(settings.audiences)[0], lxm=nsid
    )
    payload = {"environment": DEMO_ENVIRONMENT, **body}
    headers = {"authorization": f"Bearer {token}"}
    lexicons = Lexicons.load(LEXICON_DIR)
    schema = lexicons.method(nsid)
    url = f"{base_url.rstrip('/')}/xrpc/{nsid}"
    if schema is not None and schema.kind == "query":
        response = httpx.get(url, params=payload, headers=headers, timeout=10)
    else:
        response = httpx.post(url, json=payload, headers=headers, timeout=10)
    return response.status_code, response.json()


def seed_demo(settings: Settings, *, port: int) -> Settings:
    """Write the demo identity and data; answers the settings the demo server runs with."""
    data_dir = settings.data_dir
    did_docs = settings.did_docs or data_dir / "did-docs"
    did_docs.mkdir(parents=True, exist_ok=True)
    key = demo_key(data_dir)
    (did_docs / "demo-app.json").write_text(json.dumps(key.did_document(DEMO_APP_DID), indent=2))
    os.environ["TICKETS_DID_DOCS"] = str(did_docs)
    os.environ.setdefault("TICKETS_PUBLIC_URL", f"http://127.0.0.1:{port}")
    settings = Settings()
    migrate.upgrade(settings.resolved_database_url)
    summary = asyncio.run(_seed(settings))
    print(summary)
    return settings


async def _seed(settings: Settings) -> str:
    db = Database(settings.resolved_database_url)
    now = SystemClock().now_ms()
    try:
        async with db.write() as session:
            app = await apps.register_app(
                session, did=DEMO_APP_DID, environment=DEMO_ENVIRONMENT, now_ms=now, name="Demo event app"
            )
            await session.flush()
            caller = Caller(app.id, app.did, DEMO_ENVIRONMENT)
            event = await catalog.ensure_event(
                session,
                caller,
                DEMO_ORGANIZER_DID,
                EventInput(
                    uri=DEMO_EVENT_URI,
                    title="Atmosphere Community Night",
                    starts_ms=parse_datetime("2026-12-12T19:00:00Z", "startsAt"),
                    ends_ms=parse_datetime("2026-12-12T23:00:00Z", "endsAt"),
                    timezone="Europe/Berlin",
                ),
                now,
                status="active",
            )
            await session.flush()
            existing = await session.scalar(select(Tier.id).where(Tier.event_id == event.id))
            if existing is None:
                hall = await catalog.create_group(session, caller, event, "Main hall", 120, now)
                await session.flush()
                for title, amount, quantity in (("Early bird", 1500, 40), ("General admission", 2500, 120)):
                    await catalog.create_tier(
                        session,
                        caller,
                        event,
                        TierInput(
                            title=title,
                            currency="eur",
                            unit_amount=amount,
                            quantity_total=quantity,
                            max_per_order=6,
                        ),
                        now,
                        group_id=hall.id,
                    )
                await catalog.create_tier(
                    session,
                    caller,
                    event,
                    TierInput(
                        title="VIP", currency="eur", unit_amount=6000, quantity_total=20, max_per_order=2
                    ),
                    now,
                )
            inventory = await catalog.inventory(session, event, now)
    finally:
        await db.dispose()
    lines = [
        f"demo app      {DEMO_APP_DID} (environment {DEMO_ENVIRONMENT}; key in {settings.data_dir / 'demo'})",
        f"demo event    {event.id}  {event.title}",
        *(f"  tier        {s.tier.id}  {s.tier.title}: {s.available} available" for s in inventory.tiers),
        f"database      {settings.resolved_database_url}",
        f'try it        tickets call getTicketAvailability \'{{"eventId": "{event.id}"}}\'',
    ]
    return "\n".join(lines)

"""Demo data for a laptop: a registered demo app with its own key and DID document, and a ticketed
demo event with two tiers sharing one capacity group and a VIP tier of its own."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import segno
from sqlalchemy import select

from server.atproto.datetimes import parse_datetime
from server.auth.signing import SigningKey
from server.db import migrate
from server.db.engine import Database
from server.db.models import App, CheckInList, Ticket, Tier
from server.devtools import mint_service_jwt
from server.domain import apps
from server.domain.caller import Caller
from server.domain.catalog import service as catalog
from server.domain.catalog.service import EventInput, TierInput
from server.domain.checkin.lists import create_list
from server.domain.common import SystemClock
from server.domain.devices.service import create_enrollment
from server.domain.holds.service import HoldRequest, create_hold
from server.domain.issuance.list_keys import Keyring, ensure_default_list, load_server_key
from server.domain.issuance.queries import in_context
from server.domain.offers import service as offers
from server.domain.offers.service import OfferInput
from server.domain.payments.devpay import pay
from server.settings import Settings
from server.xrpc.lexicon import LEXICON_DIR, Lexicons

DEMO_APP_DID = "did:web:demo-app.localhost"
DEMO_ORGANIZER_DID = "did:plc:demoorganizer0000000000"
DEMO_EVENT_URI = f"at://{DEMO_ORGANIZER_DID}/community.lexicon.calendar.event/3demoevent000"
DEMO_ENVIRONMENT = "test"
DEMO_OFFER_CODE = "COMMUNITY"


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


def seed_demo(settings: Settings, *, port: int) -> tuple[Settings, DemoDoor]:
    """Write the demo identity and data; answers the settings the demo server runs with and what
    its door needs."""
    data_dir = settings.data_dir
    did_docs = settings.did_docs or data_dir / "did-docs"
    did_docs.mkdir(parents=True, exist_ok=True)
    key = demo_key(data_dir)
    (did_docs / "demo-app.json").write_text(json.dumps(key.did_document(DEMO_APP_DID), indent=2))
    os.environ["TICKETS_DID_DOCS"] = str(did_docs)
    os.environ.setdefault("TICKETS_OUTBOUND_ALLOW_PRIVATE", "true")  # the demo's parts all run on loopback
    os.environ.setdefault("TICKETS_PUBLIC_URL", f"http://127.0.0.1:{port}")
    settings = Settings()
    migrate.upgrade(settings.resolved_database_url)
    summary, event_id = asyncio.run(_seed(settings))
    door = asyncio.run(open_doors(settings, event_id))
    print(summary)
    print(f"door lists    {door.main_list} (Main entrance), {door.vip_list} (VIP lounge)")
    print(f"pass images   {door.passes_dir}")
    print(
        f"desk code     {door.enrollment_code}  (tickets-scanner enroll {door.enrollment_code} "
        f"--server {settings.public_url})"
    )
    return settings, door


async def _seed(settings: Settings) -> tuple[str, str]:
    db = Database(settings.resolved_database_url)
    keyring = Keyring(load_server_key(settings))
    now = SystemClock().now_ms()
    try:
        async with db.write() as session:
            app = await apps.register_app(
                session, did=DEMO_APP_DID, environment=DEMO_ENVIRONMENT, now_ms=now, name="Demo event app"
            )
            await session.flush()
            # The demo organizer consents to the demo app, as its assertion on an app's first call does.
            caller = Caller(
                app.id,
                app.did,
                DEMO_ENVIRONMENT,
                organizer_did=DEMO_ORGANIZER_DID,
                organizer_jti="demo-seed",
            )
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
                keyring=keyring,
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
                community = OfferInput(
                    name="Friends of the community",
                    kind="discount",
                    code=DEMO_OFFER_CODE,
                    public=True,
                    discount_percent=20,
                    max_redemptions=30,
                )
                await offers.create_offer(session, caller, event.id, community, now)
            inventory = await catalog.inventory(session, event, now)
    finally:
        await db.dispose()
    lines = [
        f"demo app      {DEMO_APP_DID} (environment {DEMO_ENVIRONMENT}; key in {settings.data_dir / 'demo'})",
        f"demo event    {event.id}  {event.title}",
        *(f"  tier        {s.tier.id}  {s.tier.title}: {s.available} available" for s in inventory.tiers),
        f"offer code    {DEMO_OFFER_CODE}: 20% off, 30 tickets (previewTicketOrder with offerCode)",
        f"database      {settings.resolved_database_url}",
        f'try it        tickets call getTicketAvailability \'{{"eventId": "{event.id}"}}\'',
    ]
    return "\n".join(lines), event.id


DEMO_GUESTS = (
    ("Ada Lovelace", "General admission"),
    ("Grace Hopper", "General admission"),
    ("Alan Turing", "Early bird"),
    ("Katherine Johnson", "Early bird"),
    ("Hedy Lamarr", "VIP"),
    ("Édouard Lucas", "General admission"),
    ("李白", "General admission"),
    ("Margaret Hamilton", "VIP"),
)


@dataclass(frozen=True, slots=True)
class DemoDoor:
    """What the demo's door needs: the lists, the pass images and a desk enrollment code."""

    main_list: str
    vip_list: str
    passes_dir: Path
    enrollment_code: str


async def open_doors(settings: Settings, event_id: str) -> DemoDoor:
    """Two check-in lists (everyone at the main entrance, VIPs at the lounge), the demo guests'
    tickets sold through the dev payments path, their pass QR images, and an enrollment code for a
    desk at the main entrance. Done once; later runs reuse them."""
    db = Database(settings.resolved_database_url)
    keyring = Keyring(load_server_key(settings))
    passes_dir = settings.data_dir / "demo" / "passes"
    now = SystemClock().now_ms()
    try:
        async with db.write() as session:
            app = await session.scalar(
                select(App).where(App.did == DEMO_APP_DID, App.environment == DEMO_ENVIRONMENT)
            )
            assert app is not None
            caller = Caller(app.id, app.did, DEMO_ENVIRONMENT)
            event = await catalog.find_event(session, DEMO_ENVIRONMENT, event_id=event_id)
            main = await ensure_default_list(session, keyring, event.id, now)
            tiers = {t.title: t for t in await session.scalars(select(Tier).where(Tier.event_id == event.id))}
            vip = await session.scalar(
                select(CheckInList).where(CheckInList.event_id == event.id, CheckInList.name == "VIP lounge")
            )
            if vip is None:
                vip = await create_list(
                    session,
                    keyring,
                    caller,
                    event.id,
                    {"name": "VIP lounge", "tier_ids": [tiers["VIP"].id], "gates": ["Lounge"]},
                    now,
                )
            sold = await session.scalar(select(Ticket.id).where(Ticket.event_id == event.id))
            holds_made = []
            if sold is None:
                for name, tier in DEMO_GUESTS:
                    request = HoldRequest({tiers[tier].id: 1}, attendees=[{"name": name}])
                    holds_made.append((await create_hold(session, caller, request, now, 900_000)).hold)
            enrollment = await create_enrollment(session, DEMO_ENVIRONMENT, [main.id], "Demo desk", now)
        for hold in holds_made:
            reply = await pay(db, keyring, settings, hold, SystemClock().now_ms())
            if reply.body.get("outcome") != "issued":
                raise RuntimeError(f"demo payment not issued: {reply.body}")
        async with db.read() as session:
            tickets = list(
                await session.scalars(select(Ticket).where(Ticket.event_id == event_id).order_by(Ticket.id))
            )
            rendered = await in_context(session, keyring, tickets)
    finally:
        await db.dispose()
    passes_dir.mkdir(parents=True, exist_ok=True)
    for item in rendered:
        if item.pass_token is not None:
            safe = "".join(c if c.isalnum() else "-" for c in (item.ticket.attendee_name or "guest"))
            segno.make(item.pass_token, error="m").save(
                str(passes_dir / f"{item.ticket.ticket_number}-{safe}.png"), scale=8, border=4
            )
    return DemoDoor(main.id, vip.id, passes_dir, enrollment.code)


def run_desk(settings: Settings, door: DemoDoor, *, screen: bool) -> int:
    """Enroll a fresh demo desk at the main entrance and start it on the pass images: the door
    staff's screen when there is a terminal, else headless, printing one line per decision."""
    desk_dir = settings.data_dir / "demo" / "desk"
    shutil.rmtree(desk_dir, ignore_errors=True)
    env = {**os.environ, "SCANNER_DATA_DIR": str(desk_dir)}
    scanner = str(Path(sys.executable).with_name("tickets-scanner"))
    enroll = [scanner, "enroll", door.enrollment_code, "--server", settings.public_url, "--name", "Demo desk"]
    enrolled = subprocess.run(enroll, env=env, check=False)  # noqa: S603  (our own console script)
    if enrolled.returncode != 0:
        return enrolled.returncode
    source = ["--source", str(door.passes_dir), "--list", door.main_list, "--gate", "Main door"]
    command = [scanner, *source] if screen else [scanner, "--headless", *source]
    return subprocess.run(command, env=env, check=False).returncode  # noqa: S603

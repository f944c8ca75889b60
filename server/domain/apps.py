"""Registered event apps and the replay record of their service-auth tokens."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.engine import Database
from server.db.models import App, JwtReplay
from server.domain.common import ENVIRONMENTS, new_id
from server.domain.errors import AppNotRegistered, InvalidRequest, TicketsModuleDisabled
from server.domain.offers.pricing import BASIS_POINTS, Fees


def check_environment(environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise InvalidRequest(f"environment must be one of {', '.join(ENVIRONMENTS)}")
    return environment


async def register_app(
    session: AsyncSession,
    *,
    did: str,
    environment: str,
    now_ms: int,
    name: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> App:
    """Register (or re-enable and update) the app ``did`` in ``environment``."""
    check_environment(environment)
    if not did.startswith("did:"):
        raise InvalidRequest("an app is identified by its DID")
    app = await session.scalar(select(App).where(App.did == did, App.environment == environment))
    if app is None:
        app = App(id=new_id("app", now_ms), did=did, environment=environment, created_ms=now_ms)
        session.add(app)
    app.status = "active"
    app.name = name or app.name
    app.webhook_url = webhook_url or app.webhook_url
    if webhook_url and not (webhook_secret or app.webhook_secret):
        webhook_secret = "whsec_" + secrets.token_urlsafe(32)
    app.webhook_secret = webhook_secret or app.webhook_secret
    app.updated_ms = now_ms
    return app


async def set_fees(session: AsyncSession, did: str, environment: str, fees: Fees, now_ms: int) -> App:
    """The app's fee on paid orders (see :mod:`server.domain.offers.pricing`)."""
    if not 0 <= fees.bps <= BASIS_POINTS or fees.flat < 0:
        raise InvalidRequest(f"fees are 0 to {BASIS_POINTS} basis points and a non-negative flat amount")
    app = await session.scalar(select(App).where(App.did == did, App.environment == environment))
    if app is None:
        raise AppNotRegistered(f"{did} is not registered in {environment}")
    app.fee_bps, app.fee_flat, app.fee_to_buyer = fees.bps, fees.flat, fees.to_buyer
    app.updated_ms = now_ms
    return app


async def list_apps(session: AsyncSession) -> list[App]:
    return list(await session.scalars(select(App).order_by(App.environment, App.did)))


async def disable_app(session: AsyncSession, did: str, environment: str, now_ms: int) -> App:
    app = await session.scalar(select(App).where(App.did == did, App.environment == environment))
    if app is None:
        raise AppNotRegistered(f"{did} is not registered in {environment}")
    app.status = "disabled"
    app.updated_ms = now_ms
    return app


async def caller_app(session: AsyncSession, did: str, environment: str) -> App:
    """The registered, enabled app ``did`` (an iss may carry a ``#service`` fragment)."""
    bare = did.split("#", 1)[0]
    app = await session.scalar(select(App).where(App.did == bare, App.environment == environment))
    if app is None:
        raise AppNotRegistered(f"{bare} is not registered to call this service in {environment}")
    if app.status != "active":
        raise TicketsModuleDisabled(f"ticketing is disabled for {bare} in {environment}")
    return app


class DatabaseReplayGuard:
    """``(iss, jti)`` pairs recorded in the database, so every server process refuses a replay."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def first_use(self, iss: str, jti: str, exp: int) -> bool:
        try:
            async with self.db.write() as session:
                session.add(JwtReplay(iss=iss, jti=jti, exp=exp))
        except IntegrityError:
            return False
        return True


async def forget_spent_jtis(session: AsyncSession, now_s: int) -> None:
    """Replay records can go once their token has expired: it is refused on ``exp`` anyway."""
    await session.execute(delete(JwtReplay).where(JwtReplay.exp < now_s - 60))

"""Registered event apps and the replay record of their service-auth tokens."""

from __future__ import annotations

import secrets

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.service_jwt import ServiceJwtClaims
from server.db.engine import Database, Driver
from server.db.models import App, JwtReplay
from server.domain.caller import AppSettings
from server.domain.common import ENVIRONMENTS, new_id
from server.domain.offers.pricing import BASIS_POINTS, Fees
from server.domain.outbox.service import DESTINATION
from server.errors import AppNotRegistered, InvalidRequest, JwtReplayed, TicketsModuleDisabled

MAX_REMEMBERED_APPS = 10_000
# How an app receives its lifecycle events: signed webhooks, or XRPC calls to its receiver.
DELIVERIES = ("webhook", "xrpc")


def _changed(app: App, now_ms: int) -> None:
    """Every change moves the row's ``updated_ms`` on, also within one millisecond (or a clock
    set back): the processes' remembered fees are told apart by it (:class:`RegisteredApps`)."""
    app.updated_ms = now_ms if app.updated_ms is None else max(now_ms, app.updated_ms + 1)


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
    delivery: str | None = None,
) -> App:
    """Register (or re-enable and update) the app ``did`` in ``environment``. ``delivery``
    ``xrpc``: lifecycle events go to the ``#AtmEventReceiver`` service of the app's DID document
    instead of its webhook URL."""
    check_environment(environment)
    if not did.startswith("did:"):
        raise InvalidRequest("an app is identified by its DID")
    if delivery is not None and delivery not in DELIVERIES:
        raise InvalidRequest(f"delivery must be one of {', '.join(DELIVERIES)}")
    app = await session.scalar(select(App).where(App.did == did, App.environment == environment))
    if app is None:
        app = App(id=new_id("app", now_ms), did=did, environment=environment, created_ms=now_ms)
        session.add(app)
    app.status = "active"
    app.name = name or app.name
    app.delivery = delivery or app.delivery or "webhook"
    app.webhook_url = webhook_url or app.webhook_url
    if webhook_url and not (webhook_secret or app.webhook_secret):
        webhook_secret = "whsec_" + secrets.token_urlsafe(32)
    app.webhook_secret = webhook_secret or app.webhook_secret
    _changed(app, now_ms)
    return app


async def set_fees(session: AsyncSession, did: str, environment: str, fees: Fees, now_ms: int) -> App:
    """The app's fee on paid orders (see :mod:`server.domain.offers.pricing`)."""
    if not 0 <= fees.bps <= BASIS_POINTS or fees.flat < 0:
        raise InvalidRequest(f"fees are 0 to {BASIS_POINTS} basis points and a non-negative flat amount")
    app = await session.scalar(select(App).where(App.did == did, App.environment == environment))
    if app is None:
        raise AppNotRegistered(f"{did} is not registered in {environment}")
    app.fee_bps, app.fee_flat, app.fee_to_buyer = fees.bps, fees.flat, fees.to_buyer
    _changed(app, now_ms)
    return app


async def list_apps(session: AsyncSession) -> list[App]:
    return list(await session.scalars(select(App).order_by(App.environment, App.did)))


async def disable_app(session: AsyncSession, did: str, environment: str, now_ms: int) -> App:
    app = await session.scalar(select(App).where(App.did == did, App.environment == environment))
    if app is None:
        raise AppNotRegistered(f"{did} is not registered in {environment}")
    app.status = "disabled"
    _changed(app, now_ms)
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


_SETTINGS = select(App.fee_bps, App.fee_flat, App.fee_to_buyer, DESTINATION, App.updated_ms).where(
    App.id == bindparam("app_id")
)


class RegisteredApps:
    """What a call needs of its app, remembered per process. The id of each app seen registered,
    by DID and environment: an app's id never changes (disabling or re-enabling keeps the row), so
    nothing here goes stale; whether the app is still enabled is checked on every call, by
    :func:`spend_token`. And each app's settings (fees, where its events go), with the row's
    ``updated_ms`` they were read at: every change to an app moves its ``updated_ms`` on, and
    :func:`spend_token` answers the row's current one, so they are read again only after a change,
    in whichever process."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._settings: dict[str, tuple[int, AppSettings]] = {}

    async def app_id(self, db: Database, did: str, environment: str) -> str:
        """The id of the registered app ``did`` (an iss may carry a ``#service`` fragment); when it
        is not known yet, it is looked up, and must be enabled."""
        key = (did.split("#", 1)[0], environment)
        known = self._ids.get(key)
        if known is None:
            async with db.read() as session:
                known = (await caller_app(session, *key)).id
            if len(self._ids) >= MAX_REMEMBERED_APPS:
                self._ids.clear()
            self._ids[key] = known
        return known

    async def settings(self, db: Database, app_id: str, updated_ms: int) -> AppSettings:
        """The settings of the app ``app_id`` as of its row's ``updated_ms`` (the one its token's
        spend answered): remembered, or read again when the row changed since."""
        known = self._settings.get(app_id)
        if known is not None and known[0] == updated_ms:
            return known[1]
        async with db.read() as session:
            row = (await session.execute(_SETTINGS, {"app_id": app_id})).one_or_none()
        if row is None:
            raise AppNotRegistered(f"app {app_id} is not registered")
        bps, flat, to_buyer, destination, version = row
        settings = AppSettings(Fees(bps=bps, flat=flat, to_buyer=to_buyer), destination)
        if len(self._settings) >= MAX_REMEMBERED_APPS:
            self._settings.clear()
        self._settings[app_id] = (version, settings)
        return settings


# One round trip: the (iss, jti) pair is recorded only while the app is enabled, and only once;
# it answers the app row's ``updated_ms`` (what :class:`RegisteredApps` keeps the app's settings by).
_SPEND = (
    "INSERT INTO jwt_replays (iss, jti, exp) "
    "SELECT :iss, :jti, CAST(:exp AS BIGINT) FROM apps WHERE id = :app AND status = 'active' "
    "ON CONFLICT DO NOTHING RETURNING (SELECT updated_ms FROM apps WHERE id = :app)"
)
_APP_STATUS = "SELECT status FROM apps WHERE id = :app"


async def spend_token(driver: Driver, app_id: str, token: ServiceJwtClaims) -> int:
    """Record the verified token's ``jti``, committed at once (``Database.autocommit``), so that
    every server process refuses it from then on; refuse it when it was seen before or when the app
    ``app_id`` is no longer enabled. Answers the app row's ``updated_ms``."""
    params = {"iss": token.iss, "jti": token.jti, "exp": token.exp, "app": app_id}
    spent = await driver.fetch(_SPEND, params)
    if spent:
        return int(spent[0][0])
    status = await driver.fetch(_APP_STATUS, {"app": app_id})
    if not status:
        raise AppNotRegistered(f"{token.did} is not registered to call this service")
    if status[0][0] != "active":
        raise TicketsModuleDisabled(f"ticketing is disabled for {token.did}")
    raise JwtReplayed("this token was already used (jti seen before)")


_SPEND_ASSERTION = (
    "INSERT INTO jwt_replays (iss, jti, exp) VALUES (:iss, :jti, CAST(:exp AS BIGINT)) "
    "ON CONFLICT DO NOTHING RETURNING jti"
)


async def spend_assertion(driver: Driver, token: ServiceJwtClaims) -> None:
    """Record a verified organizer or buyer assertion's ``jti`` like a caller's token (committed at
    once, so every process refuses it from then on); refuse it when it was seen before."""
    if not await driver.fetch(_SPEND_ASSERTION, {"iss": token.iss, "jti": token.jti, "exp": token.exp}):
        raise JwtReplayed("this assertion was already used (jti seen before)")


async def forget_spent_jtis(session: AsyncSession, now_s: int) -> None:
    """Replay records can go once their token has expired: it is refused on ``exp`` anyway."""
    await session.execute(delete(JwtReplay).where(JwtReplay.exp < now_s - 60))

"""``create_app(settings)``: the one place the server is assembled."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Response, get, route
from litestar.exceptions import HTTPException, NotFoundException
from litestar.types import ASGIApp
from sqlalchemy import text

from server import __version__, log_redaction, metrics
from server.auth.did import DidResolver
from server.db import migrate
from server.db.engine import Database
from server.domain.apps import RegisteredApps, forget_spent_jtis
from server.domain.common import Clock, SystemClock
from server.domain.eventimage import EventImages
from server.domain.holds.service import sweep_expired
from server.domain.issuance.list_keys import Keyring, load_server_key
from server.domain.mail.worker import announce as announce_mail
from server.domain.mail.worker import run_mail_worker
from server.domain.outbox.delivery import run_delivery_worker
from server.domain.outbox.receivers import XrpcReceivers, load_service_signing_key
from server.domain.outbox.service import backlog
from server.domain.payments.devpay import live_apps_without_broker
from server.domain.publishing.service import atproto_parts
from server.domain.publishing.worker import run_publish_worker
from server.domain.ratelimit import forget_old_windows
from server.errors import ServiceError
from server.outbound import OutboundPolicy, outbound_client
from server.settings import Settings, get_settings
from server.watchdog import LoopWatchdog
from server.web.console.routes import CONSOLE
from server.web.guard import hostile_request_guard
from server.web.identity import ROUTES as identity_routes
from server.web.observe import observe_requests
from server.web.routes import ROUTES as web_routes
from server.xrpc import (  # noqa: F401  (registers the methods)
    catalog,
    checkin,
    consents,
    devices,
    discovery,
    holds,
    offers,
    organizer,
    payments,
    tickets,
)
from server.xrpc.auth import authenticate
from server.xrpc.errors import handle_http_exception, handle_service_error, handle_unexpected
from server.xrpc.framework import METHODS, RawOutput, Services, dispatch
from server.xrpc.lexicon import LEXICON_DIR, Lexicons
from server.xrpc.ratelimits import check_methods, client_ip, longest_window_seconds
from server.xrpc.transport import NotReady

log = logging.getLogger("tickets")
# How long readiness waits for the database before answering that it is not ready.
READY_TIMEOUT_S = 2.0


@get("/xrpc/_health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"version": __version__}


@get("/healthz", sync_to_thread=False)
def liveness() -> dict[str, str]:
    """The process serves requests (nothing else is checked: a restart would not fix the rest)."""
    return {"status": "ok", "version": __version__}


@get("/readyz")
async def readiness(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Ready for traffic: the database answers, and its schema is at the head migration."""
    services: Services = request.app.state.services
    head: str | None = request.app.state.head_revision
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), services.db.read() as session:
            revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:
        # The database is unreachable, or has no schema yet (no migration table).
        raise NotReady("the database is unreachable or not migrated") from None
    if revision != head:
        raise NotReady(f"the database schema is at revision {revision}, not at {head}")
    return {"status": "ready", "revision": str(revision)}


@get("/metrics", sync_to_thread=False)
def metrics_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text; with ``TICKETS_METRICS=loopback`` only for clients on this machine."""
    settings: Settings = request.app.state.services.settings
    if settings.metrics == "loopback" and not _from_loopback(request, settings):
        raise NotFoundException()
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


def _from_loopback(request: Request[Any, Any, Any], settings: Settings) -> bool:
    address = client_ip(
        request.client.host if request.client else None,
        request.headers.get(settings.client_ip_header),
        settings.trusted_proxy_count,
    )
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@route("/xrpc/{nsid:str}", http_method=["GET", "POST"], status_code=200)
async def xrpc(request: Request[Any, Any, Any]) -> Response[Any]:
    services: Services = request.app.state.services
    body = await request.body() if request.method == "POST" else b""
    output = await dispatch(
        services,
        authenticate,
        http_method=request.method,
        nsid=request.path_params["nsid"],
        authorization=request.headers.get("authorization"),
        query={k: request.query_params.getall(k) for k in request.query_params},
        body=body,
        client_ip=client_ip(
            request.client.host if request.client else None,
            request.headers.get(services.settings.client_ip_header),
            services.settings.trusted_proxy_count,
        ),
    )
    if isinstance(output, RawOutput):
        disposition = f'attachment; filename="{output.filename}"'
        return Response(
            output.content, media_type=output.media_type, headers={"content-disposition": disposition}
        )
    return Response(output)


async def run_sweeper(services: Services) -> None:
    """Expire lapsed holds, forget spent JWT ids and past rate windows, forever; safe in every
    process at once."""
    settings = services.settings
    interval = settings.sweep_interval_seconds
    longest_window_s = longest_window_seconds(settings)
    while True:
        try:
            now_ms = services.clock.now_ms()
            async with services.db.write() as session:
                expired = await sweep_expired(session, now_ms)
                await forget_spent_jtis(session, now_ms // 1000)
                await forget_old_windows(session, now_ms, longest_window_s * 1000)
            lag_ms = now_ms - min((hold.expires_ms for hold in expired), default=now_ms)
            metrics.SWEEPER_LAG.set(lag_ms / 1000)
            metrics.SWEEPER_LAST_PASS.set(time.time())
            if expired:
                metrics.HOLDS_EXPIRED.inc(len(expired))
                log.info(
                    "sweeper: %d hold(s) expired, %.1f s after their expiry at most",
                    len(expired),
                    lag_ms / 1000,
                )
        except Exception:
            log.exception("hold sweeper pass failed; retrying")
        await asyncio.sleep(interval)


async def run_sampler(services: Services) -> None:
    """Sample the outbox backlog and this process's database pools for the metrics, forever."""
    while True:
        try:
            now_ms = services.clock.now_ms()
            async with services.db.read() as session:
                waiting, oldest_ms = await backlog(session)
            metrics.OUTBOX_BACKLOG.set(waiting)
            metrics.OUTBOX_OLDEST_AGE.set(0 if oldest_ms is None else (now_ms - oldest_ms) / 1000)
            in_use, size = services.db.pool_use()
            metrics.DB_POOL_IN_USE.set(in_use)
            metrics.DB_POOL_SIZE.set(size)
        except Exception:
            log.exception("sampling the metrics failed; retrying")
        await asyncio.sleep(services.settings.metrics_sample_seconds)


async def warn_about_payments(db: Database, settings: Settings) -> None:
    """Say at startup when live apps are registered but no payment broker is configured. A database
    that cannot answer yet does not stop the start: readiness reports it."""
    try:
        async with db.read() as session:
            count = await live_apps_without_broker(session, settings)
    except Exception:
        log.warning("the database cannot be read at startup: not ready until it can")
        return
    if count:
        log.warning(
            "%d app(s) are registered in the live environment but no payment broker is configured "
            "(TICKETS_BROKER_URL): their holds are refused with PaymentSetupIncomplete",
            count,
        )


def settle_startup_heap() -> None:
    """Collect once, then leave every object alive now (modules, lexicons, the app, its pools) out
    of all later garbage collections (``gc.freeze``). A worker's startup heap is some 173,000
    objects: each full collection walked them all, pausing every request in flight for about
    100 ms; now one walks only what was made since. For a process that serves one app until it
    exits: objects frozen are never collected, so a process that builds many apps must not."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, *, served_worker: bool = False
) -> ASGIApp:
    """The server; ``clock`` is the time its services and workers read (the system's unless a test
    moves it instead of waiting). ``served_worker``: as a served worker, which serves this app until
    it exits, freeze the heap once started (:func:`settle_startup_heap`) and watch the event loop
    (:class:`server.watchdog.LoopWatchdog`)."""
    settings = settings or get_settings()
    clock = clock or SystemClock()
    check_methods(settings, METHODS)
    log_redaction.install()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
        async with outbound_client(OutboundPolicy.from_settings(settings)) as http:
            resolver = DidResolver(
                local_docs_dir=settings.did_docs,
                plc_url=settings.plc_url,
                http=http,
                web_scheme=settings.did_web_scheme,
            )
            keyring = Keyring(load_server_key(settings))
            lexicons = Lexicons.load(LEXICON_DIR)
            graph, publisher = atproto_parts(
                settings, db, resolver, http, lexicons, keyring.server_key, clock
            )
            signing_key = load_service_signing_key(settings)
            services = Services(
                settings, db, resolver, lexicons, clock, keyring, graph, RegisteredApps(), signing_key
            )
            app.state.services = services
            images = EventImages(
                OutboundPolicy.from_settings(settings), allow_http=settings.outbound_allow_private
            )
            app.state.event_images = images
            app.state.head_revision = migrate.head_revision(settings.resolved_database_url)
            receivers = XrpcReceivers(resolver, signing_key, settings.service_did)
            await warn_about_payments(db, settings)
            announce_mail(settings)
            workers = [
                asyncio.create_task(run_sweeper(services)),
                asyncio.create_task(
                    run_delivery_worker(db, settings, services.clock, http, receivers=receivers)
                ),
                asyncio.create_task(run_publish_worker(publisher, settings.publish_poll_interval_seconds)),
                asyncio.create_task(run_mail_worker(db, keyring, settings, clock)),
            ]
            if settings.metrics != "off":
                workers.append(asyncio.create_task(run_sampler(services)))
            watchdog = None
            if served_worker:
                settle_startup_heap()
                if settings.worker_stall_seconds:
                    watchdog = LoopWatchdog(settings.worker_stall_seconds)
                    watchdog.start()
            try:
                yield
            finally:
                if watchdog is not None:
                    await watchdog.stop()
                # Requests in flight have finished (the server waits for them before the lifespan
                # ends); the workers give their claims back as they stop.
                for worker in workers:
                    worker.cancel()
                for worker in workers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await images.aclose()
                await db.dispose()
                metrics.process_exited()

    metrics_here = settings.metrics != "off" and not settings.metrics_port
    app = Litestar(
        route_handlers=[
            health,
            liveness,
            readiness,
            *([metrics_page] if metrics_here else []),
            xrpc,
            *web_routes,
            *identity_routes,
            CONSOLE,
        ],
        lifespan=[lifespan],
        exception_handlers={
            ServiceError: handle_service_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        request_max_body_size=settings.max_body_bytes,
        middleware=[hostile_request_guard(settings.max_body_bytes)],
        openapi_config=None,
        # Logging is the server's (``tickets serve`` configures it, see server.observability).
        logging_config=None,
        debug=False,
    )
    # Around the whole app, not as Litestar middleware: requests no route matches (404) are
    # logged and counted too.
    return observe_requests(log_access=settings.access_log)(app)


def create_app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory`` worker processes: one app each, until they exit."""
    return create_app(get_settings(), served_worker=True)

"""``create_app(settings)``: the one place the server is assembled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from litestar import Litestar, Request, Response, get, route
from litestar.exceptions import HTTPException

from server import __version__, log_redaction
from server.atproto.client import XrpcClient
from server.auth.did import DidResolver
from server.db.engine import Database
from server.domain.apps import RegisteredApps, forget_spent_jtis
from server.domain.catalog.eventgraph import EventGraph
from server.domain.common import Clock, SystemClock
from server.domain.errors import DomainError
from server.domain.holds.service import sweep_expired
from server.domain.issuance.keys import Keyring, load_server_key
from server.domain.outbox.delivery import run_delivery_worker
from server.domain.outbox.receivers import XrpcReceivers, load_service_signing_key
from server.domain.payments.devpay import live_apps_without_broker
from server.domain.publishing.accounts import Sealer
from server.domain.publishing.service import Publisher
from server.domain.publishing.worker import run_publish_worker
from server.domain.ratelimit import forget_old_windows
from server.outbound import OutboundPolicy, outbound_client
from server.settings import Settings, get_settings
from server.web.guard import hostile_request_guard
from server.web.identity import ROUTES as identity_routes
from server.web.routes import ROUTES as web_routes
from server.xrpc import (  # noqa: F401  (registers the methods)
    catalog,
    checkin,
    consents,
    devices,
    discovery,
    holds,
    offers,
    payments,
    tickets,
)
from server.xrpc.auth import authenticate
from server.xrpc.errors import handle_domain_error, handle_http_exception, handle_unexpected
from server.xrpc.framework import METHODS, RawOutput, Services, dispatch
from server.xrpc.lexicon import LEXICON_DIR, Lexicons
from server.xrpc.ratelimits import check_methods, client_ip, longest_window_seconds

log = logging.getLogger("tickets")


@get("/xrpc/_health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"version": __version__}


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
                await sweep_expired(session, now_ms)
                await forget_spent_jtis(session, now_ms // 1000)
                await forget_old_windows(session, now_ms, longest_window_s * 1000)
        except Exception:
            log.exception("hold sweeper pass failed; retrying")
        await asyncio.sleep(interval)


async def warn_about_payments(db: Database, settings: Settings) -> None:
    """Say at startup when live apps are registered but no payment broker is configured."""
    async with db.read() as session:
        count = await live_apps_without_broker(session, settings)
    if count:
        log.warning(
            "%d app(s) are registered in the live environment but no payment broker is configured "
            "(TICKETS_BROKER_URL): their holds are refused with PaymentSetupIncomplete",
            count,
        )


def atproto_parts(
    settings: Settings,
    db: Database,
    resolver: DidResolver,
    http: httpx.AsyncClient,
    lexicons: Lexicons,
    server_key: bytes,
    clock: Clock,
) -> tuple[EventGraph, Publisher]:
    """The event graph (reading calendar event records) and the publisher (writing the public
    records), sharing one XRPC client."""
    client = XrpcClient(
        http,
        timeout=settings.pds_timeout_seconds,
        max_response_bytes=settings.pds_max_response_bytes,
        allow_http=settings.pds_allow_http,
    )
    graph = EventGraph(resolver, client, lexicons)
    publisher = Publisher(
        db,
        graph,
        client,
        Sealer(server_key),
        lexicons,
        settings.service_did,
        clock,
        retry_base_ms=int(settings.publish_retry_base_seconds * 1000),
        retry_cap_ms=int(settings.publish_retry_cap_seconds * 1000),
    )
    return graph, publisher


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
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
            lexicons, clock = Lexicons.load(LEXICON_DIR), SystemClock()
            graph, publisher = atproto_parts(
                settings, db, resolver, http, lexicons, keyring.server_key, clock
            )
            signing_key = load_service_signing_key(settings)
            services = Services(
                settings, db, resolver, lexicons, clock, keyring, graph, RegisteredApps(), signing_key
            )
            app.state.services = services
            receivers = XrpcReceivers(resolver, signing_key, settings.service_did)
            await warn_about_payments(db, settings)
            workers = [
                asyncio.create_task(run_sweeper(services)),
                asyncio.create_task(
                    run_delivery_worker(db, settings, services.clock, http, receivers=receivers)
                ),
                asyncio.create_task(run_publish_worker(publisher, settings.publish_poll_interval_seconds)),
            ]
            try:
                yield
            finally:
                for worker in workers:
                    worker.cancel()
                for worker in workers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await db.dispose()

    return Litestar(
        route_handlers=[health, xrpc, *web_routes, *identity_routes],
        lifespan=[lifespan],
        exception_handlers={
            DomainError: handle_domain_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        request_max_body_size=settings.max_body_bytes,
        middleware=[hostile_request_guard(settings.max_body_bytes)],
        openapi_config=None,
        debug=False,
    )


def create_app_from_env() -> Litestar:
    """Factory for ``uvicorn --factory`` worker processes."""
    return create_app(get_settings())

"""``tickets``: the operator's command line ([docs/operations.md](../../docs/operations.md)).

A deployment mistake ends a command with one line on stderr and exit code 2
(:mod:`server.operator_errors`)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from server.atproto.datetimes import format_datetime
from server.cli import console, devices, exports, payments, publish, tickets, webhooks
from server.cli.support import ensure_schema, in_transaction
from server.domain.common import SystemClock
from server.errors import DomainError
from server.operator_errors import EXIT_CODE, OperatorError, explain
from server.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from server.db.models import App


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    from server import http_server

    if args.workers > 1 and settings.resolved_database_url.startswith("sqlite"):
        raise OperatorError(
            f"--workers {args.workers} needs PostgreSQL: the embedded SQLite database takes one server "
            "process; set TICKETS_DATABASE_URL to a PostgreSQL database or use --workers 1"
        )
    # A bad or busy port is told before migrating.
    sockets = http_server.listen(args.host, args.port, args.workers)
    ensure_schema(settings)
    settings = default_public_url(args.host, args.port)
    http_server.serve(
        settings, sockets, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level
    )


ALL_ADDRESSES = frozenset({"0.0.0.0", "::", ""})  # noqa: S104  (what is recognised, not bound)


def default_public_url(host: str, port: int) -> Settings:
    """Unless ``TICKETS_PUBLIC_URL`` is set, the links the server hands out (passes, checkout, desk
    enrollment) point at where it listens; the settings with that URL. Listening on every address,
    the links name this machine, which buyers may not reach: a warning says so."""
    if not os.environ.get("TICKETS_PUBLIC_URL"):
        if host in ALL_ADDRESSES:
            host = socket.gethostname()
            print(
                f"warning: listening on every address, so links will say http://{host}:{port}; "
                "set TICKETS_PUBLIC_URL to the address buyers and desks reach this server at",
                file=sys.stderr,
            )
        shown = f"[{host}]" if ":" in host else host
        os.environ["TICKETS_PUBLIC_URL"] = f"http://{shown}:{port}"
    get_settings.cache_clear()
    return get_settings()


def cmd_db_upgrade(_args: argparse.Namespace, settings: Settings) -> None:
    from server.db import migrate

    migrate.upgrade(settings.resolved_database_url)
    print(f"database at {migrate.head_revision(settings.resolved_database_url)}")


def cmd_db_backup(args: argparse.Namespace, settings: Settings) -> None:
    from server.db import backup

    backup.backup(settings.resolved_database_url, args.out)
    print(f"backed up the database to {args.out}")


def cmd_db_restore(args: argparse.Namespace, settings: Settings) -> None:
    from server.db import backup

    backup.restore(settings.resolved_database_url, args.file)
    print(f"restored {args.file}; run `tickets db upgrade` if it comes from an older version")


def cmd_db_prune_functions(_args: argparse.Namespace, settings: Settings) -> None:
    if settings.resolved_database_url.startswith("sqlite"):
        print("nothing to prune: SQLite sends its reads one by one, through no function")
        return
    import server.app  # noqa: F401 (the modules that send reads together: this version's functions)
    from server.db.engine import driver_of, drop_stale_functions

    async def work(session: AsyncSession) -> list[str]:
        return await drop_stale_functions(await driver_of(session))

    dropped = in_transaction(settings, work)
    for function in dropped:
        print(f"dropped {function}")
    print(f"{len(dropped)} function(s) of earlier versions dropped")


def cmd_app_add(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain import apps

    async def work(session: AsyncSession) -> str:
        app = await apps.register_app(
            session,
            did=args.did,
            environment=args.environment,
            now_ms=SystemClock().now_ms(),
            name=args.name,
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
            delivery=args.delivery,
        )
        if app.delivery == "xrpc":
            how = " lifecycle events: XRPC to its #AtmEventReceiver"
        else:
            how = f" webhook secret: {app.webhook_secret}" if app.webhook_secret else ""
        return f"registered {app.did} in {app.environment} as {app.id}{how}"

    ensure_schema(settings)
    print(in_transaction(settings, work))


def cmd_app_list(_args: argparse.Namespace, settings: Settings) -> None:
    from server.domain import apps

    async def work(session: AsyncSession) -> list[str]:
        return [
            "\t".join(
                (
                    a.id,
                    a.environment,
                    a.status,
                    a.did,
                    (a.webhook_url or "-") if a.delivery == "webhook" else "xrpc receiver",
                    describe_fees(a),
                    format_datetime(a.created_ms),
                )
            )
            for a in await apps.list_apps(session)
        ]

    ensure_schema(settings)
    rows = in_transaction(settings, work)
    print("id\tenvironment\tstatus\tdid\twebhook\tfees\tcreated")
    for row in rows:
        print(row)


def cmd_app_fees(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain import apps
    from server.domain.offers.pricing import Fees

    async def work(session: AsyncSession) -> str:
        fees = Fees(bps=args.bps, flat=args.flat, to_buyer=args.to_buyer)
        app = await apps.set_fees(session, args.did, args.environment, fees, SystemClock().now_ms())
        return f"{app.did} in {app.environment}: {describe_fees(app)}"

    ensure_schema(settings)
    print(in_transaction(settings, work))


def describe_fees(app: App) -> str:
    if not (app.fee_bps or app.fee_flat):
        return "no fee"
    payer = "paid by the buyer" if app.fee_to_buyer else "taken from the organizer's proceeds"
    return f"{app.fee_bps / 100:g}% + {app.fee_flat} per ticket, {payer}"


def cmd_app_disable(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain import apps

    async def work(session: AsyncSession) -> str:
        app = await apps.disable_app(session, args.did, args.environment, SystemClock().now_ms())
        return f"disabled {app.did} in {app.environment}"

    ensure_schema(settings)
    print(in_transaction(settings, work))


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """The whole story on the embedded database: the server with a demo event, two door lists and
    sold tickets, and a desk enrolled at the main entrance scanning the guests' passes."""
    from server import http_server
    from server.demo import run_desk, seed_demo

    http_server.listen("127.0.0.1", args.port)[0].close()  # a bad or busy port is told before seeding
    os.environ.setdefault("TICKETS_DATA_DIR", str(settings.data_dir))
    settings, door = seed_demo(settings, port=args.port)
    get_settings.cache_clear()
    if args.serve_only:
        args.workers, args.host = 1, "127.0.0.1"
        cmd_serve(args, settings)
        return
    server = subprocess.Popen(  # noqa: S603  (this very program)
        [sys.executable, "-m", "server", "serve", "--port", str(args.port), "--log-level", "warning"]
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{args.port}", server)
        screen = sys.stdin.isatty() and sys.stdout.isatty() and not args.headless
        code = run_desk(settings, door, screen=screen)
        raise SystemExit(code)
    finally:
        server.terminate()
        server.wait(timeout=20)


def wait_until_serving(url: str, server: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Wait for the demo's server to answer; it has told the operator why when it exits first."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(server.returncode)
        try:
            if httpx.get(f"{url}/xrpc/_health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


def cmd_call(args: argparse.Namespace, settings: Settings) -> None:
    import httpx

    from server.demo import call_as_demo_app

    try:
        body = json.loads(args.body)
    except ValueError:
        raise SystemExit("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise SystemExit("the body must be a JSON object")
    url = args.url or settings.public_url
    try:
        status, answer = call_as_demo_app(settings, args.method, body, url)
    except httpx.TransportError as exc:
        raise SystemExit(f"cannot reach the server at {url}: {exc}") from None
    print(json.dumps(answer, indent=2))
    if status != 200:
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickets", description="Atmosphere Tickets operator commands")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the XRPC server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes (PostgreSQL for more than one)"
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate the schema to the current version").set_defaults(
        func=cmd_db_upgrade
    )
    save = db.add_parser("backup", help="the whole database to one file, while the server runs")
    save.add_argument("--out", type=Path, required=True, help="the backup file to write (must not exist)")
    save.set_defaults(func=cmd_db_backup)
    db.add_parser(
        "prune-functions",
        help="drop the functions earlier versions sent reads through (once none of them runs)",
    ).set_defaults(func=cmd_db_prune_functions)
    load = db.add_parser("restore", help="fill a new, empty database from a backup")
    load.add_argument("file", type=Path, help="a file written by `tickets db backup`")
    load.set_defaults(func=cmd_db_restore)

    app = sub.add_parser("app", help="event apps allowed to call").add_subparsers(
        dest="app_command", required=True
    )
    add = app.add_parser("add", help="register (or re-enable) an app")
    add.add_argument("--did", required=True)
    add.add_argument("--environment", choices=["test", "live"], default="test")
    add.add_argument("--name")
    add.add_argument("--webhook-url")
    add.add_argument("--webhook-secret")
    add.add_argument(
        "--delivery",
        choices=["webhook", "xrpc"],
        help="how lifecycle events reach the app: signed webhooks to --webhook-url (default), or XRPC "
        "calls to the #AtmEventReceiver service of its DID document",
    )
    add.set_defaults(func=cmd_app_add)
    app.add_parser("list", help="registered apps").set_defaults(func=cmd_app_list)
    fees = app.add_parser("fees", help="set the app's fee on paid orders")
    fees.add_argument("--did", required=True)
    fees.add_argument("--environment", choices=["test", "live"], default="test")
    fees.add_argument("--bps", type=int, default=0, help="basis points of the ticket price after discounts")
    fees.add_argument("--flat", type=int, default=0, help="minor units per ticket of a paid order")
    fees.add_argument(
        "--to-buyer", action="store_true", help="the buyer pays the fee on top (else the organizer bears it)"
    )
    fees.set_defaults(func=cmd_app_fees)
    disable = app.add_parser("disable", help="refuse an app's calls")
    disable.add_argument("--did", required=True)
    disable.add_argument("--environment", choices=["test", "live"], default="test")
    disable.set_defaults(func=cmd_app_disable)

    demo = sub.add_parser("demo", help="seed a demo event on the embedded SQLite database and serve it")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--log-level", default="info")
    demo.add_argument("--serve-only", action="store_true", help="only the server, no desk")
    demo.add_argument("--headless", action="store_true", help="the desk prints its decisions, no screen")
    demo.set_defaults(func=cmd_demo)
    devices.register(sub)
    webhooks.register(sub)
    payments.register(sub)
    exports.register(sub)
    publish.register(sub)
    console.register(sub)
    tickets.register(sub)

    call = sub.add_parser("call", help="call an XRPC method as the demo app (after `tickets demo`)")
    call.add_argument("method", help="e.g. getTicketAvailability or tickets.atmosphere.createTicketHold")
    call.add_argument("body", nargs="?", default="{}", help="JSON input or parameters")
    call.add_argument("--url", help="server base URL (default: TICKETS_PUBLIC_URL)")
    call.set_defaults(func=cmd_call)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args, get_settings())
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception as exc:
        line = explain(exc, configured_database_url())
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None


def configured_database_url() -> str:
    """The database URL the command used, or "" when the settings themselves are the mistake."""
    try:
        return get_settings().resolved_database_url
    except (ValidationError, OperatorError):
        return ""

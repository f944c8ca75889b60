"""``tickets organizer login|logout|list`` and ``tickets publish``: the organizer logins the service
writes public records with, and publishing an event's public records into its organizer's
repository (kept in step by the server from then on)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

from server.atproto.datetimes import format_datetime
from server.cli import consents
from server.cli.support import ensure_schema
from server.domain.common import SystemClock
from server.settings import Settings

if TYPE_CHECKING:
    from server.atproto.session import Tokens
    from server.domain.publishing.service import Publisher

T = TypeVar("T")


@asynccontextmanager
async def _publisher(settings: Settings) -> AsyncIterator[Publisher]:
    from server.auth.did import DidResolver
    from server.db.engine import Database
    from server.domain.issuance.list_keys import load_server_key
    from server.domain.publishing.service import atproto_parts
    from server.outbound import OutboundPolicy, outbound_client
    from server.xrpc.lexicon import LEXICON_DIR, Lexicons

    db = Database(settings.resolved_database_url)
    try:
        async with outbound_client(OutboundPolicy.from_settings(settings)) as http:
            resolver = DidResolver(
                settings.did_docs, settings.plc_url, http, web_scheme=settings.did_web_scheme
            )
            _, publisher = atproto_parts(
                settings,
                db,
                resolver,
                http,
                Lexicons.load(LEXICON_DIR),
                load_server_key(settings),
                SystemClock(),
            )
            yield publisher
    finally:
        await db.dispose()


def _run(settings: Settings, work: Callable[[Publisher], Awaitable[T]]) -> T:
    from server.atproto.client import PdsError
    from server.auth.did import DidResolutionError

    async def run() -> T:
        async with _publisher(settings) as publisher:
            return await work(publisher)

    ensure_schema(settings)
    try:
        return asyncio.run(run())
    except (PdsError, DidResolutionError) as exc:
        raise SystemExit(f"error: {exc}") from None


def _password(args: argparse.Namespace) -> str:
    """The app password: one line of standard input with ``--password-stdin``, else a prompt.
    Never a command-line argument, which other users of the machine could read."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"app password for {args.identifier}: ")
    if not password:
        raise SystemExit("an app password is required")
    return password


def cmd_login(args: argparse.Namespace, settings: Settings) -> None:
    from server.atproto.session import AccountSession, Login
    from server.domain.publishing import accounts

    login = Login(args.did, args.identifier, _password(args))

    async def work(publisher: Publisher) -> str:
        pds_url = await publisher.graph.pds_of(login.did)
        opened: list[Tokens] = []

        async def keep(tokens: Tokens) -> None:
            opened.append(tokens)

        await AccountSession(publisher.client, pds_url, login, None, keep).log_in()
        async with publisher.db.write() as session:
            await accounts.store_login(
                session, publisher.sealer, login, pds_url, opened[-1], publisher.clock.now_ms()
            )
        return pds_url

    pds_url = _run(settings, work)
    print(f"logged in as {login.did} at {pds_url}; the app password is stored sealed")


def cmd_logout(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain.publishing import accounts

    async def work(publisher: Publisher) -> bool:
        async with publisher.db.write() as session:
            return await accounts.forget_login(session, args.did)

    if not _run(settings, work):
        raise SystemExit(f"no login is stored for {args.did}")
    print(f"forgot the login of {args.did}")


def cmd_list(_args: argparse.Namespace, settings: Settings) -> None:
    from server.domain.publishing import accounts

    async def work(publisher: Publisher) -> list[str]:
        async with publisher.db.read() as session:
            return [
                "\t".join((a.did, a.identifier, a.pds_url or "-", format_datetime(a.updated_ms)))
                for a in await accounts.logged_in_organizers(session)
            ]

    rows = _run(settings, work)
    print("did\tidentifier\tpds\tupdated")
    for row in rows:
        print(row)


def cmd_publish(args: argparse.Namespace, settings: Settings) -> None:
    async def work(publisher: Publisher) -> list[str]:
        version = await publisher.claim(args.event)
        report = await publisher.run(args.event, version)
        return [
            *(f"written    {uri}" for uri in report.written),
            *(f"unchanged  {uri}" for uri in report.unchanged),
            *(f"deleted    {uri}" for uri in report.deleted),
        ]

    for line in _run(settings, work):
        print(line)
    print(f"published {args.event}; the server keeps its records in step from now on")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``organizer login|logout|list|consents|revoke`` and ``publish`` to the ``tickets`` command
    line."""
    organizer = sub.add_parser("organizer", help="organizer logins and consents").add_subparsers(
        dest="organizer_command", required=True
    )
    login = organizer.add_parser("login", help="log in to an organizer's PDS with an app password")
    login.add_argument("--did", required=True, help="the organizer's DID")
    login.add_argument("--identifier", required=True, help="handle or email the account logs in with")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the app password from standard input"
    )
    login.set_defaults(func=cmd_login)
    logout = organizer.add_parser("logout", help="forget an organizer's login")
    logout.add_argument("--did", required=True)
    logout.set_defaults(func=cmd_logout)
    organizer.add_parser("list", help="organizers with a stored login").set_defaults(func=cmd_list)
    consents.register(organizer)

    publish = sub.add_parser(
        "publish", help="write an event's public records into its organizer's repository, and keep them"
    )
    publish.add_argument("--event", required=True, metavar="EVENT_ID")
    publish.set_defaults(func=cmd_publish)

"""``tickets console link``: a one-time sign-in link to the organizer's web console."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from server.cli.support import ensure_schema, in_transaction
from server.domain.common import SystemClock
from server.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
LONGEST_MS = 7 * UNITS_MS["d"]


def duration_ms(text: str) -> int:
    """``90s``, ``15m``, ``2h``, ``1d``: at least a second, at most a week."""
    match = re.fullmatch(r"([1-9][0-9]{0,6})([smhd])", text.strip())
    if match is None:
        raise SystemExit("--expires takes a number and a unit: 90s, 15m, 2h or 1d")
    ms = int(match[1]) * UNITS_MS[match[2]]
    if ms > LONGEST_MS:
        raise SystemExit("--expires is at most 7d")
    return ms


def cmd_link(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain.organizer import signin

    if bool(args.organizer) == args.operator:
        raise SystemExit("name the organizer (--organizer DID), or pass --operator for every organizer")
    if args.organizer and not args.organizer.startswith("did:"):
        raise SystemExit("--organizer takes a DID (did:plc:… or did:web:…)")
    expires = duration_ms(args.expires)

    async def work(session: AsyncSession) -> str:
        return signin.create_link(session, args.organizer, expires, SystemClock().now_ms())

    ensure_schema(settings)
    secret = in_transaction(settings, work)
    print(f"{settings.public_url.rstrip('/')}/console/signin/{secret}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = sub.add_parser("console", help="the organizer's web console").add_subparsers(
        dest="console_command", required=True
    )
    link = console.add_parser("link", help="print a one-time sign-in link")
    link.add_argument("--organizer", metavar="DID", help="the organizer whose events the session sees")
    link.add_argument("--operator", action="store_true", help="a session that sees every organizer")
    link.add_argument("--expires", default="15m", help="how long the link works (default 15m)")
    link.set_defaults(func=cmd_link)

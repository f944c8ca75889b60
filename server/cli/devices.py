"""``tickets device enroll|list|revoke|searches``: desk scanners."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from server.atproto.datetimes import format_datetime, format_optional_datetime
from server.cli.support import ensure_schema, in_transaction
from server.domain.common import SystemClock
from server.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from server.domain.devices.service import Enrollment


def cmd_enroll(args: argparse.Namespace, settings: Settings) -> None:
    import segno

    from server.domain.devices import service as devices

    async def work(session: AsyncSession) -> Enrollment:
        return await devices.create_enrollment(
            session, args.environment, args.list, args.name, SystemClock().now_ms()
        )

    ensure_schema(settings)
    made = in_transaction(settings, work)
    text = devices.enrollment_text(made.code, settings.public_url)
    print(f"device    {made.device.id} ({made.device.name})")
    print(f"lists     {', '.join(made.device.list_ids)}")
    print(f"code      {made.code}   (valid 24 hours, once)")
    print(f"server    {settings.public_url}")
    if not args.no_qr:
        segno.make(text, error="m").terminal(compact=True)


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain.devices import service as devices

    async def work(session: AsyncSession) -> list[str]:
        return [
            "\t".join(
                (
                    d.id,
                    d.environment,
                    d.status,
                    d.name,
                    ",".join(d.list_ids),
                    format_optional_datetime(d.last_seen_ms) or "-",
                )
            )
            for d in await devices.list_devices(session, args.environment)
        ]

    ensure_schema(settings)
    print("id\tenvironment\tstatus\tname\tlists\tlast seen")
    for row in in_transaction(settings, work):
        print(row)


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain.devices import service as devices

    async def work(session: AsyncSession) -> str:
        device = await devices.revoke(session, args.device_id, SystemClock().now_ms())
        return f"revoked {device.id} ({device.name}); it will be told to wipe its data"

    ensure_schema(settings)
    print(in_transaction(settings, work))


def cmd_searches(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain.devices.searches import searches

    async def work(session: AsyncSession) -> list[str]:
        return [
            "\t".join((format_datetime(s.at_ms), s.list_id, s.query_kind, str(s.matches)))
            for s in await searches(session, args.device_id)
        ]

    ensure_schema(settings)
    print("at\tlist\tkind\tmatches")
    for row in in_transaction(settings, work):
        print(row)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    device = sub.add_parser("device", help="desk scanners").add_subparsers(
        dest="device_command", required=True
    )
    enroll = device.add_parser("enroll", help="make a one-time enrollment code for check-in lists")
    enroll.add_argument(
        "--list", action="append", required=True, help="check-in list id (repeat for several)"
    )
    enroll.add_argument("--name", default="Desk scanner")
    enroll.add_argument("--environment", choices=["test", "live"], default="test")
    enroll.add_argument("--no-qr", action="store_true", help="do not print the terminal QR code")
    enroll.set_defaults(func=cmd_enroll)
    listing = device.add_parser("list", help="enrolled devices")
    listing.add_argument("--environment", choices=["test", "live"])
    listing.set_defaults(func=cmd_list)
    revoke = device.add_parser("revoke", help="refuse a device from now on")
    revoke.add_argument("device_id")
    revoke.set_defaults(func=cmd_revoke)
    searched = device.add_parser("searches", help="a device's manual searches (never the query)")
    searched.add_argument("device_id")
    searched.set_defaults(func=cmd_searches)

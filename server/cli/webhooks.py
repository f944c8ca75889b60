"""``tickets webhooks list|redrive``: the outbound webhook outbox, for the operator."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from server.atproto.datetimes import format_datetime
from server.cli.support import ensure_schema, in_transaction, table
from server.domain.common import SystemClock
from server.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from server.domain.outbox.service import MessageSummary

STATES = ("pending", "delivered", "dead")
ERROR_CHARS = 60


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    if args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    from server.domain.outbox import service as outbox

    async def work(session: AsyncSession) -> list[MessageSummary]:
        return await outbox.list_messages(session, state=args.state, app_did=args.app, limit=args.limit)

    ensure_schema(settings)
    rows = [
        (
            m.delivery_id,
            m.app_did,
            m.environment,
            m.event_type,
            m.state,
            str(m.attempts),
            "-" if m.last_status is None else str(m.last_status),
            format_datetime(m.created_ms),
            (m.last_error or "-")[:ERROR_CHARS],
        )
        for m in in_transaction(settings, work)
    ]
    header = (
        "delivery id",
        "app",
        "env",
        "type",
        "state",
        "attempts",
        "last status",
        "created",
        "last error",
    )
    print(table(header, rows))


def cmd_redrive(args: argparse.Namespace, settings: Settings) -> None:
    if bool(args.delivery_ids) == args.all_dead:
        raise SystemExit("name the delivery ids to redrive, or pass --all-dead")
    wanted = set(args.delivery_ids)
    from server.domain.outbox import service as outbox

    async def work(session: AsyncSession) -> int:
        now_ms = SystemClock().now_ms()
        if args.all_dead:
            return await outbox.redrive(session, state="dead", now_ms=now_ms)
        return await outbox.redrive(session, delivery_ids=sorted(wanted), state=None, now_ms=now_ms)

    ensure_schema(settings)
    count = in_transaction(settings, work)
    print(f"redriven: {count} message(s), due now")
    if count < len(wanted):
        raise SystemExit(f"{len(wanted) - count} of the given delivery ids were not found")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``webhooks list`` and ``webhooks redrive`` to the ``tickets`` command line."""
    webhooks = sub.add_parser("webhooks", help="outbound webhooks to the apps").add_subparsers(
        dest="webhooks_command", required=True
    )
    listing = webhooks.add_parser("list", help="outbox messages, newest first")
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--app", metavar="DID", help="only messages to this app")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_list)
    redrive = webhooks.add_parser("redrive", help="send messages again, due now, with a fresh attempt budget")
    redrive.add_argument(
        "delivery_ids", nargs="*", metavar="DELIVERY_ID", help="these messages, whatever their state"
    )
    redrive.add_argument("--all-dead", action="store_true", help="every message that ran out of attempts")
    redrive.set_defaults(func=cmd_redrive)

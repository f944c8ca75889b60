"""``tickets payments list``: the payments the broker reported, for the operator to act on the ones
kept as ``needs_review`` or ``needs_refund``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from server.atproto.datetimes import format_datetime
from server.cli.support import ensure_schema, in_transaction, table
from server.domain.common import ENVIRONMENTS
from server.domain.payments.rules import STATUSES
from server.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from server.db.models import Payment

REASON_CHARS = 80


def cmd_list(args: argparse.Namespace, settings: Settings) -> None:
    if args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    from server.domain.payments.service import list_payments

    async def work(session: AsyncSession) -> list[Payment]:
        return await list_payments(
            session, status=args.status, environment=args.environment, limit=args.limit
        )

    ensure_schema(settings)
    rows = [
        (
            p.payment_id,
            p.environment,
            p.status,
            str(p.amount),
            str(p.refunded_amount),
            p.currency or "-",
            p.hold_id or "-",
            format_datetime(p.updated_ms),
            (p.reason or "-")[:REASON_CHARS],
        )
        for p in in_transaction(settings, work)
    ]
    header = ("payment id", "env", "status", "amount", "refunded", "currency", "hold", "updated", "reason")
    print(table(header, rows))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``payments list`` to the ``tickets`` command line."""
    payments = sub.add_parser("payments", help="payments the broker reported").add_subparsers(
        dest="payments_command", required=True
    )
    listing = payments.add_parser("list", help="payments, most recently changed first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--environment", choices=ENVIRONMENTS)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_list)

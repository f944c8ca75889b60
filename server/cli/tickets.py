"""``tickets tickets resend``: send a ticket's pass again to its buyer's e-mail address."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from server.cli.support import ensure_schema, in_transaction
from server.domain.common import ENVIRONMENTS, SystemClock
from server.errors import DomainError
from server.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def cmd_resend(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain.issuance.service import find_ticket, resend_pass

    async def work(session: AsyncSession) -> None:
        ticket = await find_ticket(session, args.environment, args.ticket, lock=True)
        await resend_pass(session, ticket, SystemClock().now_ms(), actor=None)  # the operator

    ensure_schema(settings)
    try:
        in_transaction(settings, work)
    except DomainError as exc:
        raise SystemExit(f"{exc.code}: {exc}") from None
    where = f"SMTP at {settings.smtp_host}" if settings.smtp_host else f".eml files in {settings.mail_folder}"
    print(f"queued: the server's mail worker sends it ({where})")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tickets resend`` to the ``tickets`` command line."""
    tickets = sub.add_parser("tickets", help="issued tickets").add_subparsers(
        dest="tickets_command", required=True
    )
    resend = tickets.add_parser("resend", help="e-mail a ticket's pass again to its buyer")
    resend.add_argument("--ticket", required=True, help="the ticket's id (ticket_…)")
    resend.add_argument("--environment", choices=ENVIRONMENTS, default="test")
    resend.set_defaults(func=cmd_resend)

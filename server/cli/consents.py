"""``tickets organizer consents|revoke``: the operator's view of organizer consents, beside the
organizer's own XRPC methods (``listOrganizerConsents`` / ``revokeOrganizerConsent``)."""

from __future__ import annotations

import argparse

from server.atproto.datetimes import format_datetime, format_optional_datetime
from server.cli.support import ensure_schema, in_transaction
from server.domain.common import ENVIRONMENTS, SystemClock
from server.settings import Settings


def cmd_consents(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain import consents

    ensure_schema(settings)
    found = in_transaction(
        settings, lambda session: consents.list_consents(session, args.did, args.environment)
    )
    print("app\tstatus\tgranted\trevoked")
    for consent in found:
        status = "active" if consent.active else "revoked"
        revoked = format_optional_datetime(consent.row.revoked_ms) or "-"
        print(f"{consent.app_did}\t{status}\t{format_datetime(consent.row.granted_ms)}\t{revoked}")


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from server.domain import consents

    ensure_schema(settings)
    now = SystemClock().now_ms()
    in_transaction(
        settings, lambda session: consents.revoke(session, args.did, args.app, args.environment, now)
    )
    print(f"revoked the consent of {args.did} for {args.app} in {args.environment}; tickets sold stay valid")


def register(organizer: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``consents`` and ``revoke`` to ``tickets organizer``."""
    listing = organizer.add_parser("consents", help="the apps an organizer consented to")
    listing.add_argument("--did", required=True, help="the organizer's DID")
    listing.add_argument("--environment", default="live", choices=ENVIRONMENTS)
    listing.set_defaults(func=cmd_consents)
    revoke = organizer.add_parser("revoke", help="revoke an app's consent: it changes none of the events")
    revoke.add_argument("--did", required=True, help="the organizer's DID")
    revoke.add_argument("--app", required=True, help="the app's DID")
    revoke.add_argument("--environment", default="live", choices=ENVIRONMENTS)
    revoke.set_defaults(func=cmd_revoke)

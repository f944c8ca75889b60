"""``tickets export checkin-list|scans``: a check-in list's door list or check-in log as a file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from server.cli.support import ensure_schema
from server.domain.common import ENVIRONMENTS
from server.domain.exports.rules import DOOR_LIST_FORMATS, FORMATS
from server.settings import Settings

STDOUT = "-"


def _export(args: argparse.Namespace, settings: Settings, fmt: str) -> None:
    """Write the export to ``--out`` (``-``: standard output, CSV only), else to
    ``<list name>-<date>.<ext>`` in the current folder."""
    if args.out == STDOUT and FORMATS[fmt].extension != "csv":
        raise SystemExit("only CSV can be written to standard output: give --out FILE")
    from server.db.engine import Database
    from server.domain.exports.service import export_list

    async def run() -> tuple[bytes, str, str]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.read() as session:  # reading only: the server's writers never wait
                return await export_list(session, args.environment, args.list, fmt)
        finally:
            await db.dispose()

    ensure_schema(settings)
    body, _, filename = asyncio.run(run())
    if args.out == STDOUT:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    path = Path(args.out) if args.out else Path.cwd() / filename
    path.write_bytes(body)
    print(f"wrote {path} ({len(body):,} bytes)")


def cmd_checkin_list(args: argparse.Namespace, settings: Settings) -> None:
    _export(args, settings, args.format)


def cmd_scans(args: argparse.Namespace, settings: Settings) -> None:
    _export(args, settings, "scans-csv")


def cmd_conflicts(args: argparse.Namespace, settings: Settings) -> None:
    _export(args, settings, "conflicts-csv")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export checkin-list``, ``export scans`` and ``export conflicts`` to ``tickets``."""
    export = sub.add_parser("export", help="files for the organizer").add_subparsers(
        dest="export_command", required=True
    )
    door = export.add_parser("checkin-list", help="the tickets a check-in list admits, with their check-ins")
    scans = export.add_parser("scans", help="the check-in log of a list, one line per scan")
    conflicts = export.add_parser("conflicts", help="the check-in conflicts of a list, one line each")
    conflicts.set_defaults(func=cmd_conflicts)
    door.add_argument("--format", choices=DOOR_LIST_FORMATS, default="csv")
    door.set_defaults(func=cmd_checkin_list)
    scans.set_defaults(func=cmd_scans)
    for command in (door, scans, conflicts):
        command.add_argument("--list", required=True, metavar="ID", help="the check-in list (checklist_…)")
        command.add_argument("--environment", choices=ENVIRONMENTS, default="test")
        command.add_argument(
            "--out", metavar="FILE", help="file to write (default: <list name>-<date>.<ext> here, - = stdout)"
        )

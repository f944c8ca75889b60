"""``tickets-scanner``: the desk scanner's command line.

tickets-scanner [--source SRC] [--list ID] [--gate G]   the door staff's screen
tickets-scanner --headless --source SRC [--list ID] [--gate G] [--direction entry|exit]
tickets-scanner enroll CODE-OR-TEXT [--server URL] [--name NAME] [--pin-file FILE]
  --pin-file FILE (or SCANNER_PIN_FILE, SCANNER_PIN): the desk PIN, chosen at enrollment and asked
  at every start (the screen asks for it when none is given)
tickets-scanner hub [--port N] [--address HOST]   serve other desks while the server is away
tickets-scanner join-hub TEXT | --leave           sync through a hub desk when the server is away
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from scanner_app.core.config import ScannerSettings, get_settings
from scanner_app.core.desk import EnrollmentFailed
from scanner_app.io.vault import PinRequired, WrongPin
from scanner_app.start import open_desk
from sync.checkin import Direction

SCANNER_EXTRA = "pip install 'atmosphere-tickets[scanner]'"
# What scanning needs beyond the base package: the camera and decoders (both ways), the screen.
SCANNING_MODULES = ("cv2", "zxingcpp")
SCREEN_MODULES = ("textual",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickets-scanner",
        description="Desk scanner for door staff",
        epilog=f"Scanning (the screen and --headless) needs the scanner extra: {SCANNER_EXTRA}",
    )
    parser.add_argument("--headless", action="store_true", help="no screen: print one line per decision")
    parser.add_argument("--source", help="camera index, video file or folder of images to scan from")
    parser.add_argument("--list", dest="list_id", help="check-in list id (default: the one chosen before)")
    parser.add_argument("--gate", help="gate name written with each scan")
    parser.add_argument("--direction", choices=[d.value for d in Direction], default=Direction.ENTRY.value)
    pin_help = "a file whose first line is the desk PIN (default SCANNER_PIN_FILE, or SCANNER_PIN)"
    parser.add_argument("--pin-file", help=pin_help)
    sub = parser.add_subparsers(dest="command")
    enroll = sub.add_parser("enroll", help="enroll this desk with a one-time code")
    enroll.add_argument("code", help="the code, or the scanned text tickets-enroll:<code>@<url>")
    enroll.add_argument("--server", default="", help="server URL (not needed with the scanned text)")
    enroll.add_argument("--name", help="this desk's name, shown to the organizer and other desks")
    enroll.add_argument("--pin-file", default=argparse.SUPPRESS, help="seal the credential with this PIN")
    hub = sub.add_parser("hub", help="serve other desks' sync on the local network")
    hub.add_argument("--port", type=int, help="port (default SCANNER_HUB_PORT)")
    hub.add_argument("--address", help="the address other desks use (default: this machine's LAN address)")
    join = sub.add_parser("join-hub", help="sync through a hub desk while the server is unreachable")
    join.add_argument("text", nargs="?", help="the hub's text, tickets-hub:<token>@<url>")
    join.add_argument("--leave", action="store_true", help="stop using a hub")
    return parser


async def enroll(settings: ScannerSettings, code: str, server: str, name: str | None) -> int:
    core = await open_desk(settings)
    try:
        await core.enroll(server, code, name)
    except EnrollmentFailed as failed:
        print(f"enrollment failed: {failed}", file=sys.stderr)
        return 1
    finally:
        await core.close()
    lists = ", ".join(f"{item.name} ({item.id})" for item in core.lists)
    print(f"enrolled as {core.enrollment.device_id if core.enrollment else '?'} for {lists}")
    return 0


async def serve_hub(settings: ScannerSettings, port: int | None, address: str | None) -> int:
    from scanner_app.io.hub import Hub

    core = await open_desk(settings)
    try:
        if not core.enrolled:
            print("this desk is not enrolled: run `tickets-scanner enroll` first", file=sys.stderr)
            return 2
        hub = Hub(core, port)
        print(f"hub ready; on the other desks run: tickets-scanner join-hub {hub.text(address)}", flush=True)
        stop = asyncio.Event()
        await asyncio.gather(hub.serve(stop), core.run_sync_forever(stop))
        return 0
    finally:
        await core.close()


async def join_hub(settings: ScannerSettings, text: str | None) -> int:
    core = await open_desk(settings)
    try:
        await core.join_hub(text)
    except ValueError as bad:
        print(bad, file=sys.stderr)
        return 2
    finally:
        await core.close()
    print("this desk now syncs through the hub when the server is unreachable" if text else "hub left")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if args.pin_file:
        settings = settings.model_copy(update={"pin_file": Path(args.pin_file)})
    try:
        run(args, settings)
    except (PinRequired, WrongPin) as locked:
        where = "--pin-file, SCANNER_PIN_FILE or SCANNER_PIN"
        print(f"{locked}: give the desk PIN with {where}", file=sys.stderr)
        raise SystemExit(2) from None


def require_extra(modules: Sequence[str]) -> None:
    """One line naming the extra to install when scanning's own packages are missing."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        print(f"scanning needs {', '.join(missing)}: {SCANNER_EXTRA}", file=sys.stderr)
        raise SystemExit(2)


def run(args: argparse.Namespace, settings: ScannerSettings) -> None:
    if args.command == "enroll":
        raise SystemExit(asyncio.run(enroll(settings, args.code, args.server, args.name)))
    if args.command == "hub":
        raise SystemExit(asyncio.run(serve_hub(settings, args.port, args.address)))
    if args.command == "join-hub":
        if bool(args.text) == args.leave:
            print("give the hub's text, or --leave", file=sys.stderr)
            raise SystemExit(2)
        raise SystemExit(asyncio.run(join_hub(settings, args.text)))
    require_extra(SCANNING_MODULES if args.headless else SCANNING_MODULES + SCREEN_MODULES)
    if args.headless:
        if not args.source:
            print("--headless needs --source (camera index, video file or folder)", file=sys.stderr)
            raise SystemExit(2)
        from scanner_app import headless

        direction = Direction(args.direction)
        raise SystemExit(asyncio.run(headless.run(settings, args.source, args.list_id, args.gate, direction)))
    from scanner_app.ui.app import ScannerApp

    ScannerApp(settings, camera=args.source, list_id=args.list_id, gate=args.gate).run()

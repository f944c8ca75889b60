"""``python -m server …`` as child processes: the real command line, the real server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from server.settings import Settings
from support.server import SERVICE_DID


async def tickets_command(settings: Settings, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    """Run ``tickets …`` against the database, data folder and DID documents of ``settings``;
    answers its exit code, output and errors."""
    env = tickets_env(
        database_url=settings.resolved_database_url,
        data_dir=settings.data_dir,
        did_docs=settings.did_docs,
        service_did=settings.service_did,
        plc_url=settings.plc_url,
        pds_allow_http="true",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *argv,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def run_tickets(env: dict[str, str], *argv: str) -> None:
    """Run one ``tickets`` command to completion; fail on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "server", *argv, env=env)
    assert await process.wait() == 0, f"tickets {' '.join(argv)} failed"


class ServeProcess:
    """``tickets serve`` on a free loopback port, in its own process group so that every process it
    starts can be signalled at once; ``serve_args`` are added to its command line (``--workers 2``)."""

    def __init__(self, env: dict[str, str], *serve_args: str) -> None:
        self.env = env
        self.serve_args = serve_args
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout_s: float = 30.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "server", "serve", "--port", str(self.port), "--log-level", "warning"),
            *self.serve_args,
            env=self.env,
            start_new_session=True,
        )
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(int(timeout_s / 0.05)):
                try:
                    if (await http.get(f"{self.url}/xrpc/_health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.process.returncode is not None:
                    break
                await asyncio.sleep(0.05)
        await self.stop(signal.SIGKILL)
        raise RuntimeError("tickets serve did not start")

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal the whole process group and wait for the server to exit."""
        if self.process is None or self.process.returncode is not None:
            return
        os.killpg(self.process.pid, sig)
        await asyncio.wait_for(self.process.wait(), 30)


def tickets_env(**values: object) -> dict[str, str]:
    """This environment plus ``TICKETS_<NAME>`` for each of ``values``: rate limits off and outbound
    requests allowed to reach loopback (the tests' receivers listen there) unless ``values`` says
    otherwise."""
    values = {"rate_limits_enabled": False, "outbound_allow_private": "true", **values}
    return {**os.environ, **{f"TICKETS_{name.upper()}": str(value) for name, value in values.items()}}


def server_env(database_url: str, data_dir: Path, **values: object) -> dict[str, str]:
    """``tickets_env`` for a server process on its own: the tests' service DID, and a PLC directory
    at a port nothing listens on, so no DID resolves through it; plus ``values``."""
    return tickets_env(
        database_url=database_url,
        data_dir=data_dir,
        service_did=SERVICE_DID,
        plc_url="http://127.0.0.1:9",
        **values,
    )

"""The package as an operator installs it: the wheel alone in a fresh virtualenv, away from the
checkout, migrates its database, serves, answers a signed XRPC call, and names the scanner extra."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.demo import DEMO_APP_DID, demo_key

ROOT = Path(__file__).resolve().parents[2]
# What the checkout has that a build never reads.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", "test-artifacts", "data", ".*_cache"
)

# Alone on the machine: building the wheel and installing it with its dependencies runs many
# processes (and the installed virtualenv is built once, for the module).
pytestmark = [pytest.mark.slow, pytest.mark.serial]


def attempt(
    *argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 540
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end, its output and errors kept, whatever its exit code."""
    return subprocess.run(
        [str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def run(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = attempt(*argv, env=env, cwd=cwd)
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding the built wheel and its dependencies, nothing of the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    env = operator_env(work)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", source, env=env)
    (wheel,) = (work / "dist").glob("atmosphere_tickets-*.whl")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv, env=env)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, env=env, cwd=work)
    return venv / "bin"


def operator_env(folder: Path) -> dict[str, str]:
    """A shell without the checkout on its path, and a data folder of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETS_", "SCANNER_", "PYTHON"))}
    env["TICKETS_DATA_DIR"] = str(folder / "data")
    env["SCANNER_DATA_DIR"] = str(folder / "desk")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_installed_wheel_serves_and_answers_a_signed_call(installed: Path, tmp_path: Path) -> None:
    env = operator_env(tmp_path)
    # The demo app's key and DID document, the way `tickets call` signs with them.
    did_docs = tmp_path / "did-docs"
    did_docs.mkdir()
    key = demo_key(tmp_path / "data")
    (did_docs / "app.json").write_text(json.dumps(key.did_document(DEMO_APP_DID)))
    env["TICKETS_DID_DOCS"] = str(did_docs)

    assert "database at" in run(installed / "tickets", "db", "upgrade", env=env, cwd=tmp_path)
    run(installed / "tickets", "app", "add", "--did", DEMO_APP_DID, env=env, cwd=tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [installed / "tickets", "serve", "--port", str(port), "--log-level", "warning"], env=env, cwd=tmp_path
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            assert server.poll() is None, "tickets serve exited"
            try:
                health = httpx.get(f"{url}/xrpc/_health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert health.status_code == 200
        # A signed call (`tickets call` signs as the app): its JWT verified, its lexicon read from
        # the installed package, the database asked. Unsigned, the same call is refused.
        method, params = "getTicketAvailability", {"eventId": "event_none"}
        call = attempt(
            installed / "tickets",
            "call",
            method,
            json.dumps(params),
            "--url",
            url,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert json.loads(call.stdout)["error"] == "EventNotFound", call.stderr
        unsigned = httpx.get(f"{url}/xrpc/tickets.atmosphere.{method}", params=params, timeout=5)
        assert unsigned.status_code == 401
        nsid = "tickets.atmosphere.createTicketHold"
        lexicon = httpx.get(f"{url}/.well-known/atproto-lexicon/{nsid}", timeout=5)
        assert lexicon.status_code == 200
        assert lexicon.json()["id"] == nsid
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_scanner_without_its_extra_names_the_extra(installed: Path, tmp_path: Path) -> None:
    env = operator_env(tmp_path)
    extra = "pip install 'atmosphere-tickets[scanner]'"
    assert extra in " ".join(run(installed / "tickets-scanner", "--help", env=env, cwd=tmp_path).split())
    scanning = attempt(
        installed / "tickets-scanner", "--headless", "--source", tmp_path, env=env, cwd=tmp_path, timeout=60
    )
    assert scanning.returncode == 2
    assert extra in scanning.stderr
    assert "Traceback" not in scanning.stderr
    assert len(scanning.stderr.strip().splitlines()) == 1

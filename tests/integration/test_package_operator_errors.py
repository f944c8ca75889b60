"""Deployment mistakes end a ``tickets`` command with one line on stderr and exit code 2, never a
traceback; the URLs operators write (``postgresql://``, ``postgres://``, ``sqlite://``) just work."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.engine import make_url
from uvicorn.supervisors.multiprocess import SIGNALS as SUPERVISOR_SIGNALS

from server import http_server
from server.cli.main import default_public_url
from server.operator_errors import OperatorError, explain
from server.settings import Settings, get_settings


def tickets(folder: Path, *argv: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "TICKETS_DATA_DIR": str(folder / "data")}
    env |= {f"TICKETS_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "server", *argv],
        env=env | {"PYTHONPATH": ":".join(sys.path)},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's one line of error, after checking that it is the only thing it said."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_an_unreachable_postgresql_is_named_by_host_and_port(tmp_path: Path) -> None:
    port = closed_port()
    line = one_line(
        tickets(tmp_path, "db", "upgrade", database_url=f"postgresql://ops:s3cret@127.0.0.1:{port}/tickets")
    )
    assert f"cannot reach the PostgreSQL server at 127.0.0.1:{port}" in line
    assert "s3cret" not in line


def test_an_unknown_postgresql_host_is_named(tmp_path: Path) -> None:
    line = one_line(tickets(tmp_path, "app", "list", database_url="postgres://db.invalid/tickets"))
    assert "db.invalid:5432" in line


@pytest.mark.postgres
def test_a_missing_database_is_named_with_how_to_create_it(tmp_path: Path, pg_database: str) -> None:
    missing = make_url(pg_database).set(drivername="postgresql", database="tickets_package_absent")
    line = one_line(tickets(tmp_path, "db", "upgrade", database_url=missing.render_as_string(False)))
    assert '"tickets_package_absent" does not exist' in line
    assert "createdb tickets_package_absent" in line


@pytest.mark.postgres
def test_a_driverless_postgresql_url_uses_the_async_driver(tmp_path: Path, pg_database: str) -> None:
    for scheme in ("postgresql", "postgres"):
        url = make_url(pg_database).set(drivername=scheme).render_as_string(False)
        done = tickets(tmp_path, "db", "upgrade", database_url=url)
        assert done.returncode == 0, done.stderr
        assert "database at" in done.stdout


def test_a_driverless_sqlite_url_uses_the_async_driver(tmp_path: Path) -> None:
    done = tickets(tmp_path, "db", "upgrade", database_url=f"sqlite:///{tmp_path / 'plain.sqlite3'}")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plain.sqlite3").stat().st_size > 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://db/tickets", "asks for the driver 'psycopg': the service uses asyncpg"),
        ("sqlite+pysqlite:///x.sqlite3", "asks for the driver 'pysqlite': the service uses aiosqlite"),
        ("mysql://db/tickets", "names the engine 'mysql'"),
        ("not a url", "is not a database URL"),
    ],
)
def test_a_url_the_service_cannot_use_is_refused(tmp_path: Path, url: str, expected: str) -> None:
    line = one_line(tickets(tmp_path, "app", "list", database_url=url))
    assert "TICKETS_DATABASE_URL" in line
    assert expected in line


def test_an_unwritable_sqlite_path_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_line(tickets(tmp_path, "db", "upgrade", database_url=f"sqlite:///{blocker}/tickets.sqlite3"))
    assert f"cannot open the SQLite database at {blocker}/tickets.sqlite3" in line
    assert "TICKETS_DATA_DIR" in line


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_a_port_out_of_range_is_refused(tmp_path: Path, port: str) -> None:
    line = one_line(tickets(tmp_path, "serve", "--port", port))
    assert f"--port {port} is not a port number" in line


def test_a_busy_port_is_named_with_how_to_choose_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (["serve"], ["demo", "--headless"]):
            line = one_line(tickets(tmp_path, *command, "--port", str(port)))
            assert f"port {port} on 127.0.0.1 is already in use" in line
            assert "--port N" in line
            assert "make demo PORT=N" in line


def test_several_workers_on_sqlite_are_refused_with_the_reason(tmp_path: Path) -> None:
    line = one_line(tickets(tmp_path, "serve", "--port", str(closed_port()), "--workers", "2"))
    assert "--workers 2 needs PostgreSQL" in line


def test_a_setting_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    line = one_line(tickets(tmp_path, "app", "list", hold_ttl_seconds="a quarter hour"))
    assert "TICKETS_HOLD_TTL_SECONDS is not valid" in line


@pytest.fixture
def public_url_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """An environment without ``TICKETS_PUBLIC_URL``; the process settings forgotten afterwards."""
    monkeypatch.setenv("TICKETS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TICKETS_PUBLIC_URL", raising=False)
    yield monkeypatch
    get_settings.cache_clear()


def test_links_default_to_where_the_server_listens(public_url_env: pytest.MonkeyPatch) -> None:
    assert default_public_url("127.0.0.1", 9123).public_url == "http://127.0.0.1:9123"
    public_url_env.delenv("TICKETS_PUBLIC_URL")
    assert default_public_url("::1", 9124).public_url == "http://[::1]:9124"


def test_links_of_a_server_on_every_address_name_the_machine_with_a_warning(
    public_url_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert default_public_url("0.0.0.0", 9125).public_url == f"http://{socket.gethostname()}:9125"
    warning = capsys.readouterr().err
    assert warning.startswith("warning: listening on every address")
    assert "TICKETS_PUBLIC_URL" in warning


def test_a_configured_public_url_wins(public_url_env: pytest.MonkeyPatch) -> None:
    public_url_env.setenv("TICKETS_PUBLIC_URL", "https://tickets.example.org")
    assert default_public_url("0.0.0.0", 9126).public_url == "https://tickets.example.org"
    assert Settings().public_url == "https://tickets.example.org"


def test_other_failures_are_not_taken_for_database_mistakes() -> None:
    """A file the command writes, or a PDS or receiver that refuses, is no database mistake: those
    keep their own handling (a bug stays a traceback)."""
    other_file = FileNotFoundError(2, "No such file or directory", "/srv/exports/list.csv")
    assert explain(other_file, "sqlite+aiosqlite:////var/lib/tickets/tickets.sqlite3") is None
    refused = ConnectionRefusedError(111, "Connection refused")
    assert explain(refused, "postgresql+asyncpg://db.internal/tickets") is None


def test_a_server_that_is_still_starting_holds_its_port() -> None:
    """The port is listened on as soon as it is bound: a second server started meanwhile is told
    the port is taken instead of sharing it, whether either has several processes (whose sockets
    share the port among themselves) or one."""
    for workers, second_workers in ((1, 1), (2, 2), (1, 2), (2, 1)):
        port = closed_port()
        first = http_server.listen("127.0.0.1", port, workers)
        try:
            with pytest.raises(OperatorError, match=f"port {port} on 127.0.0.1 is already in use"):
                http_server.listen("127.0.0.1", port, second_workers)
        finally:
            for sock in first:
                sock.close()


@pytest.mark.parametrize("spreads", [True, False], ids=["linux", "elsewhere"])
def test_several_workers_listen_on_a_socket_each_where_the_kernel_spreads_connections(
    monkeypatch: pytest.MonkeyPatch, spreads: bool
) -> None:
    """On Linux each worker gets a socket of its own on the port (``SO_REUSEPORT``), among which
    the kernel spreads connections; elsewhere (BSD and macOS do not spread them) the workers share
    one, as uvicorn's do."""
    monkeypatch.setattr(http_server, "SPREADS_CONNECTIONS", spreads)
    sockets = http_server.listen("127.0.0.1", closed_port(), 2)
    try:
        reuse = [sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in sockets]
        assert reuse == ([1, 1] if spreads else [0])
        assert len({sock.getsockname() for sock in sockets}) == 1
    finally:
        for sock in sockets:
            sock.close()


def test_with_a_socket_per_worker_their_number_is_fixed(caplog: pytest.LogCaptureFixture) -> None:
    """``SIGTTOU`` would stop the last worker and leave its socket taking connections nobody
    accepts, ``SIGTTIN`` start one without a socket of its own: both are ignored, with a warning."""
    saved = {sig: signal.getsignal(sig) for sig in SUPERVISOR_SIGNALS}
    sockets = http_server.listen("127.0.0.1", closed_port(), 2)
    try:
        config = uvicorn.Config("server.app:create_app_from_env", factory=True, workers=2)
        supervisor = http_server.SpreadMultiprocess(config, sockets=sockets)
        supervisor.handle_ttou()
        supervisor.handle_ttin()
        assert supervisor.processes_num == 2 and supervisor.processes == []
        assert [r.message.split(":")[0] for r in caplog.records] == ["SIGTTOU ignored", "SIGTTIN ignored"]
    finally:
        for sock in sockets:
            sock.close()
        for sig, handler in saved.items():
            signal.signal(sig, handler)

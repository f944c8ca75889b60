"""Shared fixtures: every database-backed test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from support.browser import Chromium
from support.catalog import ORGANIZER
from support.databases import (
    create_pg_database,
    drop_pg_database,
    empty_pg,
    pg_reachable,
    sqlite_copy,
    sqlite_template,
)
from support.pds import ORGANIZER as PDS_ORGANIZER
from support.pds import ORGANIZER_HANDLE, ORGANIZER_PASSWORD, LocalPds
from support.server import AppClient, Identity, LiveServer, make_settings, register

from server.auth.signing import SigningKey
from server.db.engine import Database
from server.domain.common import Clock
from server.settings import Settings

APP_DID = "did:web:app.example"

# Every property test names its own example count, as many as its property needs. The "ci" profile
# (CI=true) adds what a build wants besides: no example database written into the checkout, and the
# blob that reproduces a failure printed with it.
settings.register_profile("ci", database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def own_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test process (a pytest-xdist worker, or the serial pass) has default data folders
    (``$XDG_DATA_HOME``) of its own, apart from the other workers' and from the user's; like
    ``tmp_path`` (per worker) and ``pg_database`` (one database per process)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        yield


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the run (for each worker of a parallel run). In CI an
    unreachable server fails the run."""
    problem = asyncio.run(pg_reachable())
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


@pytest.fixture(scope="session")
def sqlite_template_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template_file: Path) -> str:
    if request.param == "sqlite":
        return sqlite_copy(sqlite_template_file, tmp_path)
    url: str = request.getfixturevalue("pg_database")
    asyncio.run(empty_pg(url))
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The service's database on ``database_url``, for tests that call the domain directly."""
    database = Database(database_url)
    yield database
    await database.dispose()


@dataclass
class Harness:
    settings: Settings
    server: LiveServer
    app: AppClient
    folder: Path
    identities: dict[str, Identity] = field(default_factory=dict)

    def identity(self, did: str, alg: str = "ES256K") -> Identity:
        """The DID's identity, its document published to the server the first time it is asked for."""
        assert self.settings.did_docs is not None
        if did not in self.identities:
            self.identities[did] = Identity.create(did, self.settings.did_docs, alg)
        return self.identities[did]

    async def client(
        self, did: str, environment: str = "test", *, registered: bool = True, acts_for: Sequence[str] = ()
    ) -> AppClient:
        """Another app. ``acts_for``: organizers who trust it with their events (their first
        catalog call through it carries their assertion)."""
        identity = self.identity(did)
        if registered:
            await register(self.settings.resolved_database_url, did, environment)
        organizers = {organizer: self.identity(organizer) for organizer in acts_for}
        return AppClient(self.server.url, identity, environment, acts_for=organizers)

    def start_pds(self) -> LocalPds:
        """A PDS stand-in with the organizer's account, its DID document (with its signing key) in
        the server's folder; the harness app acts for that organizer too."""
        assert self.settings.did_docs is not None
        server = LocalPds(self.settings.did_docs).start()
        key = SigningKey.generate("ES256K")
        server.create_account(PDS_ORGANIZER, ORGANIZER_HANDLE, ORGANIZER_PASSWORD, key=key)
        self.app.acts_for[PDS_ORGANIZER] = Identity(PDS_ORGANIZER, key)
        return server


async def start_harness(database_url: str, folder: Path, **overrides: Any) -> Harness:
    """A server on ``database_url`` with an app registered to call it. ``overrides`` are settings,
    but for ``clock``: the time the server reads (a ``MovedClock``; the system's by default)."""
    clock: Clock | None = overrides.pop("clock", None)
    settings = make_settings(database_url, folder, **overrides)
    assert settings.did_docs is not None
    identity = Identity.create(APP_DID, settings.did_docs)
    await register(database_url, APP_DID)
    server = LiveServer(settings, clock)
    await asyncio.to_thread(server.start)
    harness = Harness(settings, server, AppClient(server.url, identity), folder, {APP_DID: identity})
    harness.app.acts_for[ORGANIZER] = harness.identity(ORGANIZER)  # the catalog builders' organizer
    return harness


@contextlib.asynccontextmanager
async def running_harness(database_url: str, folder: Path, **overrides: Any) -> AsyncIterator[Harness]:
    """A harness with its own settings, stopped on the way out."""
    h = await start_harness(database_url, folder, **overrides)
    try:
        yield h
    finally:
        await h.app.aclose()
        await asyncio.to_thread(h.server.stop)


def lapsing_harness(
    database_url: str, folder: Path, clock: Clock, sweep_interval_seconds: float = 3600
) -> contextlib.AbstractAsyncContextManager[Harness]:
    """A running harness on ``clock`` whose holds lapse after 60 s; the default sweep never comes."""
    return running_harness(
        database_url, folder, clock=clock, hold_ttl_seconds=60, sweep_interval_seconds=sweep_interval_seconds
    )


@pytest.fixture
async def harness(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(database_url, tmp_path) as h:
        yield h


@pytest.fixture
def postgres_harness(harness: Harness) -> Harness:
    """The harness, on PostgreSQL only: for what only concurrent write transactions can show."""
    if harness.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time: nothing can wait for a row's lock")
    return harness


@pytest.fixture
async def pds(harness: Harness) -> AsyncIterator[LocalPds]:
    """The harness's PDS stand-in (:meth:`Harness.start_pds`)."""
    server = harness.start_pds()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    """The session's headless Chromium (the page tests'); each test opens its own context."""
    browser = Chromium()
    yield browser
    browser.close()

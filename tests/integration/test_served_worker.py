"""A served worker process (``tickets serve``), once started, freezes its startup heap
(``gc.freeze``: a full garbage collection no longer walks the modules, lexicons and app it keeps
until it exits) and watches its event loop from a thread (``server.watchdog``). An app built in a
process that builds many (the tests' own servers) does neither."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.databases import sqlite_copy
from support.server import make_settings

from server.app import create_app, create_app_from_env
from server.settings import Settings, get_settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # this process builds many apps: give the frozen objects back to the collector


@pytest.fixture
def settings_from_env() -> Iterator[None]:
    """The process-wide settings read from this test's environment, and forgotten after it."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@dataclass(frozen=True)
class Started:
    frozen: int  # objects frozen once the app had started
    watched: bool  # a thread watching the event loop while it ran
    watched_after: bool  # the same thread once the app had stopped


def watching() -> bool:
    return any(t.name == "loop-watchdog" and t.is_alive() for t in threading.enumerate())


async def started_and_stopped(app: Any) -> Started:
    """``app`` started and stopped through its ASGI lifespan."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    running = asyncio.create_task(app(scope, inbox.get, sent.put))
    started = await asyncio.wait_for(sent.get(), 60)
    assert started["type"] == "lifespan.startup.complete", started
    frozen, watched = gc.get_freeze_count(), watching()
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await asyncio.wait_for(sent.get(), 60))["type"] == "lifespan.shutdown.complete"
    await asyncio.wait_for(running, 60)
    return Started(frozen, watched, watching())


def settings_for(tmp_path: Path, sqlite_template_file: Path) -> Settings:
    return make_settings(sqlite_copy(sqlite_template_file, tmp_path), tmp_path / "data")


@pytest.mark.usefixtures("unfrozen", "settings_from_env")
async def test_a_served_worker_freezes_its_heap_and_watches_its_loop(
    tmp_path: Path, sqlite_template_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, sqlite_template_file)
    monkeypatch.setenv("TICKETS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TICKETS_DATA_DIR", str(settings.data_dir))
    assert gc.get_freeze_count() == 0 and not watching()
    served = await started_and_stopped(create_app_from_env())
    assert served.frozen > 10_000 and served.watched and not served.watched_after


@pytest.mark.usefixtures("unfrozen")
async def test_an_app_built_by_a_test_leaves_the_heap_and_the_loop_alone(
    tmp_path: Path, sqlite_template_file: Path
) -> None:
    built = await started_and_stopped(create_app(settings_for(tmp_path, sqlite_template_file)))
    assert built == Started(frozen=0, watched=False, watched_after=False)

"""A served worker process freezes its startup heap once it has started (``gc.freeze``), so that a
full garbage collection no longer walks the modules, lexicons and app it will keep until it exits;
an app built in a process that builds many (the tests' own servers) leaves the heap alone."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.databases import sqlite_copy
from support.server import make_settings

from server.app import create_app, create_app_from_env
from server.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # this process builds many apps: give the frozen objects back to the collector


async def frozen_once_started(app: Any) -> int:
    """The objects frozen when ``app`` has started (its ASGI lifespan), before it stops."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    running = asyncio.create_task(app(scope, inbox.get, sent.put))
    started = await asyncio.wait_for(sent.get(), 60)
    assert started["type"] == "lifespan.startup.complete", started
    frozen = gc.get_freeze_count()
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await asyncio.wait_for(sent.get(), 60))["type"] == "lifespan.shutdown.complete"
    await asyncio.wait_for(running, 60)
    return frozen


def settings_for(tmp_path: Path, sqlite_template_file: Path) -> Settings:
    return make_settings(sqlite_copy(sqlite_template_file, tmp_path), tmp_path / "data")


@pytest.mark.usefixtures("unfrozen")
async def test_a_served_worker_freezes_its_heap_once_started(
    tmp_path: Path, sqlite_template_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, sqlite_template_file)
    monkeypatch.setenv("TICKETS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TICKETS_DATA_DIR", str(settings.data_dir))
    assert gc.get_freeze_count() == 0
    assert await frozen_once_started(create_app_from_env()) > 10_000


@pytest.mark.usefixtures("unfrozen")
async def test_an_app_built_by_a_test_leaves_the_heap_alone(
    tmp_path: Path, sqlite_template_file: Path
) -> None:
    assert await frozen_once_started(create_app(settings_for(tmp_path, sqlite_template_file))) == 0

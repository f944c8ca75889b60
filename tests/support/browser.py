"""A real headless browser for page tests: Debian's Chromium driven by Playwright (the browser is
the system's, never downloaded), started once for the test session. Each test may keep screenshots
as artifacts in ``$TICKETS_TEST_ARTIFACTS`` (default: ``test-artifacts/`` in the working folder)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

Args = ParamSpec("Args")
Result = TypeVar("Result")

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Chromium on this machine: scripts/bootstrap installs Debian's chromium")


class Chromium:
    """One headless Chromium and the one thread that drives it: Playwright's sync API works only in
    the thread that started it, so every use goes through :meth:`run`."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._thread.submit(self._launch).result()

    def _launch(self) -> None:
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )

    async def run(
        self, work: Callable[Concatenate[Browser, Args], Result], *args: Args.args, **kwargs: Args.kwargs
    ) -> Result:
        """``work(browser, *args, **kwargs)`` in the browser's thread."""
        assert self._browser is not None
        return await asyncio.wrap_future(self._thread.submit(work, self._browser, *args, **kwargs))

    def close(self) -> None:
        self._thread.submit(self._stop).result()
        self._thread.shutdown()

    def _stop(self) -> None:
        assert self._browser is not None and self._playwright is not None
        self._browser.close()
        self._playwright.stop()


@contextmanager
def new_page(browser: Browser, viewport: ViewportSize | None = None, **options: Any) -> Iterator[Page]:
    """A page in a browser context of its own (no cookies or storage shared with another test),
    closed on the way out."""
    context = browser.new_context(viewport=viewport, **options)
    try:
        yield context.new_page()
    finally:
        context.close()


def artifacts_folder() -> Path:
    folder = Path(os.environ.get("TICKETS_TEST_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def keep_screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot kept as a test artifact; answers its path."""
    path = artifacts_folder() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

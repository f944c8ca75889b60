"""A real headless browser for page tests: Debian's Chromium driven by Playwright (the browser is
the system's, never downloaded). Each test may keep screenshots as artifacts in
``$TICKETS_TEST_ARTIFACTS`` (default: ``test-artifacts/`` in the working folder)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Chromium on this machine: scripts/bootstrap installs Debian's chromium")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def artifacts_folder() -> Path:
    folder = Path(os.environ.get("TICKETS_TEST_ARTIFACTS", "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def keep_screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot kept as a test artifact; answers its path."""
    path = artifacts_folder() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

"""A headless Chromium page on the launched app, for the browser tests.

Uses Debian's /usr/bin/chromium through Python playwright (never ``playwright install``: browsers
cannot be downloaded here). ``require_browser`` skips the test, with the reason, if either is missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> ModuleType:
    """``playwright.sync_api``, or the test is skipped (no Chromium, or no playwright)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    return pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)"
    )


@contextlib.contextmanager
def browser_page(url: str, *, width: int = 1280, height: int = 1600) -> Iterator[Any]:
    """A page of a fresh headless Chromium at ``width`` x ``height``, opened on ``url``; closed on the way out."""
    sync_api = require_browser()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            page.goto(url)
            yield page
        finally:
            browser.close()

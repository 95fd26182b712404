"""Headless Debian Chromium driven by Playwright, for the tracker tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .edge_helpers import stored

CHROMIUM = "/usr/bin/chromium"
#: A normal desktop Chrome: headless Chromium's own user agent says HeadlessChrome, which
#: Ferrite rightly filters as a bot.
DESKTOP_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/156.0.0.0 Safari/537.36")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # navigator.webdriver stays false, as in a person's browser; the tracker would
    # otherwise (rightly) refuse to send.
    "--disable-blink-features=AutomationControlled",
]


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=[*LAUNCH_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def wait_for_rows(db: Path, predicate: Callable[[list[dict]], bool], timeout: float = 10,
                  ) -> list[dict]:
    """Poll the database until `predicate(rows)` holds; return the rows either way."""
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = stored(db)
        if predicate(rows):
            return rows
        time.sleep(0.1)
    return rows


def names(rows: list[dict]) -> list[str]:
    return [r["name"] for r in rows]

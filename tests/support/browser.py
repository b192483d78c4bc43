"""A real browser for tests: Debian's Chromium driven by Playwright (no Playwright browser download).

`make test` installs the `chromium` package when it is missing. Every page a test opens records the
browser console's errors and warnings and uncaught page errors in `errors`, so a test can assert there
were none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from tests.support.builds import require_built

CHROMIUM = Path(os.environ.get("SEGOPS_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps dialing Google hosts that this closed
# network refuses; --no-sandbox because tests run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts" / "browser"


@dataclass
class BrowserPage:
    """A Playwright page plus every console error or warning and uncaught exception it produced."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    # `make chromium` installs Debian's chromium package (apt-get) when it is missing.
    require_built(CHROMIUM, "chromium")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    # Playwright gives every launch a new empty profile of its own.
    instance = playwright_session.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context
    finally:
        context.close()


def open_page(context: BrowserContext) -> BrowserPage:
    """A new page in `context` whose console errors and warnings (as `warning: <text>`) and page errors
    are collected."""
    page = context.new_page()
    recorded = BrowserPage(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            recorded.errors.append(message.text)
        elif message.type == "warning":
            recorded.errors.append(f"warning: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: recorded.errors.append(str(error)))
    return recorded


@pytest.fixture
def browser_page(browser_context: BrowserContext) -> BrowserPage:
    return open_page(browser_context)

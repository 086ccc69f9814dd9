"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and a real stack.

Chromium is required in CI; elsewhere, without it, these tests skip with a reason.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    async_playwright,
    expect,
)

from tests.support import IN_CI
from tests.web.pages import TodoPage
from tests.web.stack import WebStack, start_stack

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Auto-waiting assertions: generous enough for a busy 2-core machine, bounded all the same.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI and {CHROMIUM} does not exist")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
def web_stack(
    tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]
) -> Iterator[WebStack]:
    """One stack per test module (each module uses fresh usernames)."""
    stack = start_stack(tmp_path_factory.mktemp("web-stack"), jwt_env)
    yield stack
    stack.stop()


PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1000, "height": 720}
OpenPage = Callable[..., Awaitable[TodoPage]]


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """`await open_page(stack)` opens the page in a fresh browser context (its own storage).

    At teardown every context is closed, no page may have thrown an uncaught error, and
    none may have broken the gateway's Content-Security-Policy (inline script or style).
    """
    contexts: list[BrowserContext] = []
    page_errors: list[Error] = []
    csp_violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            csp_violations.append(message.text)

    async def open_one(stack: WebStack, viewport: dict[str, int] | None = None) -> TodoPage:
        context = await browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: page_errors.append(error))
        page.on("console", on_console)
        todo_page = TodoPage(page, stack.url)
        await todo_page.open()
        return todo_page

    yield open_one
    for context in contexts:
        await context.close()
    assert not page_errors, f"uncaught errors in the page: {page_errors}"
    assert not csp_violations, f"the page broke its Content-Security-Policy: {csp_violations}"

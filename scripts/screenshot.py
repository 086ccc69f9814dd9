"""Take the web client's pictures in docs/, against a real, throwaway stack.

    .venv/bin/python scripts/screenshot.py [--scene list|sync|all] [--width 900]

- `list` (docs/screenshot.png): the page with a few todos;
- `sync` (docs/web-client-sync.png): the todo service down, with a new todo and a tick
  waiting to be sent, and an edit that lost to another device's (the conflict panel).

Starts auth_service, todo_ws_service and the gateway on free ports with SQLite files in a
temporary directory, drives Debian's Chromium (CHROMIUM_PATH, default /usr/bin/chromium)
through register, log in and a few todos, and stops everything again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from playwright.async_api import Browser, async_playwright, expect  # noqa: E402

from tests.support import new_jwt_secret  # noqa: E402
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.web.pages import PASSWORD, TodoPage, new_username  # noqa: E402
from tests.web.stack import WebStack, start_stack  # noqa: E402

TODOS = ["Buy oat milk", "Book the dentist", "Water the plants", "Reply to Sam's email"]
SCENE_FILES = {"list": "screenshot.png", "sync": "web-client-sync.png"}


async def new_tab(browser: Browser, stack: WebStack, width: int, height: int) -> TodoPage:
    context = await browser.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=1
    )
    tab = TodoPage(await context.new_page(), stack.url)
    await tab.open()
    return tab


async def take_list(browser: Browser, stack: WebStack, out: Path, width: int) -> None:
    tab = await new_tab(browser, stack, width, 560)
    page = tab.page
    await tab.register("alice")
    await tab.login("alice")
    for title in TODOS:
        await tab.add(title)
    await tab.item(TODOS[1]).get_by_test_id("todo-toggle").check()
    await page.get_by_test_id("summary").filter(has_text="1 of").wait_for()
    await tab.expect_saved()
    await page.get_by_test_id("new-title").fill("Plan the weekend")
    await page.get_by_test_id("new-title").blur()
    await page.screenshot(path=str(out), full_page=False)


async def take_sync(browser: Browser, stack: WebStack, out: Path, width: int) -> None:
    """A conflict (another device saved first), then writes queued with the service down.

    Leaves the todo service stopped."""
    username = new_username("bob")
    tab = await new_tab(browser, stack, width, 640)
    other = await new_tab(browser, stack, width, 640)
    page = tab.page
    await tab.register(username, PASSWORD)
    await tab.login(username)
    for title in TODOS:
        await tab.add(title)
    await other.login(username)

    # This page starts editing; the other device saves its own edit first.
    await tab.item(TODOS[1]).get_by_test_id("todo-edit").click()
    await page.get_by_test_id("todo-edit-input").fill("Book the dentist for Friday")
    await other.item(TODOS[1]).get_by_test_id("todo-edit").click()
    await other.page.get_by_test_id("todo-edit-input").fill("Book the dentist for Tuesday")
    await other.page.get_by_test_id("todo-edit-input").press("Enter")
    await other.expect_saved()
    await expect(tab.titles.nth(1)).to_have_text("Book the dentist for Tuesday")
    await page.get_by_test_id("todo-edit-input").press("Enter")
    await expect(page.locator("[data-conflict]")).to_have_count(1)
    await page.get_by_test_id("error-dismiss").click()

    # The service goes away: a tick and a new todo wait in the queue.
    stack.todo.stop()
    await expect(tab.status).to_have_text("Reconnecting…")
    await tab.item(TODOS[2]).get_by_test_id("todo-toggle").check()
    await page.get_by_test_id("new-title").fill("Plan the weekend")
    await page.get_by_test_id("new-title").press("Enter")
    await expect(tab.pending_count).to_have_text("2 changes not saved yet")
    await page.get_by_test_id("new-title").blur()
    await page.screenshot(path=str(out), full_page=True)


async def take(scenes: dict[str, Path], stack: WebStack, width: int) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if "list" in scenes:
            await take_list(browser, stack, scenes["list"], width)
        if "sync" in scenes:
            await take_sync(browser, stack, scenes["sync"], width)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", choices=["list", "sync", "all"], default="all")
    parser.add_argument("--width", type=int, default=900)
    args = parser.parse_args()
    names = ["list", "sync"] if args.scene == "all" else [args.scene]
    scenes = {name: REPO_ROOT / "docs" / SCENE_FILES[name] for name in names}
    with tempfile.TemporaryDirectory(prefix="todo-screenshot-") as tmp:
        stack = start_stack(Path(tmp), {"JWT_SECRET": new_jwt_secret()})
        try:
            asyncio.run(take(scenes, stack, args.width))
        finally:
            stack.stop()
    for path in scenes.values():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

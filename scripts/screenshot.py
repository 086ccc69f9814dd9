"""Take docs/screenshot.png: the web page with a few todos, against a real, throwaway stack.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--width 900]

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

from playwright.async_api import async_playwright  # noqa: E402

from tests.support import new_jwt_secret  # noqa: E402
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.web.pages import TodoPage  # noqa: E402
from tests.web.stack import WebStack, start_stack  # noqa: E402

TODOS = ["Buy oat milk", "Book the dentist", "Water the plants", "Reply to Sam's email"]


async def take(stack: WebStack, out: Path, width: int, height: int) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(
            viewport={"width": width, "height": height}, device_scale_factor=1
        )
        tab = TodoPage(page, stack.url)
        await tab.open()
        await tab.register("alice")
        await tab.login("alice")
        for title in TODOS:
            await tab.add(title)
        await tab.item(TODOS[1]).get_by_test_id("todo-toggle").check()
        await page.get_by_test_id("summary").filter(has_text="1 of").wait_for()
        await page.get_by_test_id("new-title").fill("Plan the weekend")
        await page.get_by_test_id("new-title").blur()
        await page.screenshot(path=str(out), full_page=False)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshot.png")
    parser.add_argument("--width", type=int, default=900)
    parser.add_argument("--height", type=int, default=560)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="todo-screenshot-") as tmp:
        stack = start_stack(Path(tmp), {"JWT_SECRET": new_jwt_secret()})
        try:
            asyncio.run(take(stack, args.out, args.width, args.height))
        finally:
            stack.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The todo page as the tests see it: actions a user takes, and locators to check."""

from __future__ import annotations

import secrets

from playwright.async_api import Locator, Page, expect


def new_username(prefix: str = "user") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


PASSWORD = "correct horse battery"


class TodoPage:
    """One browser tab on the gateway's `/`."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    async def open(self) -> None:
        await self.page.goto(self.base_url + "/")

    # ---- locators ----

    @property
    def status(self) -> Locator:
        return self.page.get_by_test_id("connection-status")

    @property
    def error(self) -> Locator:
        return self.page.get_by_test_id("error")

    @property
    def titles(self) -> Locator:
        return self.page.get_by_test_id("todo-title")

    @property
    def login_form(self) -> Locator:
        return self.page.get_by_test_id("login-form")

    def item(self, title: str) -> Locator:
        """The list item whose title is exactly `title`."""
        return self.page.get_by_test_id("todo-item").filter(
            has=self.page.get_by_test_id("todo-title").get_by_text(title, exact=True)
        )

    # ---- actions ----

    async def register(self, username: str, password: str = PASSWORD) -> None:
        """Create an account: the page signs in with it at once, and is connected."""
        await self.page.get_by_test_id("register-username").fill(username)
        await self.page.get_by_test_id("register-password").fill(password)
        await self.page.get_by_test_id("register-submit").click()
        await self.expect_connected()
        await expect(self.page.get_by_test_id("current-user")).to_have_text(username)

    async def login(self, username: str, password: str = PASSWORD) -> None:
        """Log in with the form; a no-op check when this tab is signed in as `username`
        already (as it is right after `register`)."""
        todo_view = self.page.get_by_test_id("todo-view")
        current = self.page.get_by_test_id("current-user")
        if await todo_view.is_visible() and await current.text_content() == username:
            await self.expect_connected()
            return
        await self.page.get_by_test_id("login-username").fill(username)
        await self.page.get_by_test_id("login-password").fill(password)
        await self.page.get_by_test_id("login-submit").click()
        await self.expect_connected()

    async def expect_connected(self) -> None:
        await expect(self.page.get_by_test_id("todo-view")).to_be_visible()
        await expect(self.page.get_by_test_id("auth-view")).to_be_hidden()
        await expect(self.status).to_have_attribute("data-state", "open")
        await expect(self.status).to_have_text("Connected")

    @property
    def pending_items(self) -> Locator:
        """Items showing a write the server has not confirmed (`data-pending`)."""
        return self.page.locator('[data-testid="todo-item"][data-pending]')

    @property
    def pending_count(self) -> Locator:
        return self.page.get_by_test_id("pending-count")

    async def expect_saved(self) -> None:
        """Every write of the page is confirmed: no pending item, no pending count."""
        await expect(self.pending_items).to_have_count(0)
        await expect(self.pending_count).to_be_hidden()

    async def add(self, title: str) -> None:
        """Type a title and press Enter; waits until the server has confirmed it."""
        box = self.page.get_by_test_id("new-title")
        await box.fill(title)
        await box.press("Enter")
        await expect(self.item(title)).to_have_count(1)
        await expect(box).to_have_value("")
        await expect(self.item(title)).not_to_have_attribute("data-pending", "create")

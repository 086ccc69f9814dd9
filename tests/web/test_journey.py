"""A user's whole journey through the page, on a phone-sized screen, and errors in words."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import PHONE, OpenPage
from tests.web.direct_socket import DirectSocket
from tests.web.pages import PASSWORD, new_username
from tests.web.stack import WebStack, login_tokens

pytestmark = pytest.mark.browser


async def test_whole_journey_register_login_add_edit_toggle_delete_logout(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(web_stack, viewport=PHONE)
    page = tab.page
    username = new_username("journey")

    await expect(tab.login_form).to_be_visible()
    await expect(tab.status).to_have_text("Signed out")
    await tab.register(username)  # and signed in with it: no retyping the password
    await expect(page.get_by_test_id("current-user")).to_have_text(username)
    await expect(page.get_by_test_id("notice")).to_have_text(
        f"Welcome, {username}! Your account is ready."
    )
    await expect(page.get_by_test_id("empty")).to_be_visible()

    # Add, by keyboard: the focus is in the add box once signed in.
    await expect(page.get_by_test_id("new-title")).to_be_focused()
    await page.keyboard.type("Buy milk")
    await page.keyboard.press("Enter")
    await expect(tab.item("Buy milk")).to_have_count(1)
    await tab.add("Walk the dog")
    await tab.add("Call mum")
    await expect(tab.titles).to_have_text(["Buy milk", "Walk the dog", "Call mum"])

    # Edit inline: Escape cancels, Enter saves.
    await tab.item("Walk the dog").get_by_test_id("todo-edit").click()
    editor = page.get_by_test_id("todo-edit-input")
    await expect(editor).to_be_focused()
    await editor.fill("something else")
    await editor.press("Escape")
    await expect(editor).to_have_count(0)
    await expect(tab.item("Walk the dog").get_by_test_id("todo-edit")).to_be_focused()
    await page.keyboard.press("Enter")  # the focused Edit button, by keyboard
    await editor.fill("Walk the dog twice")
    await editor.press("Enter")
    await expect(editor).to_have_count(0)
    await expect(tab.titles).to_have_text(["Buy milk", "Walk the dog twice", "Call mum"])

    # Toggle done with the keyboard (Space on the focused checkbox).
    toggle = tab.item("Buy milk").get_by_test_id("todo-toggle")
    await toggle.focus()
    await page.keyboard.press("Space")
    await expect(toggle).to_be_checked()
    await expect(tab.item("Buy milk")).to_have_class("todo done")
    await expect(page.get_by_test_id("summary")).to_have_text("1 of 3 done")

    # Delete.
    await tab.item("Call mum").get_by_test_id("todo-delete").click()
    await expect(tab.item("Call mum")).to_have_count(0)
    await expect(tab.titles).to_have_text(["Buy milk", "Walk the dog twice"])

    # The server has exactly what the page shows.
    tokens = login_tokens(web_stack, username, PASSWORD)
    async with DirectSocket(web_stack.gateway.ws_url, tokens["access_token"]) as direct:
        stored = [(t["title"], t["completed"]) for t in direct.first["data"]]
    assert stored == [("Buy milk", True), ("Walk the dog twice", False)]

    # A reload of the tab resumes the session from sessionStorage, without a password.
    await page.reload()
    await tab.expect_connected()
    await expect(tab.titles).to_have_text(["Buy milk", "Walk the dog twice"])
    await expect(tab.item("Buy milk").get_by_test_id("todo-toggle")).to_be_checked()

    # Nothing overflows sideways on a 375px screen.
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0

    # Log out: back to the login form, signed out, and the session is gone from the tab.
    await page.get_by_test_id("logout").click()
    await expect(tab.login_form).to_be_visible()
    await expect(page.get_by_test_id("todo-view")).to_be_hidden()
    await expect(tab.status).to_have_text("Signed out")
    assert await page.evaluate("sessionStorage.length") == 0
    await page.reload()
    await expect(tab.login_form).to_be_visible()
    await expect(tab.status).to_have_text("Signed out")


async def test_server_rejection_is_shown_in_words(web_stack: WebStack, open_page: OpenPage) -> None:
    tab = await open_page(web_stack)
    page = tab.page
    username = new_username("reject")
    await tab.register(username)
    await tab.add("Short and fine")

    # What the server says about a 201-character title, asked directly.
    too_long = "x" * 201
    tokens = login_tokens(web_stack, username, PASSWORD)
    async with DirectSocket(web_stack.gateway.ws_url, tokens["access_token"]) as direct:
        reply = await direct.request({"action": "create_todo", "payload": {"title": too_long}})
    assert reply["type"] == "error" and reply["code"] == "validation_error"

    # The page sends it (no client-side cap) and says what the server said, in plain words.
    box = page.get_by_test_id("new-title")
    await box.fill(too_long)
    await box.press("Enter")
    await expect(tab.error).to_be_visible()
    await expect(tab.error).to_have_attribute("role", "alert")
    await expect(page.get_by_test_id("error-text")).to_have_text(
        "The title is too long: at most 200 characters."
    )
    await expect(tab.error).not_to_contain_text(reply["message"])
    await expect(box).to_have_value(too_long)  # kept, so the user can fix it
    await expect(tab.titles).to_have_text(["Short and fine"])

    # A title of only spaces, through the inline editor: rejected, and the editor stays open.
    await page.get_by_test_id("error-dismiss").click()
    await expect(tab.error).to_be_hidden()
    await tab.item("Short and fine").get_by_test_id("todo-edit").click()
    editor = page.get_by_test_id("todo-edit-input")
    await editor.fill("   ")
    await editor.press("Enter")
    await expect(page.get_by_test_id("error-text")).to_have_text("The title cannot be empty.")
    await expect(editor).to_be_editable()
    await editor.press("Escape")
    await expect(tab.titles).to_have_text(["Short and fine"])


async def test_wrong_password_is_shown_in_words(web_stack: WebStack, open_page: OpenPage) -> None:
    tab = await open_page(web_stack)
    username = new_username("wrongpw")
    await tab.register(username)
    await tab.page.get_by_test_id("logout").click()
    await tab.page.get_by_test_id("login-username").fill(username)
    await tab.page.get_by_test_id("login-password").fill("not the password")
    await tab.page.get_by_test_id("login-submit").click()
    await expect(tab.page.get_by_test_id("error-text")).to_have_text("Wrong username or password.")
    await expect(tab.login_form).to_be_visible()
    await expect(tab.status).to_have_text("Signed out")

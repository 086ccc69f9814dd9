"""Live updates between tabs, and surviving a restart of the todo service."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.support import ServiceProcess
from tests.web.conftest import OpenPage
from tests.web.direct_socket import DirectSocket
from tests.web.pages import PASSWORD, new_username
from tests.web.stack import WebStack, login_tokens

pytestmark = pytest.mark.browser

# Reconnecting waits out a randomized backoff (at most 20 s), so allow for a long one.
RECONNECT_TIMEOUT_MS = 30_000


async def test_two_contexts_of_one_user_see_each_others_changes_live(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    username = new_username("twotabs")
    laptop = await open_page(web_stack)
    await laptop.register(username)
    phone = await open_page(web_stack)  # another browser context: its own storage, own login
    await phone.login(username)

    await laptop.add("Written on the laptop")
    await expect(phone.titles).to_have_text(["Written on the laptop"])

    await phone.add("Written on the phone")
    await expect(laptop.titles).to_have_text(["Written on the laptop", "Written on the phone"])

    await phone.item("Written on the laptop").get_by_test_id("todo-toggle").check()
    await expect(laptop.item("Written on the laptop").get_by_test_id("todo-toggle")).to_be_checked()

    await laptop.item("Written on the phone").get_by_test_id("todo-edit").click()
    editor = laptop.page.get_by_test_id("todo-edit-input")
    await editor.fill("Edited on the laptop")
    await editor.press("Enter")
    await expect(phone.titles).to_have_text(["Written on the laptop", "Edited on the laptop"])

    await phone.item("Written on the laptop").get_by_test_id("todo-delete").click()
    await expect(laptop.titles).to_have_text(["Edited on the laptop"])
    await expect(phone.titles).to_have_text(["Edited on the laptop"])


async def test_page_reconnects_after_todo_service_restart_and_shows_current_list(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    username = new_username("restart")
    tab = await open_page(web_stack)
    await tab.register(username)
    await tab.add("Before the restart")
    await tab.add("Deleted while away")

    web_stack.todo.stop()
    await expect(tab.status).to_have_text("Reconnecting…")
    await expect(tab.status).to_have_attribute("data-state", "reconnecting")
    await expect(tab.titles).to_have_count(2)  # the last known list stays on screen

    # While the page's service is down, another client changes the list through a second
    # instance on the same database (one the gateway does not know about): the page can
    # only learn of this from the first message (a todos_delta) it gets when it reconnects.
    tokens = login_tokens(web_stack, username, PASSWORD)
    away = ServiceProcess(
        "todo_ws_service", web_stack.todo_env(), web_stack.tmp_dir, name="todo-away"
    )
    with away:
        async with DirectSocket(away.ws_url, tokens["access_token"]) as direct:
            doomed = next(t for t in direct.first["data"] if t["title"] == "Deleted while away")
            reply = await direct.request({"action": "delete_todo", "todo_id": doomed["id"]})
            assert reply["type"] == "todo_deleted"
            reply = await direct.request(
                {"action": "create_todo", "payload": {"title": "Added while away"}}
            )
            assert reply["type"] == "todo_created"

    web_stack.todo.start()  # the same port, so the gateway's upstream is back
    # Right after the restart, one more change by a client connected through the gateway.
    async with DirectSocket(web_stack.gateway.ws_url, tokens["access_token"]) as direct:
        reply = await direct.request(
            {"action": "create_todo", "payload": {"title": "Added after the restart"}}
        )
        assert reply["type"] == "todo_created"

    await expect(tab.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    await expect(tab.titles).to_have_text(
        ["Before the restart", "Added while away", "Added after the restart"]
    )
    await expect(tab.login_form).to_be_hidden()

    # And the page works as before on the new connection.
    await tab.add("After the reconnect")
    await expect(tab.error).to_be_hidden()

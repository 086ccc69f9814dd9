"""Protocol 1.1 in the page, against the real services: writes that survive outages and
reloads exactly once, a lost reply, conflicts between two pages, and resuming with a delta.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.async_api import expect

from tests.support import ServiceProcess
from tests.web.conftest import PHONE, OpenPage
from tests.web.direct_socket import DirectSocket
from tests.web.pages import PASSWORD, TodoPage, new_username
from tests.web.sockets import SocketWatch
from tests.web.stack import WebStack, login_tokens

pytestmark = pytest.mark.browser

# Reconnecting waits out a randomized backoff (at most 20 s), so allow for a long one.
RECONNECT_TIMEOUT_MS = 30_000


async def server_todos(stack: WebStack, username: str) -> list[dict[str, Any]]:
    """The user's todos as the server holds them, asked on a socket of the test's own."""
    tokens = login_tokens(stack, username, PASSWORD)
    async with DirectSocket(stack.gateway.ws_url, tokens["access_token"]) as direct:
        return list(direct.first["data"])


async def logged_in(
    open_page: OpenPage, stack: WebStack, prefix: str, **kw: Any
) -> tuple[TodoPage, str, SocketWatch]:
    """A page of a new user, logged in, and the watch on its sockets from the first."""
    tab = await open_page(stack, **kw)
    watch = SocketWatch(tab.page)
    username = new_username(prefix)
    await tab.register(username)
    return tab, username, watch


@contextmanager
def frozen(service: ServiceProcess) -> Iterator[None]:
    """SIGSTOP the service's whole process group: its sockets stay open and the kernel keeps
    taking their frames, but nothing is read, written or answered until SIGCONT."""
    assert service.proc is not None
    os.killpg(service.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(service.proc.pid, signal.SIGCONT)


async def type_new(tab: TodoPage, title: str) -> None:
    box = tab.page.get_by_test_id("new-title")
    await box.fill(title)
    await box.press("Enter")
    await expect(tab.item(title)).to_have_count(1)


async def test_writes_made_while_the_service_is_down_are_delivered_once_after_a_reload(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    tab, username, watch = await logged_in(open_page, web_stack, "offline", viewport=PHONE)
    await tab.add("Saved before")

    web_stack.todo.stop()
    await expect(tab.status).to_have_text("Reconnecting…")

    # Written while the service is down: shown at once, marked as not sent.
    await type_new(tab, "Written offline")
    await type_new(tab, "Also offline")
    await tab.item("Saved before").get_by_test_id("todo-toggle").check()
    await expect(tab.item("Written offline")).to_have_attribute("data-pending", "create")
    await expect(tab.item("Written offline").get_by_test_id("todo-badge")).to_have_text(
        "Not sent yet"
    )
    await expect(tab.item("Saved before")).to_have_attribute("data-pending", "update")
    await expect(tab.item("Saved before").get_by_test_id("todo-toggle")).to_be_checked()
    await expect(tab.pending_count).to_have_text("3 changes not saved yet")

    # A reload while the service is still down: the writes come back from sessionStorage.
    await tab.page.reload()
    await expect(tab.page.get_by_test_id("todo-view")).to_be_visible()
    await expect(tab.pending_count).to_have_text("3 changes not saved yet")
    await expect(tab.item("Written offline")).to_have_attribute("data-pending", "create")
    await expect(tab.item("Also offline")).to_have_attribute("data-pending", "create")

    web_stack.todo.start()
    await expect(tab.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    await tab.expect_saved()
    await expect(tab.titles).to_have_text(["Saved before", "Written offline", "Also offline"])
    await expect(tab.item("Saved before").get_by_test_id("todo-toggle")).to_be_checked()

    stored = await server_todos(web_stack, username)
    assert [(t["title"], t["completed"]) for t in stored] == [
        ("Saved before", True),
        ("Written offline", False),
        ("Also offline", False),
    ]
    # Every write carried an idempotency key; the three made offline went out once each.
    writes = [*watch.sent("create_todo"), *watch.sent("update_todo")]
    assert all(w.get("idempotency_key") for w in writes)
    offline = [w for w in writes if w.get("payload", {}).get("title") != "Saved before"]
    assert len({w["idempotency_key"] for w in offline}) == len(offline) == 3
    # Nothing is left in the stored outbox.
    outboxes = "Object.keys(sessionStorage).filter((k) => k.startsWith('todo.outbox.'))"
    assert await tab.page.evaluate(outboxes) == []


async def test_writes_sent_but_unanswered_when_the_tab_reloads_are_applied_once(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    tab, username, watch = await logged_in(open_page, web_stack, "frozen")
    await tab.add("Baseline")

    # The service is frozen: the page's frames reach it (the socket stays open), but it
    # answers nothing. The page reloads before any reply, so whether each write was
    # applied is unknown to it; after the reload it sends them again with the same keys.
    with frozen(web_stack.todo):
        await type_new(tab, "Sent while frozen")
        await tab.item("Baseline").get_by_test_id("todo-toggle").check()
        await expect(tab.item("Sent while frozen").get_by_test_id("todo-badge")).to_have_text(
            "Saving…"
        )
        await watch.wait_for(lambda: watch.sent("update_todo"))
        first = watch.sent("create_todo")[-1]
        await tab.page.reload()
        await expect(tab.page.get_by_test_id("todo-view")).to_be_visible()
        await expect(tab.item("Sent while frozen")).to_have_attribute("data-pending", "create")
    # Thawed: it handles the old socket's frames (or not, if it sees the close first), then
    # the reloaded page's connection and its repeats.

    await expect(tab.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    await tab.expect_saved()
    await expect(tab.titles).to_have_text(["Baseline", "Sent while frozen"])
    await expect(tab.item("Baseline").get_by_test_id("todo-toggle")).to_be_checked()

    stored = await server_todos(web_stack, username)
    assert [(t["title"], t["completed"]) for t in stored] == [
        ("Baseline", True),
        ("Sent while frozen", False),
    ]
    key = first["idempotency_key"]
    repeats = [m for m in watch.sent("create_todo") if m["idempotency_key"] == key]
    assert len(repeats) == 2  # before the reload and after it, with the same key
    assert repeats[0]["request_id"] != repeats[1]["request_id"]


# Installed before the page's own scripts. When armed, the next reply to a create is
# swallowed and the page's socket closed: exactly "the server committed the create, and the
# connection broke before its reply arrived". (Freezing or killing the service could not
# place the break between the commit and the reply reliably; this does, every time.)
LOSE_NEXT_CREATE_REPLY = """
(() => {
  const Native = window.WebSocket;
  window.__loseNextCreateReply = false;
  window.WebSocket = class extends Native {
    get onmessage() { return super.onmessage; }
    set onmessage(handler) {
      super.onmessage = (event) => {
        const reply = /"type":\\s*"todo_created"/.test(event.data)
          && /"request_id"/.test(event.data);
        if (window.__loseNextCreateReply && reply) {
          window.__loseNextCreateReply = false;
          this.close(4000, "test: the reply was lost");
          return;
        }
        handler(event);
      };
    }
  };
})();
"""


async def test_a_create_whose_reply_is_lost_is_applied_once_and_resolves_with_the_todo(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(web_stack)
    await tab.page.add_init_script(LOSE_NEXT_CREATE_REPLY)
    await tab.page.reload()
    watch = SocketWatch(tab.page)
    username = new_username("lostreply")
    await tab.register(username)
    await tab.add("Before")

    await tab.page.evaluate("window.__loseNextCreateReply = true")
    resolved = await tab.page.evaluate(
        "async () => await todoApp.client.createTodo({title: 'Exactly once'})"
    )

    await expect(tab.titles).to_have_text(["Before", "Exactly once"])
    await tab.expect_saved()
    stored = await server_todos(web_stack, username)
    assert [t["title"] for t in stored] == ["Before", "Exactly once"]
    assert resolved == stored[1]  # the promise resolved with the server's todo

    # The wire: the first socket got the reply (the page dropped it) and was closed; the
    # next one resumed with `since`, got the todo in its delta, sent the create again with
    # the same key and got the first reply back (same id, same rev): applied once.
    first, second = watch.synced[0], watch.synced[1]
    title = "Exactly once"
    [lost] = [m for m in first.received_of("todo_created") if m["data"]["title"] == title]
    [sent_first] = [m for m in first.sent_of("create_todo") if m["payload"]["title"] == title]
    assert "since=" in second.url
    delta = second.received[0]
    assert delta["type"] == "todos_delta"
    assert [t["id"] for t in delta["data"]["upserted"]] == [lost["data"]["id"]]
    [sent_again] = second.sent_of("create_todo")
    assert sent_again["idempotency_key"] == sent_first["idempotency_key"]
    [repeat] = [m for m in second.received_of("todo_created") if m.get("request_id")]
    assert repeat["request_id"] == sent_again["request_id"]
    assert (repeat["rev"], repeat["data"]) == (lost["rev"], lost["data"])


async def test_an_edit_from_an_old_version_is_a_conflict_the_user_can_resolve(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    laptop, username, _ = await logged_in(open_page, web_stack, "conflict")
    await laptop.add("Shared todo")
    phone = await open_page(web_stack, viewport=PHONE)
    phone_watch = SocketWatch(phone.page)
    await phone.login(username)
    await expect(phone.titles).to_have_text(["Shared todo"])

    # The phone starts editing version 1 ...
    await phone.item("Shared todo").get_by_test_id("todo-edit").click()
    phone_editor = phone.page.get_by_test_id("todo-edit-input")
    await phone_editor.fill("Phone's title")
    # ... the laptop saves its edit first (version 2), and the phone hears of it ...
    await laptop.item("Shared todo").get_by_test_id("todo-edit").click()
    await laptop.page.get_by_test_id("todo-edit-input").fill("Laptop's title")
    await laptop.page.get_by_test_id("todo-edit-input").press("Enter")
    await laptop.expect_saved()
    await expect(phone.page.get_by_test_id("todo-title")).to_have_text("Laptop's title")
    # ... then the phone saves: its edit was made on version 1, so the server refuses it.
    await phone_editor.press("Enter")

    conflicted = phone.page.locator('[data-testid="todo-item"][data-conflict]')
    await expect(conflicted).to_have_count(1)
    await expect(conflicted.get_by_test_id("todo-title")).to_have_text("Laptop's title")
    await expect(conflicted.get_by_test_id("todo-badge")).to_have_text("Conflict")
    await expect(conflicted.get_by_test_id("conflict-text")).to_contain_text("Phone's title")
    await expect(conflicted.get_by_test_id("conflict-reapply")).to_be_visible()
    await expect(conflicted.get_by_test_id("conflict-reapply")).to_be_focused()
    await expect(phone.error).to_contain_text("changed on another device")
    [update] = phone_watch.sent("update_todo")
    assert update["if_version"] == 1
    [refusal] = [m for m in phone_watch.received("error") if m["code"] == "conflict"]
    assert refusal["data"]["title"] == "Laptop's title"
    assert refusal["data"]["version"] == 2
    await expect(laptop.titles).to_have_text(["Laptop's title"])  # nothing changed

    # Re-apply, by keyboard: the phone's title goes on top of version 2, for both pages.
    await phone.page.keyboard.press("Enter")
    await expect(conflicted).to_have_count(0)
    await phone.expect_saved()
    await expect(phone.titles).to_have_text(["Phone's title"])
    await expect(laptop.titles).to_have_text(["Phone's title"])
    assert phone_watch.sent("update_todo")[-1]["if_version"] == 2

    # Another conflict, and this time the phone keeps the laptop's version.
    await phone.item("Phone's title").get_by_test_id("todo-edit").click()
    await phone_editor.fill("Phone again")
    await laptop.item("Phone's title").get_by_test_id("todo-edit").click()
    await laptop.page.get_by_test_id("todo-edit-input").fill("Laptop again")
    await laptop.page.get_by_test_id("todo-edit-input").press("Enter")
    await laptop.expect_saved()
    await expect(phone.page.get_by_test_id("todo-title")).to_have_text("Laptop again")
    await phone_editor.press("Enter")
    await expect(conflicted).to_have_count(1)
    await conflicted.get_by_test_id("conflict-dismiss").click()
    await expect(conflicted).to_have_count(0)
    await expect(phone.titles).to_have_text(["Laptop again"])
    await expect(laptop.titles).to_have_text(["Laptop again"])
    await expect(phone.item("Laptop again").get_by_test_id("todo-edit")).to_be_focused()
    overflow = await phone.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0


async def test_resume_after_a_restart_receives_only_what_changed(
    web_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(web_stack)
    watch = SocketWatch(tab.page)
    username = new_username("resume")
    await tab.register(username)
    for title in ("Unchanged one", "Unchanged two", "Edited away", "Deleted away"):
        await tab.add(title)
    before = watch.synced[0]
    rev = max(m["rev"] for m in before.received if "rev" in m)

    # While the page's service is down, another client changes two todos through a second
    # instance on the same database (one the gateway does not know about).
    web_stack.todo.stop()
    await expect(tab.status).to_have_text("Reconnecting…")
    tokens = login_tokens(web_stack, username, PASSWORD)
    away = ServiceProcess(
        "todo_ws_service", web_stack.todo_env(), web_stack.tmp_dir, name="todo-away"
    )
    with away:
        async with DirectSocket(away.ws_url, tokens["access_token"]) as direct:
            by_title = {t["title"]: t for t in direct.first["data"]}
            edited = by_title["Edited away"]
            reply = await direct.request(
                {"action": "update_todo", "todo_id": edited["id"], "payload": {"completed": True}}
            )
            assert reply["type"] == "todo_updated"
            doomed = by_title["Deleted away"]["id"]
            reply = await direct.request({"action": "delete_todo", "todo_id": doomed})
            assert reply["type"] == "todo_deleted"
    web_stack.todo.start()

    await expect(tab.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    await expect(tab.titles).to_have_text(["Unchanged one", "Unchanged two", "Edited away"])
    await expect(tab.item("Edited away").get_by_test_id("todo-toggle")).to_be_checked()

    # The reconnect asked from the revision it held and got only the two changes.
    resumed = watch.synced[1]
    assert f"since={rev}" in resumed.url
    delta = resumed.received[0]
    assert delta["type"] == "todos_delta"
    assert (delta["since"], delta["rev"]) == (rev, rev + 2)
    assert [t["title"] for t in delta["data"]["upserted"]] == ["Edited away"]
    assert delta["data"]["deleted"] == [doomed]
    assert not watch.received("todos_list")[1:]  # the only full list was the first one

    await tab.add("After the resume")
    await expect(tab.error).to_be_hidden()

"""The page as a user meets it: signed in straight after registering, errors in plain
words that go away once they are over, "Signed out" rather than "Offline", a reconnecting
banner with "Retry now", and no 404 (a favicon).

This module runs its own stack with small limits (3 todos, 2 sockets per user), so the
page meets the server's real `limit_reached` and `too_many_connections`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from playwright.async_api import Response, expect

from tests.web.conftest import OpenPage
from tests.web.direct_socket import DirectSocket
from tests.web.pages import PASSWORD, TodoPage, new_username
from tests.web.sockets import SocketWatch
from tests.web.stack import WebStack, login_tokens, start_stack

pytestmark = pytest.mark.browser

MAX_TODOS = 3
MAX_SOCKETS = 2
# Reconnecting waits out a randomized backoff (at most 20 s), so allow for a long one.
RECONNECT_TIMEOUT_MS = 30_000
# Math.random pinned to this makes the reconnect waits 0.5, 1, 2, 4, 7.9, 15.8, 19.8 s.
PINNED_RANDOM = 0.99


@pytest.fixture(scope="module")
def ux_stack(
    tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]
) -> Iterator[WebStack]:
    stack = start_stack(
        tmp_path_factory.mktemp("web-page-ux"),
        jwt_env,
        every_env={
            "TODO_MAX_PER_USER": str(MAX_TODOS),
            "WS_MAX_CONNECTIONS_PER_USER": str(MAX_SOCKETS),
        },
    )
    yield stack
    stack.stop()


def register_by_api(stack: WebStack, username: str) -> None:
    response = httpx.post(
        stack.url + "/auth/register",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 201, response.text


def error_text(tab: TodoPage) -> Any:
    return tab.page.get_by_test_id("error-text")


async def test_registering_signs_in_at_once_and_register_errors_are_in_words(
    ux_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(ux_stack)
    page = tab.page
    auth_calls: list[tuple[str, int]] = []

    def on_response(response: Response) -> None:
        if "/auth/" in response.url:
            auth_calls.append((response.url.rsplit("/", 1)[-1], response.status))

    page.on("response", on_response)
    await expect(tab.status).to_have_text("Signed out")
    await expect(tab.status).to_have_attribute("data-state", "offline")

    async def register(username: str, password: str) -> None:
        await page.get_by_test_id("register-username").fill(username)
        await page.get_by_test_id("register-password").fill(password)
        await page.get_by_test_id("register-submit").click()

    # The auth service's 422 and 409, each in a sentence naming the field.
    await register("ab", PASSWORD)
    await expect(error_text(tab)).to_have_text("The username is too short: at least 3 characters.")
    await register("no spaces please", PASSWORD)
    await expect(error_text(tab)).to_have_text(
        "The username may contain only letters, digits and the characters _ . -"
    )
    await register(new_username("weak"), "short")
    await expect(error_text(tab)).to_have_text("The password is too short: at least 8 characters.")
    await expect(page.get_by_test_id("register-password")).to_be_focused()
    await register("ab", "short")
    await expect(error_text(tab)).to_have_text(
        "The username is too short: at least 3 characters. "
        "The password is too short: at least 8 characters."
    )
    taken = new_username("taken")
    register_by_api(ux_stack, taken)
    await register(taken, PASSWORD)
    await expect(error_text(tab)).to_have_text(
        f"The username “{taken}” is taken. Choose another one."
    )
    assert [status for _, status in auth_calls] == [422, 422, 422, 422, 409]

    # A good one: the account is created and the page signs in with it, no retyping.
    username = new_username("fresh")
    await register(username, PASSWORD)
    await tab.expect_connected()
    await expect(page.get_by_test_id("current-user")).to_have_text(username)
    await expect(page.get_by_test_id("notice")).to_have_text(
        f"Welcome, {username}! Your account is ready."
    )
    await expect(tab.error).to_be_hidden()  # the refusals before are over
    await expect(page.get_by_test_id("new-title")).to_be_focused()
    await expect(page.get_by_test_id("login-password")).to_have_value("")
    assert auth_calls[-2:] == [("register", 201), ("login", 200)]

    # Logging out says "Signed out", not "Offline" (which reads as "the server is down").
    await page.get_by_test_id("logout").click()
    await expect(tab.status).to_have_text("Signed out")
    await expect(page.get_by_test_id("reconnect-banner")).to_be_hidden()


async def test_every_error_code_has_a_sentence_without_developer_wording(
    ux_stack: WebStack, open_page: OpenPage
) -> None:
    """messages.js, as the gateway serves it, on what the server and the library send."""
    tab = await open_page(ux_stack)
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {
                "code": "validation_error",
                "message": "the payload is not valid",
                "details": [
                    {"field": "title", "message": "String should have at most 200 characters"}
                ],
            },
            "The title is too long: at most 200 characters.",
        ),
        (
            {
                "code": "validation_error",
                "details": [
                    {"field": "title", "message": "String should have at least 1 character"}
                ],
            },
            "The title cannot be empty.",
        ),
        (
            {
                "code": "validation_error",
                "details": [
                    {
                        "field": "description",
                        "message": "String should have at most 2000 characters",
                    },
                    {"field": "completed", "message": "Input should be a valid boolean"},
                ],
            },
            "The description is too long: at most 2000 characters. The “done” mark is not valid.",
        ),
        (
            {"code": "validation_error", "details": [{"field": "zz", "message": "Extra inputs"}]},
            "One of the values is not valid.",
        ),
        (
            {"code": "not_found", "message": "todo 7 not found"},
            "That todo no longer exists: it may have been deleted on another device.",
        ),
        (
            {"code": "limit_reached", "message": "you have 5000 todos, the most allowed: ..."},
            "You have 5000 todos, the most allowed. Delete some to add more.",
        ),
        (
            {"code": "rate_limited", "message": "too many messages, slow down"},
            "Too many changes at once. Wait a moment and try again.",
        ),
        (
            {"code": "too_many_connections", "message": "you have 32 open sockets here"},
            "This account is open in too many tabs or devices. Close some, then reload this page.",
        ),
        (
            {"code": "internal_error", "message": "internal error"},
            "Something went wrong on the server, so this was not saved. Try again.",
        ),
        (
            {"code": "invalid_message", "message": "todo_id must be a positive integer"},
            "This change could not be saved. Reload the page and try again.",
        ),
        (
            {"code": "session_expired", "message": "Your session has ended."},
            "Your session has ended. Please log in again.",
        ),
        (
            {"code": "invalid_credentials", "status": 401, "message": "Incorrect username"},
            "Wrong username or password.",
        ),
        (
            {"code": "too_many_attempts", "status": 429, "message": "Too many failed logins"},
            "Too many attempts. Wait a few minutes, then try again.",
        ),
        (
            {"code": "http_429", "status": 429},
            "Too many attempts. Wait a few minutes, then try again.",
        ),
        ({"code": "busy", "status": 503}, "The server is busy. Try again in a few seconds."),
        (
            {"code": "bad_gateway", "status": 502, "message": "upstream unreachable"},
            "The server cannot be reached right now. Try again in a moment.",
        ),
        (
            {"code": "http_500", "status": 500, "message": "The server answered 500."},
            "Something went wrong on the server. Try again in a moment.",
        ),
        (
            {"code": "http_404", "status": 404, "message": "The server answered 404."},
            "The server refused this request. Reload the page and try again.",
        ),
        (
            {"code": "network_error", "message": "Could not reach the server."},
            "The server cannot be reached. Check your connection and try again.",
        ),
        (
            {"code": "something_new", "message": "the payload is not valid (x: y)"},
            "Something went wrong. Try again.",
        ),
        ({}, "Something went wrong. Try again."),
    ]
    described = await tab.page.evaluate(
        """async (cases) => {
          const { describeError } = await import("/messages.js");
          return cases.map((error) => describeError(error, {}));
        }""",
        [error for error, _ in cases],
    )
    assert described == [sentence for _, sentence in cases]
    for sentence in described:  # never the server's or a developer's words
        assert "payload" not in sentence and "should" not in sentence and "_" not in sentence


async def test_refusals_are_in_words_and_clear_on_the_next_success_or_edit(
    ux_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(ux_stack)
    page = tab.page
    await tab.register(new_username("limits"))
    box = page.get_by_test_id("new-title")

    # A validation error: gone as soon as the user changes the refused text.
    await box.fill("x" * 201)
    await box.press("Enter")
    await expect(error_text(tab)).to_have_text("The title is too long: at most 200 characters.")
    await expect(box).to_have_value("x" * 201)
    await box.press("Backspace")
    await expect(tab.error).to_be_hidden()

    # The server's limit of todos, in words; then the next successful action clears it.
    for title in ("One", "Two", "Three"):
        await tab.add(title)
    await box.fill("Four")
    await box.press("Enter")
    await expect(error_text(tab)).to_have_text(
        f"You have {MAX_TODOS} todos, the most allowed. Delete some to add more."
    )
    await expect(tab.titles).to_have_text(["One", "Two", "Three"])  # rolled back
    await tab.item("One").get_by_test_id("todo-toggle").check()  # a tick: it works
    await expect(tab.item("One")).not_to_have_attribute("data-pending", "update")
    await expect(tab.error).to_be_hidden()

    # A refused edit: the editor reopens with the text; typing in it clears the error.
    await tab.item("Two").get_by_test_id("todo-edit").click()
    editor = page.get_by_test_id("todo-edit-input")
    await editor.fill("   ")
    await editor.press("Enter")
    await expect(error_text(tab)).to_have_text("The title cannot be empty.")
    await expect(editor).to_be_editable()
    await editor.press_sequentially("Two, fixed")
    await expect(tab.error).to_be_hidden()
    await editor.press("Enter")
    await expect(tab.titles).to_have_text(["One", "Two, fixed", "Three"])
    await tab.expect_saved()
    await expect(tab.error).to_be_hidden()


async def test_too_many_sockets_is_explained_and_cleared_once_connected(
    ux_stack: WebStack, open_page: OpenPage
) -> None:
    username = new_username("sockets")
    register_by_api(ux_stack, username)
    tokens = login_tokens(ux_stack, username, PASSWORD)
    tab = await open_page(ux_stack)
    async with AsyncExitStack() as others:
        for _ in range(MAX_SOCKETS):  # the user's other devices use up the allowance
            await others.enter_async_context(
                DirectSocket(ux_stack.gateway.ws_url, tokens["access_token"])
            )
        await tab.page.get_by_test_id("login-username").fill(username)
        await tab.page.get_by_test_id("login-password").fill(PASSWORD)
        await tab.page.get_by_test_id("login-submit").click()
        await expect(error_text(tab)).to_have_text(
            "This account is open in too many tabs or devices. Close some, then reload this page."
        )
        await expect(tab.page.get_by_test_id("reconnect-banner")).to_be_visible()
        await expect(tab.status).to_have_text("Reconnecting…")
    # The other devices have gone: the page gets in (its next try), and the error is over.
    await expect(tab.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    await expect(tab.error).to_be_hidden()
    await expect(tab.page.get_by_test_id("reconnect-banner")).to_be_hidden()


async def test_reconnecting_banner_with_retry_now_while_the_todo_service_is_down(
    ux_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(ux_stack)
    page = tab.page
    # Reconnect waits of a known length, so that "Retry now" is seen beating them.
    await page.add_init_script(f"Math.random = () => {PINNED_RANDOM};")
    await page.reload()
    watch = SocketWatch(page)
    await tab.register(new_username("banner"))
    await tab.add("Saved before")
    banner = page.get_by_test_id("reconnect-banner")
    todo_view = page.get_by_test_id("todo-view")
    await expect(banner).to_be_hidden()
    await expect(todo_view).not_to_have_attribute("data-stale", "true")

    ux_stack.todo.stop()
    try:
        # Down: a banner in words with "Retry now", and the list visibly not live.
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Reconnecting…")
        await expect(banner).to_contain_text("will be sent when back online")
        await expect(tab.status).to_have_text("Reconnecting…")
        await expect(todo_view).to_have_attribute("data-stale", "true")
        opacity = await page.get_by_test_id("todo-list").evaluate(
            "(list) => Number(getComputedStyle(list).opacity)"
        )
        assert opacity < 1
        # Writes still work: queued, and said to be so.
        box = page.get_by_test_id("new-title")
        await box.fill("Written while down")
        await box.press("Enter")
        await expect(tab.item("Written while down").get_by_test_id("todo-badge")).to_have_text(
            "Not sent yet"
        )
        await expect(tab.error).to_be_hidden()  # an outage is the banner's news, not an error

        # Four failed attempts (0.5 + 1 + 2 + 4 s): the next wait is 7.9 s. "Retry now"
        # tries at once instead.
        await watch.wait_for(lambda: len(watch.sockets) >= 5, 30)
        await page.wait_for_timeout(1000)  # the fifth has failed; the long wait is on
        before = len(watch.sockets)
        await page.get_by_test_id("reconnect-now").click()
        await watch.wait_for(lambda: len(watch.sockets) == before + 1, 3)
        retried_at = time.monotonic()
    finally:
        ux_stack.todo.start()

    # Back: that attempt failed, so the page now waits 15.8 s; "Retry now" connects at once
    # (checked when restarting the service on this busy machine left time to beat the wait).
    natural_retry_at = retried_at + 15.8
    if time.monotonic() < natural_retry_at - 5:
        await page.get_by_test_id("reconnect-now").click()
        await expect(tab.status).to_have_text("Connected", timeout=4_000)
        assert time.monotonic() < natural_retry_at, "connected by the backoff, not Retry now"
    await expect(tab.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    await expect(banner).to_be_hidden()
    await expect(todo_view).not_to_have_attribute("data-stale", "true")
    await tab.expect_saved()
    await expect(tab.titles).to_have_text(["Saved before", "Written while down"])
    await expect(tab.error).to_be_hidden()


async def test_an_outage_error_goes_away_once_the_page_is_back(
    ux_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(ux_stack)
    page = tab.page
    await page.add_init_script(f"Math.random = () => {PINNED_RANDOM};")
    await page.reload()
    await tab.register(new_username("authdown"))
    await tab.add("Still here")
    renewals: list[int] = []

    def on_response(response: Response) -> None:
        if response.url.endswith("/auth/refresh"):
            renewals.append(response.status)

    page.on("response", on_response)

    # A reload while the auth service is down: the session cannot be renewed yet, and the
    # page says so and keeps trying rather than dropping the user on the login form.
    ux_stack.auth.stop()
    try:
        await page.reload()
        await expect(error_text(tab)).to_have_text(
            "The server cannot be reached right now. Try again in a moment."
        )
        await expect(page.get_by_test_id("reconnect-banner")).to_be_visible()
        await expect(tab.status).to_have_text("Reconnecting…")
        await expect(tab.login_form).to_be_hidden()  # unreachable is not refused
        # After four tries the wait is 4 s; "Retry now" tries at once.
        deadline = time.monotonic() + 20
        while len(renewals) < 4 and time.monotonic() < deadline:
            await page.wait_for_timeout(50)
        tried = len(renewals)
        await page.get_by_test_id("reconnect-now").click()
        deadline = time.monotonic() + 2
        while len(renewals) == tried and time.monotonic() < deadline:
            await page.wait_for_timeout(50)
        assert len(renewals) == tried + 1 and renewals[-1] == 502
    finally:
        ux_stack.auth.start()

    # The auth service is back: the page gets in, and the error about the outage is over.
    await expect(tab.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    await tab.expect_connected()
    await expect(tab.titles).to_have_text(["Still here"])
    await expect(tab.error).to_be_hidden()
    await expect(page.get_by_test_id("reconnect-banner")).to_be_hidden()


async def test_the_page_loads_without_a_404_and_has_a_favicon(
    ux_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(ux_stack)
    page = tab.page
    failed: list[str] = []
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    await page.reload()
    await tab.register(new_username("favicon"))
    await page.reload()
    await tab.expect_connected()

    href = await page.locator('link[rel="icon"]').get_attribute("href")
    assert href == "favicon.svg"
    icon = await page.request.get(f"{ux_stack.url}/{href}")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert (await icon.text()).lstrip().startswith("<svg")
    # Without the link Chromium asks for /favicon.ico on every load, a 404.
    assert failed == []

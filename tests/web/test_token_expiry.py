"""Short-lived access tokens: the page renews them in band on its open socket, falls back to
reconnecting when it cannot, and ends a revoked session cleanly.

This module runs its own stack with ACCESS_TOKEN_TTL=8 s: the page renews 2 s before `exp`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Response, expect

from tests.web.conftest import OpenPage
from tests.web.pages import new_username
from tests.web.sockets import SocketWatch
from tests.web.stack import WebStack, start_stack

pytestmark = pytest.mark.browser

ACCESS_TOKEN_TTL = 8


@pytest.fixture(scope="module")
def short_token_stack(
    tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]
) -> Iterator[WebStack]:
    stack = start_stack(
        tmp_path_factory.mktemp("web-short-tokens"),
        jwt_env,
        auth_env={"ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL)},
    )
    yield stack
    stack.stop()


async def test_the_socket_stays_open_across_token_refreshes(
    short_token_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(short_token_stack)
    watch = SocketWatch(tab.page)
    refreshes: list[int] = []

    def on_response(response: Response) -> None:
        if response.url.endswith("/auth/refresh"):
            refreshes.append(response.status)

    tab.page.on("response", on_response)
    username = new_username("inband")
    await tab.register(username)  # signs in too
    logged_in_at = time.monotonic()  # after the first token was issued
    # Every connection-state change the page's client reports from now on.
    await tab.page.evaluate(
        """() => {
          window.stateChanges = [];
          todoApp.client.addEventListener("statechange",
              (e) => window.stateChanges.push(e.detail.state));
        }"""
    )
    await tab.add("Added with the first token")

    # Two renewals: well past the first token's `exp`, when the server would have closed.
    await watch.wait_for(lambda: len(watch.received("token_refreshed")) >= 2, 3 * ACCESS_TOKEN_TTL)
    assert time.monotonic() - logged_in_at > ACCESS_TOKEN_TTL
    await tab.add("Added after two renewals")

    [socket] = watch.sockets  # the one socket, never reconnected
    assert not socket.closed.is_set()
    assert not watch.received("error")  # no token_expired, no auth_failed
    handed = socket.sent_of("refresh_token")
    assert len(handed) >= 2
    assert len({m["payload"]["token"] for m in handed}) == len(handed)  # a new token each time
    assert len(refreshes) >= 2 and all(status == 200 for status in refreshes)
    assert await tab.page.evaluate("window.stateChanges") == []
    await expect(tab.status).to_have_text("Connected")
    await expect(tab.error).to_be_hidden()


async def test_when_the_token_cannot_be_renewed_the_page_reconnects_once_it_can(
    short_token_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(short_token_stack)
    watch = SocketWatch(tab.page)
    username = new_username("fallback")
    await tab.register(username)
    await tab.add("Added with the first token")

    # The auth service is down when the renewal is due: the server closes the socket at
    # the token's `exp` (token_expired), and the page keeps its list and waits.
    short_token_stack.auth.stop()
    try:
        first = watch.sockets[0]
        await asyncio.wait_for(first.closed.wait(), ACCESS_TOKEN_TTL + 10)
        assert [m["code"] for m in first.received_of("error")] == ["token_expired"]
        await expect(tab.status).to_have_text("Reconnecting…")
        await expect(tab.titles).to_have_text(["Added with the first token"])
        await expect(tab.login_form).to_be_hidden()  # unreachable is not refused
    finally:
        short_token_stack.auth.start()

    # Once it is back, the page renews its token and resumes where it was.
    await expect(tab.status).to_have_text("Connected", timeout=30_000)
    resumed = watch.synced[-1]
    assert resumed is not first
    assert "since=" in resumed.url
    assert resumed.received[0]["type"] == "todos_delta"
    await tab.add("Added after the auth service came back")
    await expect(tab.error).to_be_hidden()


async def test_revoked_session_sends_the_user_back_to_the_login_form(
    short_token_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(short_token_stack)
    username = new_username("revoked")
    await tab.register(username)
    first_refresh_token = await tab.page.evaluate("sessionStorage.getItem('todo.refresh_token')")
    assert first_refresh_token

    # Wait until the page has rotated its refresh token, then replay the spent one, as a
    # thief would: the auth service revokes the whole family, the page's included.
    await tab.page.wait_for_function(
        "(old) => sessionStorage.getItem('todo.refresh_token') !== old",
        arg=first_refresh_token,
        timeout=(ACCESS_TOKEN_TTL + 5) * 1000,
    )
    replay = httpx.post(
        short_token_stack.url + "/auth/refresh",
        json={"refresh_token": first_refresh_token},
        timeout=10,
    )
    assert replay.status_code == 401

    # At its next renewal the page is refused: it says so and shows the login form.
    timeout_ms = (ACCESS_TOKEN_TTL + 10) * 1000
    await expect(tab.login_form).to_be_visible(timeout=timeout_ms)
    await expect(tab.error).to_contain_text("log in again")
    await expect(tab.status).to_have_text("Signed out")
    await expect(tab.page.get_by_test_id("todo-view")).to_be_hidden()
    assert await tab.page.evaluate("sessionStorage.getItem('todo.refresh_token')") is None

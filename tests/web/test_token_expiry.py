"""Short-lived access tokens: the page renews them itself, and ends a revoked session cleanly.

This module runs its own stack with ACCESS_TOKEN_TTL=4 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Response, WebSocket, expect

from tests.web.conftest import OpenPage
from tests.web.pages import new_username
from tests.web.stack import WebStack, start_stack

pytestmark = pytest.mark.browser

ACCESS_TOKEN_TTL = 4


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


class SocketWatch:
    """Every WebSocket the page opens, when it closed, and the frames it received."""

    def __init__(self) -> None:
        self.sockets: list[WebSocket] = []
        self.closed: dict[str, asyncio.Event] = {}
        self.frames: dict[str, list[str]] = {}

    def on_socket(self, ws: WebSocket) -> None:
        self.sockets.append(ws)
        closed = self.closed.setdefault(ws.url, asyncio.Event())
        frames = self.frames.setdefault(ws.url, [])
        ws.on("close", lambda _: closed.set())
        ws.on("framereceived", lambda payload: frames.append(str(payload)))


async def test_access_token_expiry_is_invisible_to_the_user(
    short_token_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(short_token_stack)
    watch = SocketWatch()
    tab.page.on("websocket", watch.on_socket)
    refreshes: list[int] = []

    def on_response(response: Response) -> None:
        if response.url.endswith("/auth/refresh"):
            refreshes.append(response.status)

    tab.page.on("response", on_response)

    username = new_username("expiry")
    await tab.register(username)
    logged_in_at = time.monotonic()
    await tab.login(username)
    await tab.add("Added with the first token")
    first = watch.sockets[0]

    # The server closes the socket when the first token expires ...
    await asyncio.wait_for(watch.closed[first.url].wait(), ACCESS_TOKEN_TTL + 10)
    assert time.monotonic() - logged_in_at >= ACCESS_TOKEN_TTL - 1
    assert any("token_expired" in frame for frame in watch.frames[first.url])
    # ... and the page, holding a token it refreshed in time, carries straight on.
    await tab.expect_connected()
    assert len(watch.sockets) >= 2
    assert watch.sockets[-1].url != first.url  # a different token in the query
    assert refreshes and all(status == 200 for status in refreshes)

    await tab.add("Added after the token expired")
    await expect(tab.titles).to_have_text(
        ["Added with the first token", "Added after the token expired"]
    )
    await expect(tab.error).to_be_hidden()
    await expect(tab.login_form).to_be_hidden()


async def test_revoked_session_sends_the_user_back_to_the_login_form(
    short_token_stack: WebStack, open_page: OpenPage
) -> None:
    tab = await open_page(short_token_stack)
    username = new_username("revoked")
    await tab.register(username)
    await tab.login(username)
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
    await expect(tab.status).to_have_text("Offline")
    await expect(tab.page.get_by_test_id("todo-view")).to_be_hidden()
    assert await tab.page.evaluate("sessionStorage.getItem('todo.refresh_token')") is None

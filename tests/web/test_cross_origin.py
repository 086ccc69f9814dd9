"""A page of another origin uses the gateway: it imports the client module from it, logs in
and syncs live, in Chromium. That needs the gateway's CORS_ORIGINS (shared/cors.py).

The page is served by a plain `python -m http.server` on another port (so another origin:
the port is part of it). A second server on a third port, not in CORS_ORIGINS, shows what
the browser does without CORS: the module import fails and nothing talks to the gateway.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from tests.stack import LocalStack, start_stack
from tests.support import free_port
from tests.web.direct_socket import DirectSocket
from tests.web.pages import PASSWORD, new_username
from tests.web.stack import login_tokens

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>Another origin</title>
<p id="state">loading</p>
<ul id="todos"></ul>
<script type="module">
  import { AuthApi, TodoClient } from "{gateway}/todo-client.js";

  const client = new TodoClient({
    auth: new AuthApi({ baseUrl: "{gateway}" }),
    wsUrl: "{gateway_ws}/ws_ep/ws",
    storage: null,
  });
  const list = document.getElementById("todos");
  client.addEventListener("change", (event) => {
    list.replaceChildren(
      ...event.detail.todos.map((todo) => {
        const item = document.createElement("li");
        item.textContent = todo.title;
        return item;
      }),
    );
  });
  client.addEventListener("statechange", (event) => {
    document.getElementById("state").textContent = event.detail.state;
  });
  window.client = client;
  document.getElementById("state").textContent = "imported";
</script>
</html>
"""


class StaticServer:
    """`python -m http.server` serving one folder on 127.0.0.1, a port of its own."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("http.server did not start") from None
                time.sleep(0.1)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Origins:
    def __init__(self, allowed: StaticServer, refused: StaticServer, stack: LocalStack) -> None:
        self.allowed, self.refused, self.stack = allowed, refused, stack


@pytest.fixture(scope="module")
def origins(tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]) -> Iterator[Origins]:
    site = tmp_path_factory.mktemp("other-origin")
    allowed = StaticServer(site)
    refused = StaticServer(site)
    stack: LocalStack | None = None
    try:
        stack = start_stack(
            tmp_path_factory.mktemp("cors-web-stack"),
            jwt_env,
            every_env={"CORS_ORIGINS": allowed.origin},
        )
        (site / "index.html").write_text(
            PAGE.replace("{gateway}", stack.url).replace("{gateway_ws}", stack.gateway.ws_url)
        )
        # Ready, not only alive: both databases answer (a loaded machine can take a while).
        stack.gateway.wait_healthy(timeout=60, path="/readyz")
        yield Origins(allowed, refused, stack)
    finally:
        if stack is not None:
            stack.stop()
        allowed.stop()
        refused.stop()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    opened = await browser.new_context()
    opened.set_default_timeout(10_000)
    yield opened
    await opened.close()


async def open_watched(context: BrowserContext, url: str) -> tuple[Page, list[str], list[str]]:
    """The page at `url`, with its uncaught errors and console messages collected."""
    page = await context.new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message: ConsoleMessage) -> None:
        console.append(message.text)

    page.on("console", on_console)
    await page.goto(url)
    return page, errors, console


async def test_a_page_of_an_allowed_origin_logs_in_and_syncs_live(
    origins: Origins, context: BrowserContext
) -> None:
    stack = origins.stack
    username = new_username("xorigin")
    registered = httpx.post(
        stack.url + "/auth/register",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    assert registered.status_code == 201

    page, errors, console = await open_watched(context, origins.allowed.origin + "/index.html")
    await expect(page.locator("#state")).to_have_text("imported")
    await page.evaluate("([u, p]) => window.client.login(u, p)", [username, PASSWORD])
    await expect(page.locator("#state")).to_have_text("open")
    assert await page.evaluate("window.client.user.username") == username

    # A second client of the same user writes through its own socket: the page sees it.
    tokens = login_tokens(stack, username, PASSWORD)
    async with DirectSocket(stack.gateway.ws_url, tokens["access_token"]) as other:
        created = await other.request(
            {"action": "create_todo", "payload": {"title": "Written elsewhere"}}
        )
        assert created["type"] == "todo_created"
        await expect(page.locator("#todos li")).to_have_text(["Written elsewhere"])

        # And the page's own write reaches the other socket.
        await page.evaluate("window.client.createTodo({title: 'Written on the page'})")
        while True:
            event = await other.receive()
            if event["type"] == "todo_created":
                break
        assert event["data"]["title"] == "Written on the page"
    await expect(page.locator("#todos li")).to_have_text(
        ["Written elsewhere", "Written on the page"]
    )
    assert errors == []
    assert not [text for text in console if "CORS" in text], console


async def test_a_page_of_another_origin_cannot_import_the_client(
    origins: Origins, context: BrowserContext
) -> None:
    page, errors, console = await open_watched(context, origins.refused.origin + "/index.html")
    # The module script fails to load, so none of it runs.
    await expect(page.locator("#state")).to_have_text("loading")
    deadline = time.monotonic() + 10
    while not any("CORS" in text for text in console) and time.monotonic() < deadline:
        await page.wait_for_timeout(100)
    assert any("blocked by CORS policy" in text for text in console), console
    # Nor may it read an API answer: fetch rejects (the gateway sent no CORS header).
    outcome = await page.evaluate(
        """(url) => fetch(url + "/auth/login", {
               method: "POST",
               headers: {"Content-Type": "application/json"},
               body: JSON.stringify({username: "nobody", password: "whatever1"}),
           }).then((r) => "read " + r.status, (e) => "refused: " + e.name)""",
        origins.stack.url,
    )
    assert outcome == "refused: TypeError"
    assert await page.evaluate("typeof window.client") == "undefined"
    assert errors == [] or all("CORS" not in error for error in errors)

"""The library's pure parts (state reducer, backoff, JWT decoding), run in Chromium itself.

No server is needed: Playwright answers the page's requests from gateway/static/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "gateway" / "static"
ORIGIN = "http://client.test"


async def serve_static(route: Route) -> None:
    name = route.request.url.removeprefix(ORIGIN + "/") or "index.html"
    path = STATIC / name
    if not path.is_file():
        await route.fulfill(status=404, body="not found")
        return
    types = {".js": "text/javascript", ".html": "text/html", ".css": "text/css"}
    await route.fulfill(body=path.read_bytes(), content_type=types.get(path.suffix, "text/plain"))


@pytest.fixture
async def lib_page(browser: Browser) -> Any:
    context = await browser.new_context()
    page = await context.new_page()
    await page.route(ORIGIN + "/**", serve_static)
    await page.goto(ORIGIN + "/blank.js")  # any same-origin document will do
    yield page
    await context.close()


async def run(page: Page, body: str) -> Any:
    """Evaluate `body` with the module imported as `lib`."""
    return await page.evaluate(
        f"async () => {{ const lib = await import('{ORIGIN}/todo-client.js'); {body} }}"
    )


async def test_reducer_replaces_upserts_and_removes(lib_page: Page) -> None:
    result = await run(
        lib_page,
        """
        const todos = new Map();
        const steps = [];
        const at = (s) => `2026-01-01T00:00:0${s}Z`;
        const apply = (m) => { steps.push(lib.applyServerMessage(todos, m)); };
        apply({type: "todos_list", data: [
            {id: 2, title: "b", updated_at: at(2)},
            {id: 1, title: "a", updated_at: at(1)}]});
        apply({type: "todo_created", data: {id: 3, title: "c", updated_at: at(3)}});
        apply({type: "todo_updated", data: {id: 1, title: "a2", updated_at: at(4)}});
        apply({type: "todo_updated", data: {id: 1, title: "stale", updated_at: at(0)}});
        apply({type: "todo_deleted", data: {todo_id: 2}});
        apply({type: "todo_deleted", data: {todo_id: 99}});
        apply({type: "error", code: "not_found", message: "x"});
        const afterOps = lib.sortedTodos(todos).map((t) => [t.id, t.title]);
        apply({type: "todos_delta", since: 3, rev: 5,
               data: {upserted: [{id: 3, title: "c2"}, {id: 4, title: "d"}], deleted: [1]}});
        const afterDelta = lib.sortedTodos(todos).map((t) => [t.id, t.title]);
        apply({type: "todos_list", data: [{id: 7, title: "fresh"}]});
        return {steps, afterOps, afterDelta, final: lib.sortedTodos(todos).map((t) => t.id)};
        """,
    )
    assert result["steps"] == [True, True, True, False, True, False, False, True, True]
    assert result["afterOps"] == [[1, "a2"], [3, "c"]]
    assert result["afterDelta"] == [[3, "c2"], [4, "d"]]
    assert result["final"] == [7]


async def test_backoff_is_full_jitter_with_a_cap(lib_page: Page) -> None:
    result = await run(
        lib_page,
        """
        const top = (a) => lib.backoffDelay(a, {random: () => 0.999999});
        const low = (a) => lib.backoffDelay(a, {random: () => 0});
        const samples = Array.from({length: 200}, () => lib.backoffDelay(3));
        return {tops: [0, 1, 2, 3, 6, 30].map(top), lows: [0, 5].map(low),
                min: Math.min(...samples), max: Math.max(...samples)};
        """,
    )
    assert result["tops"] == [499, 999, 1999, 3999, 19999, 19999]
    assert result["lows"] == [0, 0]
    assert 0 <= result["min"] < result["max"] < 4000


async def test_jwt_payload_is_decoded_without_verification(lib_page: Page) -> None:
    result = await run(
        lib_page,
        """
        const b64url = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s)))
            .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
        const token = "h." + b64url(JSON.stringify({sub: "7", username: "zoë", exp: 42})) + ".s";
        return [lib.decodeJwtPayload(token), lib.decodeJwtPayload("not a jwt")];
        """,
    )
    assert result == [{"sub": "7", "username": "zoë", "exp": 42}, None]


async def test_calls_without_a_session_reject_with_a_code(lib_page: Page) -> None:
    result = await run(
        lib_page,
        """
        const client = new lib.TodoClient({storage: null});
        try {
            await client.createTodo({title: "x"});
            return "resolved";
        } catch (e) {
            return {name: e.name, code: e.code, message: e.message, state: client.state};
        } finally {
            client.dispose();
        }
        """,
    )
    assert result["code"] == "offline"
    assert result["state"] == "offline"
    assert result["message"]

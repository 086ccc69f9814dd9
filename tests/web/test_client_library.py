"""The library in Chromium itself, without a server: its pure parts (reducer, pending view,
backoff, JWT decoding, keys) and the client's protocol 1.1 logic against a scripted socket.

Playwright answers the page's requests from gateway/static/.
"""

from __future__ import annotations

import re
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


async def test_reducer_applies_by_revision_and_version(lib_page: Page) -> None:
    result = await run(
        lib_page,
        """
        const s = lib.createSyncState();
        const todo = (id, title, version) => ({id, title, version, completed: false});
        const titles = () => [...s.todos.values()].sort((a, b) => a.id - b.id)
            .map((t) => [t.id, t.title]);
        const steps = [];
        const apply = (m) => {
            const r = lib.applyServerMessage(s, m);
            steps.push([r.changed, r.gap, s.rev]);
        };
        apply({type: "todos_list", rev: 2, data: [todo(2, "b", 1), todo(1, "a", 1)]});
        apply({type: "todo_created", rev: 3, data: todo(3, "c", 1)});
        apply({type: "todo_updated", rev: 3, data: todo(3, "old reply", 1)});  // covered
        apply({type: "todo_updated", rev: 6, data: todo(1, "too early", 3)});  // gap
        const afterGap = titles();
        apply({type: "todo_updated", rev: 4, data: todo(1, "a2", 2)});
        apply({type: "todo_deleted", rev: 5, data: {todo_id: 2}});
        apply({type: "todos_delta", since: 1, rev: 5, data: {upserted: [], deleted: [1]}});
        apply({type: "todos_delta", since: 5, rev: 7,
               data: {upserted: [todo(1, "a3", 3), todo(4, "d", 1)], deleted: [3]}});
        apply({type: "todos_delta", since: 9, rev: 11, data: {upserted: [], deleted: [4]}});
        const afterDeltas = titles();
        apply({type: "error", code: "not_found", message: "x"});
        // Protocol 1.0 (no rev): a lower version never replaces a higher one, whatever
        // the timestamps say.
        const old = lib.createSyncState();
        lib.applyServerMessage(old, {type: "todos_list", data: [
            {...todo(1, "v2", 2), updated_at: "2026-01-01T00:00:00Z"}]});
        lib.applyServerMessage(old, {type: "todo_updated", data:
            {...todo(1, "v1 but later clock", 1), updated_at: "2027-01-01T00:00:00Z"}});
        return {steps, afterGap, afterDeltas, old: old.todos.get(1).title, oldRev: old.rev};
        """,
    )
    assert result["steps"] == [
        [True, False, 2],  # the list, and its rev
        [True, False, 3],  # rev + 1: applied
        [False, False, 3],  # at or below the held rev: covered already
        [False, True, 3],  # beyond rev + 1: a gap, not applied
        [True, False, 4],
        [True, False, 5],
        [False, False, 5],  # a delta ending at the held rev is stale
        [True, False, 7],  # a delta from the held rev
        [False, True, 7],  # a delta starting after it: a gap
        [False, False, 7],
    ]
    assert result["afterGap"] == [[1, "a"], [2, "b"], [3, "c"]]
    assert result["afterDeltas"] == [[1, "a3"], [4, "d"]]
    assert result["old"] == "v2"
    assert result["oldRev"] is None


async def test_view_lays_pending_writes_and_conflicts_over_the_server_state(
    lib_page: Page,
) -> None:
    result = await run(
        lib_page,
        """
        const todos = new Map([
            [1, {id: 1, title: "a", completed: false, version: 4}],
            [2, {id: 2, title: "b", completed: false, version: 1}],
            [3, {id: 3, title: "c", completed: false, version: 2}]]);
        const writes = [
            {key: "k1", action: "create_todo", todoId: -1, payload: {title: "new"}, at: 0},
            {key: "k2", action: "update_todo", todoId: 1, payload: {completed: true}, at: 1},
            {key: "k3", action: "update_todo", todoId: 1, payload: {title: "a2"}, at: 2},
            {key: "k4", action: "delete_todo", todoId: 2, at: 3},
            {key: "k5", action: "create_todo", todoId: -2, payload: {title: "newer"}, at: 4},
            {key: "k6", action: "update_todo", todoId: -1, payload: {completed: true}, at: 5},
        ];
        const theirs = {id: 3, title: "theirs", completed: false, version: 3};
        const conflicts = new Map([[3, {todoId: 3, action: "update_todo",
                                        changes: {title: "mine"}, theirs}]]);
        return lib.viewTodos(todos, writes, conflicts, 7).map((t) =>
            [t.id, t.title, t.completed, t.version, t.pending,
             t.conflict && t.conflict.theirs.title, t.owner_id]);
        """,
    )
    assert result == [
        [1, "a2", True, 6, "update", None, None],  # the version after its two updates
        [3, "c", False, 2, None, "theirs", None],
        [-1, "new", True, 0, "create", None, 7],  # pending creates last, in order
        [-2, "newer", False, 0, "create", None, 7],
    ]


async def test_idempotency_keys_are_uuid_v4(lib_page: Page) -> None:
    keys = await run(lib_page, "return Array.from({length: 50}, () => lib.newIdempotencyKey());")
    assert len(set(keys)) == 50
    uuid4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    for key in keys:
        assert uuid4.fullmatch(key)


async def test_declarations_cover_every_export(lib_page: Page) -> None:
    """todo-client.d.ts declares exactly what the module exports."""
    exported = await run(lib_page, "return Object.keys(lib).sort();")
    declared = re.findall(
        r"^export (?:declare )?(?:const|function|class) (\w+)",
        (STATIC / "todo-client.d.ts").read_text(),
        flags=re.MULTILINE,
    )
    assert sorted(declared) == exported


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


# A scripted server: each FakeSocket records what the client sends; the test delivers the
# server's messages and drops the connection when it wants to.
FAKE_SERVER = """
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sockets = [];
class FakeSocket {
    constructor(url) {
        this.url = url; this.readyState = 0; this.sent = []; sockets.push(this);
        setTimeout(() => { this.readyState = 1; if (this.onopen) this.onopen({}); }, 0);
    }
    send(data) { this.sent.push(JSON.parse(data)); }
    close(code = 1000) { this.drop(code); }
    deliver(message) { this.onmessage({data: JSON.stringify(message)}); }
    drop(code = 1006) {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.onclose({code});
    }
    last(action) { return this.sent.filter((f) => f.action === action).at(-1); }
}
const b64url = (s) => btoa(s).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
let issued = 0;
const token = (lifetime) => {
    const iat = Math.floor(Date.now() / 1000);
    const claims = {sub: "7", username: "ann", iat, exp: iat + lifetime, jti: String(++issued)};
    return "h." + b64url(JSON.stringify(claims)) + ".s";
};
const fakeAuth = (lifetime) => ({
    refreshed: 0,
    async login() {
        return {access_token: token(lifetime), refresh_token: "r0", token_type: "bearer"};
    },
    async refresh() {
        this.refreshed += 1;
        return {access_token: token(lifetime), refresh_token: "r" + issued, token_type: "bearer"};
    },
    async logout() { return null; },
});
const memoryStorage = () => {
    const m = new Map();
    return {getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)),
            removeItem: (k) => m.delete(k)};
};
const todo = (id, title, version, extra = {}) => ({id, title, version, completed: false,
    description: null, owner_id: 7, created_at: "x", updated_at: "x", ...extra});
const newClient = (storage, lifetime = 900) => new lib.TodoClient({
    auth: fakeAuth(lifetime), storage, WebSocket: FakeSocket, backoffBaseMs: 1, backoffCapMs: 2});
"""


async def test_writes_wait_for_ids_and_are_resent_with_their_keys_after_a_reconnect(
    lib_page: Page,
) -> None:
    result = await run(
        lib_page,
        FAKE_SERVER
        + """
        const storage = memoryStorage();
        const client = newClient(storage);
        const out = {};
        await client.login("ann", "pw");
        await sleep(5);
        const s1 = sockets[0];
        out.firstUrlHasSince = s1.url.includes("since=");
        s1.deliver({type: "todos_list", rev: 4, data: [todo(1, "a", 1)]});
        out.state = client.state;

        // A create, and a change to it before the server has given it an id.
        const created = client.createTodo({title: "new"});
        const tempId = client.todos.find((t) => t.pending === "create").id;
        const toggled = client.updateTodo(tempId, {completed: true});
        out.view = client.todos.map((t) => [t.id, t.completed, t.pending]);
        out.sentBeforeId = s1.sent.map((f) => f.action);
        const create = s1.last("create_todo");
        out.createHasKey = typeof create.idempotency_key === "string";
        out.stored = JSON.parse(storage.getItem("todo.outbox.7")).writes.length;
        s1.deliver({type: "todo_created", rev: 5, data: todo(2, "new", 1),
                    request_id: create.request_id});
        out.created = (await created).id;
        const update = s1.last("update_todo");
        out.updateTodoId = update.todo_id;

        // The socket is lost before the update's reply; the update had committed.
        s1.drop(1006);
        out.stateAfterDrop = client.state;
        await sleep(20);
        const s2 = sockets[1];
        out.resumeUrl = s2.url.replace(/token=[^&]*/, "token=T");
        s2.deliver({type: "todos_delta", since: 5, rev: 6,
                    data: {upserted: [todo(2, "new", 2, {completed: true})], deleted: []}});
        const resent = s2.last("update_todo");
        out.sameKey = resent.idempotency_key === update.idempotency_key;
        out.newRequestId = resent.request_id !== update.request_id;
        // The server answers the repeat with the first reply (same rev, covered already).
        s2.deliver({type: "todo_updated", rev: 6, data: todo(2, "new", 2, {completed: true}),
                    request_id: resent.request_id});
        out.toggled = (await toggled).completed;
        out.outboxAfter = storage.getItem("todo.outbox.7");
        out.rev = client.rev;

        // A revision beyond rev + 1 is a gap: the client asks for a sync from its rev.
        s2.deliver({type: "todo_created", rev: 9, data: todo(5, "e", 1)});
        const sync = s2.last("sync");
        out.sync = [sync.since, client.rev, client.todos.some((t) => t.id === 5)];
        s2.deliver({type: "todos_delta", since: 6, rev: 9, request_id: sync.request_id,
                    data: {upserted: [todo(3, "c", 1), todo(5, "e", 1)], deleted: []}});
        out.afterSync = [client.rev, client.todos.map((t) => t.id)];

        // An edit from an old version: conflict, the server's copy wins, re-apply offered.
        const edit = client.updateTodo(1, {title: "mine"}, {ifVersion: 1});
        const frame = s2.last("update_todo");
        out.ifVersion = frame.if_version;
        s2.deliver({type: "error", code: "conflict", message: "moved on",
                    data: todo(1, "theirs", 2), request_id: frame.request_id});
        try { await edit; out.edit = "resolved"; }
        catch (e) { out.edit = [e.code, e.todo.title]; }
        const item = client.todos.find((t) => t.id === 1);
        out.conflict = [item.title, item.pending, item.conflict.changes.title];
        client.reapplyConflict(1).catch(() => {});
        const again = s2.last("update_todo");
        out.reapply = [again.payload.title, again.if_version,
                       again.idempotency_key !== frame.idempotency_key];
        out.conflictsAfter = client.conflicts.length;

        // Offline: a write is kept in storage, and a new client (a reload) sends it once
        // it is in sync, with the same key.
        s2.drop(1006);
        const offline = client.createTodo({title: "offline"});
        offline.catch(() => {});
        const stored = JSON.parse(storage.getItem("todo.outbox.7")).writes;
        const offlineKey = stored.find((w) => w.action === "create_todo").key;
        client.dispose();
        const reloaded = newClient(storage);
        await reloaded.login("ann", "pw");
        out.restored = reloaded.pendingWrites.map((w) => [w.action, w.key === offlineKey]);
        out.restoredView = reloaded.todos.map((t) => [t.title, t.pending]);
        await sleep(5);
        const s3 = sockets.at(-1);
        out.sentBeforeList = s3.sent.length;
        s3.deliver({type: "todos_list", rev: 10, data: [todo(1, "theirs", 3)]});
        out.resentAfterReload = s3.sent.filter((f) => f.idempotency_key === offlineKey).length;
        reloaded.dispose();
        return out;
        """,
    )
    assert result["firstUrlHasSince"] is False
    assert result["state"] == "open"
    assert result["view"] == [[1, False, None], [-1, True, "create"]]
    assert result["sentBeforeId"] == ["create_todo"]  # the update waits for the real id
    assert result["createHasKey"] is True
    assert result["stored"] == 2
    assert result["created"] == 2
    assert result["updateTodoId"] == 2
    assert result["stateAfterDrop"] == "reconnecting"
    assert result["resumeUrl"].endswith("?token=T&since=5")
    assert result["sameKey"] is True
    assert result["newRequestId"] is True
    assert result["toggled"] is True
    assert result["outboxAfter"] is None
    assert result["rev"] == 6
    assert result["sync"] == [6, 6, False]
    assert result["afterSync"] == [9, [1, 2, 3, 5]]
    assert result["ifVersion"] == 1
    assert result["edit"] == ["conflict", "theirs"]
    assert result["conflict"] == ["theirs", None, "mine"]
    assert result["reapply"] == ["mine", 2, True]
    assert result["conflictsAfter"] == 0
    assert result["restored"] == [["update_todo", False], ["create_todo", True]]
    assert result["restoredView"] == [["offline", "create"]]
    assert result["sentBeforeList"] == 0
    assert result["resentAfterReload"] == 1


async def test_a_renewed_token_is_handed_to_the_open_socket(lib_page: Page) -> None:
    result = await run(
        lib_page,
        FAKE_SERVER
        + """
        const client = newClient(null, 1);  // 1 s tokens: renewed after 1 s
        await client.login("ann", "pw");
        await sleep(5);
        sockets[0].deliver({type: "todos_list", rev: 0, data: []});
        await sleep(1300);
        const frames = sockets[0].sent.filter((f) => f.action === "refresh_token");
        const out = {sockets: sockets.length, frames: frames.length,
                     refreshed: client.auth.refreshed,
                     tokenIsNew: frames.length > 0 && frames[0].payload.token !== null};
        // The server refusing it leaves the socket alone (it expires at the old exp).
        sockets[0].deliver({type: "error", code: "auth_failed", message: "no",
                            request_id: frames[0].request_id});
        out.stateAfterRefusal = client.state;
        client.dispose();
        return out;
        """,
    )
    assert result == {
        "sockets": 1,
        "frames": 1,
        "refreshed": 1,
        "tokenIsNew": True,
        "stateAfterRefusal": "open",
    }

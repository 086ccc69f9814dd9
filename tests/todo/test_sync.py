"""CONTRACT.md section 6 (protocol 1.1), through a real gateway in front of a real todo
service, on SQLite and PostgreSQL: `version`, the per-user `rev`, resuming with `?since=`
and the in-band `sync`, and how long deletions and idempotency keys are remembered.

Elsewhere: gap-free delivery under concurrent writes (test_gap_free.py), `if_version` and
`idempotency_key` (test_exactly_once.py), `refresh_token` (test_token_refresh.py).

Settings these tests use (read by the todo service):
- `TODO_TOMBSTONE_TTL` (s, default 604800): deletions are remembered at least this long.
- `IDEMPOTENCY_TTL` (s, default 86400): idempotency keys are remembered this long.
- `TODO_PURGE_INTERVAL` (s, default 300): time between background purges of both.
- `WS_RATE_LIMIT=0`: no rate limit, for the bursts below.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_db_url
from tests.todo.conftest import GatewayStack, start_gateway_stack
from tests.todo.synctools import (
    State,
    apply_event,
    by_id,
    check_delta,
    connect,
    create,
    created,
    delete,
    first_message,
    listing,
    new_key,
    rid,
    update,
    without_request_id,
)
from tests.todo.wsclient import Socket, Tokens, new_user_id

pytestmark = pytest.mark.usefixtures("close_sync_sockets")

# ---------------------------------------------------------------- versions and revisions


async def test_a_new_user_is_at_rev_0(gateway_stack: GatewayStack, tokens: Tokens) -> None:
    sock, first = await connect(gateway_stack, tokens, new_user_id())
    assert first == {"type": "todos_list", "data": [], "rev": 0}
    marker = rid()
    reply = await sock.request({"action": "get_all_todos", "request_id": marker})
    assert reply == {"type": "todos_list", "data": [], "rev": 0, "request_id": marker}
    await sock.close()


async def test_version_and_rev_count_every_committed_change(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    watcher, _ = await connect(gateway_stack, tokens, user)

    replies = [await created(sock, "first", request_id="c1")]
    assert replies[0]["rev"] == 1 and replies[0]["data"]["version"] == 1
    assert replies[0]["request_id"] == "c1"
    todo_id = replies[0]["data"]["id"]
    replies.append(await update(sock, todo_id, {"title": "renamed"}))
    replies.append(await update(sock, todo_id, {"completed": True}))
    assert [(r["type"], r["rev"], r["data"]["version"]) for r in replies[1:]] == [
        ("todo_updated", 2, 2),
        ("todo_updated", 3, 3),
    ]
    replies.append(await created(sock, "second"))
    assert replies[-1]["rev"] == 4 and replies[-1]["data"]["version"] == 1

    # Writes that fail commit nothing and take no revision.
    assert (await update(sock, todo_id + 10**6, {"title": "x"}))["code"] == "not_found"
    assert (await delete(sock, todo_id + 10**6))["code"] == "not_found"
    assert (await create(sock, ""))["code"] == "validation_error"
    assert (await update(sock, todo_id, {"bogus": 1}))["code"] == "validation_error"

    replies.append(await delete(sock, todo_id, request_id="d1"))
    assert replies[-1] == {
        "type": "todo_deleted",
        "rev": 5,
        "data": {"todo_id": todo_id},
        "request_id": "d1",
    }

    # The other socket saw the same five changes, with the same revs, without request ids.
    seen = [await watcher.recv() for _ in replies]
    assert seen == [without_request_id(r) for r in replies]
    await watcher.expect_nothing_pending()

    now = await listing(sock)
    assert now["rev"] == 5 and now["data"] == [replies[3]["data"]]
    again, first = await connect(gateway_stack, tokens, user)
    assert first == {"type": "todos_list", "data": [replies[3]["data"]], "rev": 5}
    for s in (sock, watcher, again):
        await s.close()


async def test_revisions_are_per_user(gateway_stack: GatewayStack, tokens: Tokens) -> None:
    alice, _ = await connect(gateway_stack, tokens, new_user_id())
    bob, _ = await connect(gateway_stack, tokens, new_user_id())
    for i in range(3):
        assert (await created(alice, f"a{i}"))["rev"] == i + 1
    assert (await created(bob, "b"))["rev"] == 1
    assert (await listing(alice))["rev"] == 3 and (await listing(bob))["rev"] == 1
    await alice.close()
    await bob.close()


async def test_ids_are_never_reused(gateway_stack: GatewayStack, tokens: Tokens) -> None:
    # A resume names deleted todos by id: a new todo must never take a deleted one's id.
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    newest = await created(sock, "newest in the table")
    await delete(sock, newest["data"]["id"])
    after = await created(sock, "after")
    assert after["data"]["id"] != newest["data"]["id"]
    delta = await first_message(gateway_stack, tokens, user, 1)
    assert delta["data"] == {"upserted": [after["data"]], "deleted": [newest["data"]["id"]]}
    await sock.close()


# ---------------------------------------------------------------- resuming


async def make_history(sock: Socket) -> list[State]:
    """Creates, updates and deletes; `states[r]` is the user's todos at revision r."""
    states: list[State] = [{}]

    async def step(reply: dict[str, Any]) -> dict[str, Any]:
        assert reply["rev"] == len(states), reply
        states.append(apply_event(states[-1], reply))
        return reply

    a, b, c, _d, g = [(await step(await created(sock, t)))["data"]["id"] for t in "abcdg"]
    await step(await update(sock, b, {"title": "b2"}))
    await step(await delete(sock, c))
    e = (await step(await created(sock, "e")))["data"]["id"]
    f = (await step(await created(sock, "f")))["data"]["id"]
    await step(await delete(sock, f))
    await step(await update(sock, a, {"completed": True}))
    await step(await update(sock, a, {"description": "now with text"}))
    await step(await update(sock, e, {"title": "e2"}))
    await step(await update(sock, g, {"title": "g2"}))
    await step(await delete(sock, g))
    return states


async def test_resume_from_any_rev_gives_exactly_the_changes_after_it(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    states = await make_history(sock)
    now = await listing(sock)
    assert now["rev"] == len(states) - 1 and by_id(now["data"]) == states[-1]
    for since in range(len(states)):
        delta = await first_message(gateway_stack, tokens, user, since)
        assert delta["rev"] == len(states) - 1, delta
        check_delta(delta, since, states)
    await sock.close()


async def test_resume_at_the_current_rev_is_an_empty_delta_and_the_socket_is_live(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    # A user who never wrote anything is at rev 0, and since=0 is answerable.
    fresh, first = await connect(gateway_stack, tokens, user, since=0)
    assert first == {
        "type": "todos_delta",
        "since": 0,
        "rev": 0,
        "data": {"upserted": [], "deleted": []},
    }
    writer, _ = await connect(gateway_stack, tokens, user)
    made = await created(writer, "x")
    assert await fresh.recv() == without_request_id(made)

    resumed, first = await connect(gateway_stack, tokens, user, since=1)
    assert first == {
        "type": "todos_delta",
        "since": 1,
        "rev": 1,
        "data": {"upserted": [], "deleted": []},
    }
    # A resumed socket gets the user's later changes like any other.
    changed = await update(writer, made["data"]["id"], {"title": "y"})
    assert changed["rev"] == 2
    assert await resumed.recv() == without_request_id(changed)
    await resumed.expect_nothing_pending()
    for s in (fresh, writer, resumed):
        await s.close()


UNUSABLE_SINCE = ["ahead_by_one", "far_ahead", "-1", "abc", "1.5", "", "1e1", "0x1"]


@pytest.mark.parametrize("since", UNUSABLE_SINCE)
async def test_resume_with_an_unusable_since_gives_the_full_list(
    gateway_stack: GatewayStack, tokens: Tokens, since: str
) -> None:
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    a = await created(sock, "a")
    await created(sock, "b")
    await update(sock, a["data"]["id"], {"title": "a2"})
    now = await listing(sock)
    assert now["rev"] == 3
    value = {"ahead_by_one": "4", "far_ahead": str(10**30)}.get(since, since)
    first = await first_message(gateway_stack, tokens, user, value)
    assert first == without_request_id(now)
    await sock.close()


async def test_in_band_sync_gives_the_same_delta_with_the_request_id(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    watcher, _ = await connect(gateway_stack, tokens, user)
    states = await make_history(sock)
    for _ in range(len(states) - 1):
        await watcher.recv()
    current = len(states) - 1
    for since in (0, 3, 6, current):
        marker = rid()
        delta = await sock.request({"action": "sync", "since": since, "request_id": marker})
        assert delta["request_id"] == marker, delta
        assert delta["rev"] == current, delta
        check_delta(without_request_id(delta), since, states)
        at_connect = await first_message(gateway_stack, tokens, user, since)
        assert without_request_id(delta) == at_connect
    # The answer goes to the asker only.
    await watcher.expect_nothing_pending()
    await sock.close()
    await watcher.close()


@pytest.mark.parametrize(
    "since", [-1, "abc", 1.5, "3", None, True, [1], "ahead", 10**30, "absent"], ids=repr
)
async def test_in_band_sync_with_an_unusable_since_gives_the_list(
    gateway_stack: GatewayStack, tokens: Tokens, since: object
) -> None:
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    for title in "abcd":
        await created(sock, title)
    now = await listing(sock)
    message: dict[str, Any] = {"action": "sync", "request_id": "s"}
    if since != "absent":
        message["since"] = now["rev"] + 1 if since == "ahead" else since
    reply = await sock.request(message)
    assert reply == {**without_request_id(now), "request_id": "s"}
    await sock.close()


# ---------------------------------------------------------------- retention

TOMBSTONE_TTL = 1.0
IDEMPOTENCY_TTL = 1.0


@pytest.fixture(scope="module")
def retention_stack(
    backend: str, jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayStack]:
    """A second service, on a database of its own, that forgets after one second."""
    tmp: Path = tmp_path_factory.mktemp("retention")
    urls = make_db_url(backend, "retention", tmp)
    try:
        stack = start_gateway_stack(
            jwt_env,
            next(urls),
            tmp,
            WS_RATE_LIMIT="0",
            TODO_TOMBSTONE_TTL=str(TOMBSTONE_TTL),
            IDEMPOTENCY_TTL=str(IDEMPOTENCY_TTL),
            TODO_PURGE_INTERVAL="0.2",
        )
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        urls.close()


async def test_resuming_across_a_forgotten_deletion_gives_the_full_list(
    retention_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sock, _ = await connect(retention_stack, tokens, user)
    doomed = await created(sock, "doomed")
    kept = await created(sock, "kept")
    sent_at = time.monotonic()
    gone = await delete(sock, doomed["data"]["id"])
    assert gone["rev"] == 3
    # Within the TTL the deletion is still known.
    first = await first_message(retention_stack, tokens, user, 2)
    if time.monotonic() - sent_at < TOMBSTONE_TTL * 0.8:
        assert first["type"] == "todos_delta", first
        assert first["data"] == {"upserted": [], "deleted": [doomed["data"]["id"]]}

    # Once it is purged, a resume from before it can't be answered as a delta.
    deadline = time.monotonic() + 10
    while (first := await first_message(retention_stack, tokens, user, 2))["type"] != "todos_list":
        assert time.monotonic() < deadline, f"deletion still remembered: {first}"
        await asyncio.sleep(0.2)
    assert time.monotonic() - sent_at >= TOMBSTONE_TTL
    assert first == {"type": "todos_list", "data": [kept["data"]], "rev": 3}
    assert (await first_message(retention_stack, tokens, user, 0))["type"] == "todos_list"
    reply = await sock.request({"action": "sync", "since": 1, "request_id": "old"})
    assert reply == {**first, "request_id": "old"}

    # From the rev of the deletion on, nothing was forgotten: still a delta.
    assert await first_message(retention_stack, tokens, user, 3) == {
        "type": "todos_delta",
        "since": 3,
        "rev": 3,
        "data": {"upserted": [], "deleted": []},
    }
    later = await created(sock, "later")
    first = await first_message(retention_stack, tokens, user, 3)
    assert first == {
        "type": "todos_delta",
        "since": 3,
        "rev": 4,
        "data": {"upserted": [later["data"]], "deleted": []},
    }
    await sock.close()


async def test_an_idempotency_key_older_than_its_ttl_is_forgotten(
    retention_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sock, _ = await connect(retention_stack, tokens, user)
    key = new_key()
    sent_at = time.monotonic()
    first = await created(sock, "once", idempotency_key=key)
    again = await create(sock, "once", idempotency_key=key)
    if time.monotonic() - sent_at < IDEMPOTENCY_TTL * 0.8:
        assert again == first

    # Past the TTL (and a purge or two), the same message is a new write.
    await asyncio.sleep(IDEMPOTENCY_TTL + 1.0)
    deadline = time.monotonic() + 10
    while (repeat := await create(sock, "once", idempotency_key=key)) == first:
        assert time.monotonic() < deadline, "the key was never forgotten"
        await asyncio.sleep(IDEMPOTENCY_TTL + 0.5)
    assert repeat["type"] == "todo_created", repeat
    assert repeat["data"]["id"] != first["data"]["id"]
    assert repeat["rev"] == first["rev"] + 1
    assert len((await listing(sock))["data"]) == 2
    await sock.close()

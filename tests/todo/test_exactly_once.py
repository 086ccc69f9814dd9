"""CONTRACT.md section 6 (protocol 1.1), exactly-once writes through the gateway on SQLite
and PostgreSQL: `idempotency_key` on create, update and delete, the
`idempotency_key_reused` error, and malformed keys and versions (`invalid_message`).

How long keys are remembered (`IDEMPOTENCY_TTL`) is tested in test_sync.py, `if_version`
conflicts in test_if_version.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.todo.conftest import GatewayStack
from tests.todo.synctools import (
    assert_unchanged,
    connect,
    create,
    created,
    delete,
    listing,
    new_key,
    two_sockets,
    until_probe,
    update,
    without_request_id,
)
from tests.todo.wsclient import Tokens, new_user_id

pytestmark = pytest.mark.usefixtures("close_sync_sockets")


async def test_a_repeated_create_answers_the_first_reply_and_writes_once(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, watcher = await two_sockets(gateway_stack, tokens)
    message = {
        "action": "create_todo",
        "payload": {"title": "milk", "description": "2 l"},
        "idempotency_key": new_key(),
    }
    first = await sock.request({**message, "request_id": "first"})
    assert first["type"] == "todo_created" and first["rev"] == 1, first
    assert await sock.request({**message, "request_id": "again"}) == {
        **first,
        "request_id": "again",
    }
    assert await sock.request(message) == without_request_id(first)
    assert await watcher.recv() == without_request_id(first)
    await watcher.expect_nothing_pending()
    now = await listing(sock)
    assert now["rev"] == 1 and now["data"] == [first["data"]]
    await sock.close()
    await watcher.close()


async def test_a_repeat_on_a_new_socket_after_reconnecting_writes_nothing(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sock, _ = await connect(gateway_stack, tokens, user)
    watcher, _ = await connect(gateway_stack, tokens, user)
    message = {"action": "create_todo", "payload": {"title": "once"}, "idempotency_key": "k1"}
    first = await sock.request({**message, "request_id": "before"})
    assert await watcher.recv() == without_request_id(first)
    await sock.close()

    again, listed = await connect(gateway_stack, tokens, user)
    assert listed["data"] == [first["data"]]
    assert await again.request({**message, "request_id": "after"}) == {
        **first,
        "request_id": "after",
    }
    await watcher.expect_nothing_pending()
    assert (await listing(again))["data"] == [first["data"]]
    await again.close()
    await watcher.close()


async def test_a_repeated_update_answers_the_first_reply_even_after_later_changes(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, watcher = await two_sockets(gateway_stack, tokens)
    made = await created(sock, "v1")
    todo_id = made["data"]["id"]
    message = {
        "action": "update_todo",
        "todo_id": todo_id,
        "payload": {"title": "v2"},
        "idempotency_key": new_key(),
    }
    first = await sock.request({**message, "request_id": "u1"})
    assert first["rev"] == 2 and first["data"]["version"] == 2, first
    later = await update(sock, todo_id, {"title": "v3"})
    assert later["rev"] == 3
    for _ in range(3):
        await watcher.recv()

    before = await listing(sock)
    assert await sock.request({**message, "request_id": "u2"}) == {**first, "request_id": "u2"}
    await assert_unchanged(sock, watcher, before)
    assert before["data"] == [later["data"]]
    await sock.close()
    await watcher.close()


async def test_a_repeated_delete_answers_the_first_reply_not_not_found(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, watcher = await two_sockets(gateway_stack, tokens)
    made = await created(sock, "doomed")
    key = new_key()
    first = await delete(sock, made["data"]["id"], idempotency_key=key, request_id="d1")
    assert first == {
        "type": "todo_deleted",
        "rev": 2,
        "data": {"todo_id": made["data"]["id"]},
        "request_id": "d1",
    }
    await created(sock, "after")
    for _ in range(3):
        await watcher.recv()
    before = await listing(sock)
    repeat = await delete(sock, made["data"]["id"], idempotency_key=key, request_id="d2")
    assert repeat == {**first, "request_id": "d2"}
    await assert_unchanged(sock, watcher, before)
    await sock.close()
    await watcher.close()


async def test_a_repeat_answers_the_first_reply_whatever_became_of_the_todo(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, watcher = await two_sockets(gateway_stack, tokens)
    todo_id = (await created(sock, "v1"))["data"]["id"]
    guarded = {
        "action": "update_todo",
        "todo_id": todo_id,
        "payload": {"completed": True},
        "if_version": 1,
        "idempotency_key": new_key(),
    }
    first = await sock.request(guarded)
    assert first["type"] == "todo_updated" and first["data"]["version"] == 2, first
    # The todo is now at version 2: the repeat is still the first reply, not a conflict.
    assert await sock.request(guarded) == first
    gone = await delete(sock, todo_id)
    for _ in range(3):
        await watcher.recv()
    before = await listing(sock)
    # ... and not not_found once the todo is gone.
    assert await sock.request({**guarded, "request_id": "late"}) == {**first, "request_id": "late"}
    await assert_unchanged(sock, watcher, before)
    assert before["rev"] == gone["rev"] and before["data"] == []
    await sock.close()
    await watcher.close()


DIFFERENT_WRITES = {
    "other_title": {"action": "update_todo", "payload": {"title": "y"}},
    "more_fields": {"action": "update_todo", "payload": {"title": "x", "completed": True}},
    "other_todo_id": {"action": "update_todo", "payload": {"title": "x"}, "other": True},
    "delete": {"action": "delete_todo"},
    "create": {"action": "create_todo", "payload": {"title": "x"}, "no_todo_id": True},
}


@pytest.mark.parametrize("variant", list(DIFFERENT_WRITES))
async def test_the_same_key_for_a_different_write_is_rejected(
    gateway_stack: GatewayStack, tokens: Tokens, variant: str
) -> None:
    sock, watcher = await two_sockets(gateway_stack, tokens)
    a = (await created(sock, "a"))["data"]
    b = (await created(sock, "b"))["data"]
    key = new_key()
    original = {"action": "update_todo", "todo_id": a["id"], "payload": {"title": "x"}}
    first = await sock.request({**original, "idempotency_key": key})
    assert first["type"] == "todo_updated", first
    for _ in range(3):
        await watcher.recv()
    before = await listing(sock)

    spec = dict(DIFFERENT_WRITES[variant])
    message: dict[str, Any] = {"action": spec["action"], "idempotency_key": key, "request_id": "x"}
    if "payload" in spec:
        message["payload"] = spec["payload"]
    if not spec.get("no_todo_id"):
        message["todo_id"] = b["id"] if spec.get("other") else a["id"]
    reply = await sock.request(message)
    assert reply["type"] == "error" and reply["code"] == "idempotency_key_reused", reply
    assert reply["request_id"] == "x" and reply["message"]
    await assert_unchanged(sock, watcher, before)
    # The key still stands for the first write.
    assert await sock.request({**original, "idempotency_key": key}) == first
    await sock.close()
    await watcher.close()


async def test_keys_are_per_user(gateway_stack: GatewayStack, tokens: Tokens) -> None:
    alice, _ = await connect(gateway_stack, tokens, new_user_id())
    bob_id = new_user_id()
    bob, _ = await connect(gateway_stack, tokens, bob_id)
    key = new_key()
    theirs = await created(alice, "same", idempotency_key=key)
    mine = await created(bob, "same", idempotency_key=key)
    assert mine["data"]["id"] != theirs["data"]["id"]
    assert mine["data"]["owner_id"] == bob_id and mine["rev"] == 1
    assert (await listing(alice))["data"] == [theirs["data"]]
    assert (await listing(bob))["data"] == [mine["data"]]
    # A key one user used for an update is free for another user's delete.
    other_key = new_key()
    assert (await update(alice, theirs["data"]["id"], {"title": "t"}, idempotency_key=other_key))[
        "type"
    ] == "todo_updated"
    gone = await delete(bob, mine["data"]["id"], idempotency_key=other_key)
    assert gone["type"] == "todo_deleted" and gone["rev"] == 2, gone
    await alice.close()
    await bob.close()


async def test_a_write_that_failed_may_be_retried_with_its_key(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, _ = await connect(gateway_stack, tokens, new_user_id())
    key = new_key()
    # not_found is not remembered: the same message fails again, and the key is still free.
    for _ in range(2):
        assert (await delete(sock, 2**62, idempotency_key=key))["code"] == "not_found"
    made = await created(sock, "v1", idempotency_key=key)

    # conflict is not remembered either: a retry is evaluated afresh.
    todo_id = made["data"]["id"]
    key = new_key()
    stale = {
        "action": "update_todo",
        "todo_id": todo_id,
        "payload": {"title": "mine"},
        "if_version": 1,
        "idempotency_key": key,
    }
    v2 = await update(sock, todo_id, {"title": "v2"})
    assert (await sock.request(stale))["data"] == v2["data"]
    v3 = await update(sock, todo_id, {"title": "v3"})
    conflict = await sock.request(stale)
    assert conflict["code"] == "conflict" and conflict["data"] == v3["data"], conflict
    rebased = await sock.request({**stale, "if_version": 3})
    assert rebased["type"] == "todo_updated" and rebased["data"]["version"] == 4, rebased
    assert (await listing(sock))["data"] == [rebased["data"]]
    await sock.close()


async def test_concurrent_repeats_on_two_sockets_write_once(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    a, b, watcher = [(await connect(gateway_stack, tokens, user))[0] for _ in range(3)]
    rounds = 6
    for n in range(rounds):
        message = {
            "action": "create_todo",
            "payload": {"title": f"t{n}"},
            "idempotency_key": new_key(),
        }
        await asyncio.gather(
            a.send({**message, "request_id": "a"}), b.send({**message, "request_id": "b"})
        )
        replies = []
        for sock, name in ((a, "a"), (b, "b")):
            got = await until_probe(sock)
            mine = [m for m in got if m.get("request_id") == name]
            assert len(mine) == 1, got
            replies.append(mine[0])
            # Besides its reply, at most the other socket's write, as an event, once.
            assert all(without_request_id(m) == without_request_id(mine[0]) for m in got), got
            assert len(got) <= 2, got
        assert without_request_id(replies[0]) == without_request_id(replies[1])
        assert replies[0]["rev"] == n + 1
        assert await watcher.recv() == without_request_id(replies[0])
        await watcher.expect_nothing_pending()
    assert len((await listing(a))["data"]) == rounds
    for s in (a, b, watcher):
        await s.close()


BAD_KEYS: list[object] = ["", "k" * 65, 5, True, ["k"]]
BAD_VERSIONS: list[object] = [0, -1, "3", 2**31, True, 1.5]
# create_todo takes no if_version.
BAD_ENVELOPES = [
    pytest.param(action, field, value, id=f"{action}-{field}={value!r:.12}")
    for action in ("create_todo", "update_todo", "delete_todo")
    for field, values in (("idempotency_key", BAD_KEYS), ("if_version", BAD_VERSIONS))
    if not (action == "create_todo" and field == "if_version")
    for value in values
]


@pytest.mark.parametrize(("action", "field", "value"), BAD_ENVELOPES)
async def test_a_malformed_key_or_version_is_invalid_message_and_writes_nothing(
    gateway_stack: GatewayStack, tokens: Tokens, action: str, field: str, value: object
) -> None:
    sock, watcher = await two_sockets(gateway_stack, tokens)
    made = await created(sock, "v1")
    await watcher.recv()
    before = await listing(sock)
    message: dict[str, Any] = {"action": action, field: value, "request_id": "bad"}
    if action != "delete_todo":
        message["payload"] = {"title": "changed"}
    if action != "create_todo":
        message["todo_id"] = made["data"]["id"]
    reply = await sock.request(message)
    assert reply["type"] == "error" and reply["code"] == "invalid_message", reply
    assert reply["request_id"] == "bad"
    await assert_unchanged(sock, watcher, before)
    await sock.close()
    await watcher.close()


async def test_the_largest_valid_key_and_version_are_accepted(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, _ = await connect(gateway_stack, tokens, new_user_id())
    made = await created(sock, "v1", idempotency_key="k" * 64)
    assert await create(sock, "v1", idempotency_key="k" * 64) == made
    # 2**31 - 1 is a valid if_version: the todo is just not at that version.
    reply = await update(sock, made["data"]["id"], {"title": "x"}, if_version=2**31 - 1)
    assert reply["code"] == "conflict" and reply["data"] == made["data"], reply
    await sock.close()

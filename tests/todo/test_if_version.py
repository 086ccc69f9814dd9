"""CONTRACT.md section 6 (protocol 1.1), optimistic concurrency through the gateway on
SQLite and PostgreSQL: `update_todo` / `delete_todo` with `if_version`, the `conflict`
error carrying the current todo, and last-write-wins without it.

A malformed `if_version` is tested with the malformed keys in test_exactly_once.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.todo.conftest import GatewayStack
from tests.todo.synctools import (
    assert_unchanged,
    connect,
    created,
    delete,
    listing,
    two_sockets,
    until_probe,
    update,
    without_request_id,
)
from tests.todo.wsclient import Tokens, new_user_id

pytestmark = pytest.mark.usefixtures("close_sync_sockets")


@pytest.mark.parametrize("action", ["update_todo", "delete_todo"])
async def test_a_stale_if_version_conflicts_and_changes_nothing(
    gateway_stack: GatewayStack, tokens: Tokens, action: str
) -> None:
    sock, watcher = await two_sockets(gateway_stack, tokens)
    made = await created(sock, "v1")
    current = await update(sock, made["data"]["id"], {"title": "v2"})
    assert current["data"]["version"] == 2
    await watcher.recv()
    await watcher.recv()
    before = await listing(sock)

    attempt: dict[str, Any] = {"action": action, "todo_id": made["data"]["id"]}
    if action == "update_todo":
        attempt["payload"] = {"title": "mine"}
    for stale in (1, 3):
        reply = await sock.request({**attempt, "if_version": stale, "request_id": f"c{stale}"})
        assert reply["type"] == "error" and reply["code"] == "conflict", reply
        assert reply["request_id"] == f"c{stale}" and reply["message"]
        assert reply["data"] == current["data"]
        await assert_unchanged(sock, watcher, before)

    reply = await sock.request({**attempt, "if_version": 2, "request_id": "ok"})
    assert reply["request_id"] == "ok" and reply["rev"] == 3, reply
    if action == "update_todo":
        assert reply["type"] == "todo_updated"
        assert reply["data"]["version"] == 3 and reply["data"]["title"] == "mine"
    else:
        assert reply["type"] == "todo_deleted"
    assert await watcher.recv() == without_request_id(reply)
    await sock.close()
    await watcher.close()


@pytest.mark.parametrize("action", ["update_todo", "delete_todo"])
async def test_racing_writes_with_the_same_if_version_one_wins(
    gateway_stack: GatewayStack, tokens: Tokens, action: str
) -> None:
    sock, other = await two_sockets(gateway_stack, tokens)
    for n in range(5):
        made = await created(sock, f"race {n}")
        await other.recv()
        message: dict[str, Any] = {"action": action, "todo_id": made["data"]["id"]}
        if action == "update_todo":
            message["payload"] = {"title": f"race {n} won"}
        await asyncio.gather(
            sock.send({**message, "if_version": 1, "request_id": "mine"}),
            other.send({**message, "if_version": 1, "request_id": "theirs"}),
        )
        answers = []
        for s, name in ((sock, "mine"), (other, "theirs")):
            got = await until_probe(s)
            answers += [m for m in got if m.get("request_id") == name]
            # Besides its answer, at most the winner's change as an event.
            assert len(got) <= 2, got
        kinds = sorted(a["type"] if a["type"] != "error" else a["code"] for a in answers)
        if action == "update_todo":
            assert kinds == ["conflict", "todo_updated"], answers
            won = next(a for a in answers if a["type"] == "todo_updated")
            lost = next(a for a in answers if a["type"] == "error")
            assert won["data"]["version"] == 2 and lost["data"] == won["data"]
        else:
            # The loser finds the todo gone: there is no current todo to conflict with.
            assert kinds == ["not_found", "todo_deleted"], answers
        assert (await listing(sock))["rev"] == made["rev"] + 1
    await sock.close()
    await other.close()


async def test_without_if_version_the_last_write_wins(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, other = await two_sockets(gateway_stack, tokens)
    made = await created(sock, "v1")
    await other.recv()
    first = await update(sock, made["data"]["id"], {"title": "from sock"})
    assert await other.recv() == first
    second = await update(other, made["data"]["id"], {"title": "from other"})
    assert second["type"] == "todo_updated" and second["data"]["version"] == 3
    assert await sock.recv() == second
    assert (await listing(sock))["data"] == [second["data"]]
    await sock.close()
    await other.close()


async def test_if_version_on_a_missing_todo_is_not_found(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    sock, _ = await connect(gateway_stack, tokens, new_user_id())
    stranger, _ = await connect(gateway_stack, tokens, new_user_id())
    theirs = await created(stranger, "not yours")
    deleted = await created(sock, "gone")
    await delete(sock, deleted["data"]["id"])
    for todo_id in (theirs["data"]["id"], deleted["data"]["id"], 2**62):
        for message in (
            {"action": "update_todo", "todo_id": todo_id, "payload": {"title": "x"}},
            {"action": "delete_todo", "todo_id": todo_id},
        ):
            reply = await sock.request({**message, "if_version": 1, "request_id": "nf"})
            assert reply["type"] == "error" and reply["code"] == "not_found", reply
            # In particular, another user's todo is not shown in a `conflict`.
            assert "data" not in reply and reply["request_id"] == "nf"
    assert (await listing(stranger))["data"] == [theirs["data"]]
    await sock.close()
    await stranger.close()

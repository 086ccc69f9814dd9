"""CONTRACT.md section 6, gap-free delivery, through the gateway on SQLite and PostgreSQL:
however a user's sockets write at the same time, connect in the middle of a burst or ask
for lists meanwhile, each sees every change of its user once, in `rev` order, none skipped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.todo.conftest import GatewayStack
from tests.todo.synctools import (
    Replica,
    State,
    apply_event,
    by_id,
    check_delta,
    connect,
    created,
    listing,
    receive,
    without_request_id,
)
from tests.todo.wsclient import Socket, Tokens, new_user_id

pytestmark = pytest.mark.usefixtures("close_sync_sockets")


async def send_all(sock: Socket, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        await sock.send(message)


def mixed_writes(
    name: str, shared_id: int, count: int, doomed: list[int] | None = None
) -> list[dict[str, Any]]:
    """Updates of one shared todo, a create every third message, a delete of one of
    `doomed` every fifth while they last."""
    doomed = list(doomed or [])
    messages: list[dict[str, Any]] = []
    for i in range(count):
        message: dict[str, Any]
        if i % 5 == 4 and doomed:
            message = {"action": "delete_todo", "todo_id": doomed.pop()}
        elif i % 3 == 2:
            message = {"action": "create_todo", "payload": {"title": f"{name}-{i}"}}
        else:
            payload = {"title": f"{name}-{i}"}
            message = {"action": "update_todo", "todo_id": shared_id, "payload": payload}
        messages.append({**message, "request_id": f"{name}-{i}"})
    return messages


async def history_with_burst(
    writer: Socket, count: int
) -> tuple[list[State], list[dict[str, Any]], asyncio.Task[None]]:
    """A shared todo and six doomed ones, then `count` writes sent without waiting.

    Returns the states before the burst (`states[r]` at revision r), the burst's messages
    and the task sending them.
    """
    states: list[State] = [{}]
    for title in ["shared"] + [f"doomed {i}" for i in range(6)]:
        states.append(apply_event(states[-1], await created(writer, title)))
    shared_id = min(states[1])
    messages = mixed_writes("w", shared_id, count, sorted(states[-1].keys() - {shared_id}))
    return states, messages, asyncio.create_task(send_all(writer, messages))


async def test_concurrent_writers_every_socket_sees_every_rev_in_order(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    sockets = [(await connect(gateway_stack, tokens, user))[0] for _ in range(3)]
    shared = await created(sockets[0], "shared")
    doomed = [(await created(sockets[0], f"doomed {i}"))["data"]["id"] for i in range(6)]
    for other in sockets[1:]:
        assert without_request_id(await other.recv()) == without_request_id(shared)
        await receive(other, len(doomed))
    base = shared["rev"] + len(doomed)

    # Each socket: updates of the shared todo, creates, and deletes of two doomed todos.
    requests = [
        mixed_writes(f"s{n}", shared["data"]["id"], 15, doomed[2 * n : 2 * n + 2])
        for n in range(len(sockets))
    ]
    await asyncio.gather(*(send_all(s, m) for s, m in zip(sockets, requests, strict=True)))
    total = sum(len(m) for m in requests)
    streams = await asyncio.gather(*(receive(s, total) for s in sockets))

    for n, stream in enumerate(streams):
        assert [m["rev"] for m in stream] == list(range(base + 1, base + total + 1)), n
        own = [m["request_id"] for m in stream if "request_id" in m]
        # Its own replies, in the order it sent the requests; the others' copies bare.
        assert own == [m["request_id"] for m in requests[n]]
    # One change per rev: every socket saw the same thing at each rev.
    for copies in zip(*streams, strict=True):
        assert len({repr(without_request_id(c)) for c in copies}) == 1, copies
    # No lost update: the shared todo's version went up by one per update, in rev order.
    versions = [
        m["data"]["version"]
        for m in streams[0]
        if m["type"] == "todo_updated" and m["data"]["id"] == shared["data"]["id"]
    ]
    updates = sum(1 for m in requests for r in m if r["action"] == "update_todo")
    assert versions == list(range(2, updates + 2))
    final = await listing(sockets[1])
    assert final["rev"] == base + total
    assert by_id(final["data"])[shared["data"]["id"]]["version"] == updates + 1
    for s in sockets:
        await s.close()


async def test_sockets_opened_during_a_burst_miss_nothing(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    writer, _ = await connect(gateway_stack, tokens, user)
    states, messages, burst = await history_with_burst(writer, 90)

    # Plain connects and resumes (from 0 and from the shared todo's creation) mid-burst.
    joined: list[tuple[Socket, Replica]] = []
    for n in range(9):
        since = [None, 0, 1][n % 3]
        sock, first = await connect(gateway_stack, tokens, user, since=since)
        assert first["type"] == ("todos_list" if since is None else "todos_delta"), first
        if since is None:
            joined.append((sock, Replica(first)))
        else:
            joined.append((sock, Replica(first, since, states[since])))
    await burst
    replies = await receive(writer, len(messages))
    assert [r["request_id"] for r in replies] == [m["request_id"] for m in messages]
    final = await listing(writer)
    assert final["rev"] == len(states) - 1 + len(messages)

    for sock, replica in joined:
        while replica.rev < final["rev"]:
            replica.apply(await sock.recv())
        assert replica.state == by_id(final["data"])
        await sock.expect_nothing_pending()
        await sock.close()
    await writer.close()


async def test_lists_and_syncs_asked_for_mid_burst_are_exact_and_keep_the_socket_whole(
    gateway_stack: GatewayStack, tokens: Tokens
) -> None:
    user = new_user_id()
    writer, _ = await connect(gateway_stack, tokens, user)
    reader, first = await connect(gateway_stack, tokens, user)
    replica = Replica(first)
    states, messages, burst = await history_with_burst(writer, 90)

    snapshots: list[dict[str, Any]] = []

    def take(message: dict[str, Any]) -> None:
        if message["type"] in {"todos_list", "todos_delta"}:
            snapshots.append(message)
        replica.apply(message)

    for n in range(12):
        request_id = f"ask-{n}"
        if n % 2:
            await reader.send({"action": "get_all_todos", "request_id": request_id})
        else:
            await reader.send({"action": "sync", "since": replica.rev, "request_id": request_id})
        # Read what has come so far, up to this request's answer.
        while (message := await reader.recv()).get("request_id") != request_id:
            take(message)
        take(without_request_id(message))
    await burst
    for reply in await receive(writer, len(messages)):
        assert reply["rev"] == len(states), reply
        states.append(apply_event(states[-1], reply))
    final = await listing(writer)
    assert final["rev"] == len(states) - 1
    while replica.rev < final["rev"]:
        take(await reader.recv())
    assert replica.state == by_id(final["data"])
    await reader.expect_nothing_pending()

    # Every list and delta the reader got was exactly the state at its own rev.
    for snapshot in snapshots:
        if snapshot["type"] == "todos_list":
            assert by_id(snapshot["data"]) == states[snapshot["rev"]], snapshot
        else:
            check_delta(snapshot, snapshot["since"], states)
    await reader.close()
    await writer.close()

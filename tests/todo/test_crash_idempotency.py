"""Exactly-once writes survive a crash (CONTRACT.md section 6, "Exactly-once writes").

A write is acknowledged only once committed, and its `idempotency_key` is remembered with
it. So after the service is killed with SIGKILL right after the last acknowledgement and
started again on the same database, repeating every write with its key on a new socket
changes nothing and answers each with its first reply (same `rev`, same data, even for a
todo that has changed or gone since), with the new `request_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ServiceProcess
from tests.todo.conftest import start_todo_service
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_user_socket

CREATES = 8
DELETES = 2  # of the created todos, after every one of them was updated once


@pytest.fixture
def server(todo_db_url: str, jwt_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    """A server of this test's own (it gets killed), on the module's database."""
    started = start_todo_service(jwt_env, todo_db_url, tmp_path)
    yield started
    started.stop()


def keyed_writes() -> list[dict[str, Any]]:
    """The creates, with their keys; updates and deletes get their todo ids later."""
    return [
        {
            "action": "create_todo",
            "payload": {
                "title": f"crash {i}",
                "description": None if i % 2 else f"before the crash {i}",
                "completed": i % 3 == 0,
            },
            "idempotency_key": str(uuid.uuid4()),
        }
        for i in range(CREATES)
    ]


async def send_acknowledged(sock: Socket, write: dict[str, Any], request_id: str) -> dict[str, Any]:
    reply = await sock.request({**write, "request_id": request_id})
    assert reply.get("request_id") == request_id, reply
    return reply


def without_request_id(message: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in message.items() if name != "request_id"}


async def test_keyed_writes_repeated_after_kill_9_answer_the_first_replies_and_change_nothing(
    server: ServiceProcess, tokens: Tokens
) -> None:
    user = new_user_id()
    sock = await open_user_socket(server, tokens, user)
    assert sock.initial["rev"] == 0  # type: ignore[attr-defined]

    writes = keyed_writes()
    acks = [await send_acknowledged(sock, write, f"first-{n}") for n, write in enumerate(writes)]
    assert [a["type"] for a in acks] == ["todo_created"] * CREATES, acks
    created = [a["data"] for a in acks]
    assert all(todo["version"] == 1 for todo in created)
    for n, todo in enumerate(created):
        update = {
            "action": "update_todo",
            "todo_id": todo["id"],
            "payload": {"title": f"{todo['title']} edited", "completed": not todo["completed"]},
            "idempotency_key": str(uuid.uuid4()),
        }
        writes.append(update)
        ack = await send_acknowledged(sock, update, f"first-{CREATES + n}")
        assert ack["type"] == "todo_updated" and ack["data"]["version"] == 2, ack
        acks.append(ack)
    for n, todo in enumerate(created[:DELETES]):
        delete = {"action": "delete_todo", "todo_id": todo["id"], "idempotency_key": f"del-{n}"}
        writes.append(delete)
        ack = await send_acknowledged(sock, delete, f"first-{2 * CREATES + n}")
        assert ack == {
            "type": "todo_deleted",
            "rev": 2 * CREATES + n + 1,
            "data": {"todo_id": todo["id"]},
            "request_id": f"first-{2 * CREATES + n}",
        }
        acks.append(ack)
    # A fresh user's changes get the revisions 1, 2, 3, ... in the order they committed.
    assert [a["rev"] for a in acks] == list(range(1, len(acks) + 1))

    # SIGKILL right after the last acknowledgement: no shutdown, no flush, no goodbye.
    server.kill()
    await sock.close()
    server.restart()

    # Every acknowledged write is there, as acknowledged.
    deleted = {todo["id"] for todo in created[:DELETES]}
    expected = [a["data"] for a in acks[CREATES : 2 * CREATES] if a["data"]["id"] not in deleted]
    watcher = await open_user_socket(server, tokens, user)
    again = await open_user_socket(server, tokens, user)
    for listed in (watcher.initial, again.initial):  # type: ignore[attr-defined]
        assert listed["rev"] == len(acks), "the user's rev after the restart"
        assert listed["data"] == expected, "the todos after the restart"

    # The same writes with the same keys, on a new socket: the first replies, nothing new.
    for n, (write, ack) in enumerate(zip(writes, acks, strict=True)):
        repeat = await send_acknowledged(again, write, f"again-{n}")
        assert without_request_id(repeat) == without_request_id(ack), (
            f"repeating {write} after the restart answered {repeat}, the first reply was {ack}"
        )

    # The same key with another write is refused, after the restart too.
    reused = {**writes[0], "payload": {"title": "not the first payload"}}
    refused = await send_acknowledged(again, reused, "reused")
    assert refused["type"] == "error" and refused["code"] == "idempotency_key_reused", refused

    listed = await again.request({"action": "get_all_todos", "request_id": "after"})
    assert listed["rev"] == len(acks), "a repeated write changed the user's rev"
    assert listed["data"] == expected, "a repeated write changed the todos"
    # The repeats sent nothing to the user's other socket.
    await watcher.expect_nothing_pending()
    await watcher.close()
    await again.close()

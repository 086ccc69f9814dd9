"""Load for the fault tests: one writer per user, each keeping a ledger of what the service
acknowledged, and the check that a database still holds every acknowledged write.

A write the service did not acknowledge (no reply, `internal_error`, the socket cut) may
or may not have committed. Each committed change takes the user's next `rev` (1, 2, 3...),
so the check is: every acknowledged delete is gone, every todo at its last acknowledged
version is exactly as acknowledged, and the todos that differ from the ledger (missing, at
a later version, or never acknowledged at all) are no more than the committed changes that
were never acknowledged (the user's `rev` minus the acknowledged ones).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.support import ServiceProcess
from tests.todo.wsclient import Socket, Tokens, open_user_socket

REPLY_TIMEOUT = 10.0


@dataclass
class Ledger:
    """What the service acknowledged to one user."""

    user: int
    todos: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> last acked state
    deleted: set[int] = field(default_factory=set)
    acked_revs: set[int] = field(default_factory=set)
    acks: int = 0
    failures: int = 0  # error replies (e.g. internal_error while the database is down)
    last_ack_at: float = 0.0

    def record(self, reply: dict[str, Any]) -> None:
        kind = reply.get("type")
        if kind == "error":
            self.failures += 1
            return
        if kind in ("todo_created", "todo_updated"):
            self.todos[reply["data"]["id"]] = reply["data"]
        elif kind == "todo_deleted":
            todo_id = reply["data"]["todo_id"]
            self.todos.pop(todo_id, None)
            self.deleted.add(todo_id)
        else:
            return
        assert reply["rev"] not in self.acked_revs, f"rev {reply['rev']} acknowledged twice"
        self.acked_revs.add(reply["rev"])
        self.acks += 1
        self.last_ack_at = time.monotonic()

    def next_write(self, n: int) -> dict[str, Any]:
        """Mostly creates; every third an update, every seventh a delete (of its own todos)."""
        live = sorted(self.todos)
        if live and n % 7 == 0:
            return {"action": "delete_todo", "todo_id": live[0]}
        if live and n % 3 == 0:
            todo_id = live[n % len(live)]
            return {"action": "update_todo", "todo_id": todo_id, "payload": {"title": f"u{n}"}}
        return {"action": "create_todo", "payload": {"title": f"c{n}", "description": "x" * 50}}


async def write_until_stopped(
    server: ServiceProcess,
    tokens: Tokens,
    ledger: Ledger,
    stop: asyncio.Event,
    reconnect: bool,
) -> None:
    """Send writes one after another on a socket of `ledger.user` until `stop` is set.

    When the socket is cut: give up, or (`reconnect`) open a new one and go on."""
    counter = itertools.count(1)
    while not stop.is_set():
        try:
            sock = await open_user_socket(server, tokens, ledger.user)
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
            if not reconnect:
                return
            await asyncio.sleep(0.2)
            continue
        try:
            await _write_on(sock, ledger, stop, counter)
        except (ConnectionClosed, TimeoutError, OSError):
            if not reconnect:
                return
        finally:
            await sock.close()


async def _write_on(
    sock: Socket, ledger: Ledger, stop: asyncio.Event, counter: itertools.count[int]
) -> None:
    while not stop.is_set():
        n = next(counter)
        await sock.send({**ledger.next_write(n), "request_id": f"w{n}"})
        reply = await sock.recv(REPLY_TIMEOUT)
        # Before the reply may come a `todos_delta` (a change committed while its event could
        # not be sent: its write was answered `internal_error`); it acknowledges nothing.
        while reply.get("request_id") is None and reply["type"] == "todos_delta":
            reply = await sock.recv(REPLY_TIMEOUT)
        assert reply.get("request_id") == f"w{n}", reply  # one socket per user: own replies
        ledger.record(reply)
        if reply.get("type") == "error":
            await asyncio.sleep(0.05)  # the database is away: don't spin


async def listed_state(server: ServiceProcess, tokens: Tokens, user: int) -> dict[str, Any]:
    """The user's `todos_list` on a fresh socket."""
    sock = await open_user_socket(server, tokens, user)
    await sock.close()
    return dict(sock.initial)  # type: ignore[attr-defined]


def check_ledger(listed: dict[str, Any], ledger: Ledger) -> None:
    """Every write acknowledged to `ledger.user` is in `listed` (see the module doc)."""
    todos = {todo["id"]: todo for todo in listed["data"]}
    who = f"user {ledger.user}"
    assert all(rev <= listed["rev"] for rev in ledger.acked_revs), f"{who}: rev went back"
    unacknowledged = listed["rev"] - len(ledger.acked_revs)  # committed, never acknowledged
    for todo_id in ledger.deleted:
        assert todo_id not in todos, f"{who}: acknowledged delete of {todo_id} lost"
    differing = [todo_id for todo_id in todos if todo_id not in ledger.todos]
    for todo_id, acked in ledger.todos.items():
        now = todos.get(todo_id)
        if now is None or now["version"] != acked["version"]:
            differing.append(todo_id)
            assert now is None or now["version"] > acked["version"], f"{who}: {now} {acked}"
        else:
            assert now == acked, f"{who}: {now} is not what was acknowledged: {acked}"
    assert len(differing) <= unacknowledged, (
        f"{who}: todos {differing} differ from what was acknowledged, but only "
        f"{unacknowledged} committed changes were not acknowledged"
    )

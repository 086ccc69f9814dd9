"""Helpers for the protocol 1.1 tests (CONTRACT.md section 6): sockets through the gateway,
writes that return the whole reply, and the client side of a `todos_delta`."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tests.todo.wsclient import Socket, Tokens, new_user_id, open_socket

if TYPE_CHECKING:
    from tests.todo.conftest import GatewayStack

Todo = dict[str, Any]
State = dict[int, Todo]

# Every socket `connect` opened, for the `close_sync_sockets` fixture (conftest.py) to
# close after each test, passed or failed.
OPENED: list[Socket] = []


async def connect(
    stack: GatewayStack,
    tokens: Tokens,
    user_id: int,
    since: object = None,
    ttl: int = 300,
    token: str | None = None,
) -> tuple[Socket, dict[str, Any]]:
    """A socket of `user_id` through the gateway (`?since=` if given) and its first message.

    The token is a fresh one for `ttl` seconds unless `token` is given.
    """
    token = token if token is not None else tokens.valid(user_id, ttl)
    sock = await open_socket(stack.gateway, token, since=since)
    OPENED.append(sock)
    return sock, await sock.recv()


async def first_message(
    stack: GatewayStack, tokens: Tokens, user_id: int, since: object = None
) -> dict[str, Any]:
    """The first message of a socket opened with `?since=`; the socket is closed again."""
    sock, first = await connect(stack, tokens, user_id, since)
    await sock.close()
    return first


def rid() -> str:
    return f"r-{secrets.token_hex(4)}"


def new_key() -> str:
    return f"k-{secrets.token_hex(8)}"


async def create(sock: Socket, title: str = "todo", **extra: Any) -> dict[str, Any]:
    """Send `create_todo` (envelope fields such as `idempotency_key` in `extra`); the reply."""
    return await sock.request({"action": "create_todo", "payload": {"title": title}, **extra})


async def update(
    sock: Socket, todo_id: int, payload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return await sock.request(
        {"action": "update_todo", "todo_id": todo_id, "payload": payload, **extra}
    )


async def delete(sock: Socket, todo_id: int, **extra: Any) -> dict[str, Any]:
    return await sock.request({"action": "delete_todo", "todo_id": todo_id, **extra})


async def created(sock: Socket, title: str = "todo", **extra: Any) -> dict[str, Any]:
    """`create` that must succeed."""
    reply = await create(sock, title, **extra)
    assert reply["type"] == "todo_created", reply
    return reply


async def listing(sock: Socket) -> dict[str, Any]:
    """A fresh `todos_list` (with its `rev`) for this socket's user."""
    marker = rid()
    reply = await sock.request({"action": "get_all_todos", "request_id": marker})
    assert reply["type"] == "todos_list" and reply["request_id"] == marker, reply
    return reply


def by_id(todos: list[Todo]) -> State:
    return {todo["id"]: todo for todo in todos}


def apply_delta(state: State, delta: dict[str, Any]) -> State:
    """What a client does with a `todos_delta`: drop the deleted ids, upsert the rest."""
    result = {k: v for k, v in state.items() if k not in set(delta["data"]["deleted"])}
    result.update(by_id(delta["data"]["upserted"]))
    return result


def apply_event(state: State, event: dict[str, Any]) -> State:
    """What a client does with one `todo_created` / `todo_updated` / `todo_deleted`."""
    result = dict(state)
    if event["type"] == "todo_deleted":
        del result[event["data"]["todo_id"]]
    else:
        assert event["type"] in {"todo_created", "todo_updated"}, event
        result[event["data"]["id"]] = event["data"]
    return result


def without_request_id(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "request_id"}


def assert_utc_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    offset = parsed.utcoffset()
    assert offset is not None and offset.total_seconds() == 0, value
    assert "T" in value, value
    return parsed


async def receive(sock: Socket, count: int) -> list[dict[str, Any]]:
    return [await sock.recv() for _ in range(count)]


async def two_sockets(stack: GatewayStack, tokens: Tokens) -> tuple[Socket, Socket]:
    """A fresh user's socket to write on, and a second one that watches."""
    user = new_user_id()
    return (await connect(stack, tokens, user))[0], (await connect(stack, tokens, user))[0]


async def assert_unchanged(sock: Socket, watcher: Socket, before: dict[str, Any]) -> None:
    """Nothing was written since `before` (a `listing`), and no event reached `watcher`."""
    await watcher.expect_nothing_pending()
    assert without_request_id(await listing(sock)) == without_request_id(before)


async def until_probe(sock: Socket) -> list[dict[str, Any]]:
    """Every message that arrives before the reply to a fresh `get_all_todos`."""
    marker = rid()
    await sock.send({"action": "get_all_todos", "request_id": marker})
    got = []
    while (message := await sock.recv()).get("request_id") != marker:
        got.append(message)
    return got


class Replica:
    """A client's copy of its user's todos, kept the way the contract tells a client to.

    A list replaces the copy; a delta from a revision the client holds (or an earlier one)
    is applied; an event at or below the held revision is ignored, the next one applied.
    Anything else (an event or delta beyond the next revision) is a gap: an AssertionError.
    """

    def __init__(self, first: dict[str, Any], rev: int = -1, state: State | None = None) -> None:
        """`first` is the socket's first message; `rev` and `state` what it resumed from."""
        self.state: State = state or {}
        self.rev = rev
        self.apply(first)

    def apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "todos_list":
            self.state, self.rev = by_id(message["data"]), message["rev"]
        elif kind == "todos_delta":
            assert message["since"] <= self.rev, f"gap: delta {message} at rev {self.rev}"
            self.state, self.rev = apply_delta(self.state, message), message["rev"]
        elif kind in {"todo_created", "todo_updated", "todo_deleted"}:
            if message["rev"] <= self.rev:
                return
            assert message["rev"] == self.rev + 1, f"gap: {message} at rev {self.rev}"
            self.state, self.rev = apply_event(self.state, message), message["rev"]
        else:
            raise AssertionError(f"unexpected message {message}")


def check_delta(delta: dict[str, Any], since: int, states: list[State]) -> None:
    """`delta` is the exact answer to `since` for a user whose history is `states`
    (`states[r]`: the todos at revision r; the delta's own `rev` picks the end)."""
    assert delta["type"] == "todos_delta", delta
    assert delta["since"] == since and 0 <= since <= delta["rev"] < len(states), delta
    then, now = states[since], states[delta["rev"]]
    changed = {i for i, todo in now.items() if then.get(i) != todo}
    upserted = delta["data"]["upserted"]
    assert sorted(t["id"] for t in upserted) == sorted(changed), (since, delta)
    assert all(todo == now[todo["id"]] for todo in upserted), delta
    deleted = delta["data"]["deleted"]
    gone = set(then) - set(now)
    ever_after = {i for s in states[since : delta["rev"] + 1] for i in s}
    assert len(deleted) == len(set(deleted)), delta
    # Deleted after `since`; one created and deleted after it may be listed or not.
    assert gone <= set(deleted) <= ever_after - set(now), (since, delta)
    assert apply_delta(then, delta) == now

"""A todo replica killed behind the gateway: its clients move to a survivor, nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import start_gateway
from tests.support import (
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
    fanout_env,
)
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_socket

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def db_url() -> Iterator[str]:
    url = create_postgres_database("replica_loss")
    yield url
    drop_postgres_database(url)


async def connect_through(gateway: ServiceProcess, tokens: Tokens, user: int) -> Socket:
    sock = await open_socket(gateway, tokens.valid(user))
    sock.initial = await sock.recv()  # type: ignore[attr-defined]
    assert sock.initial["type"] == "todos_list"  # type: ignore[attr-defined]
    return sock


async def read_until_closed_or_quiet(sock: Socket, acknowledged: set[int]) -> int | None:
    """Collect acknowledged ids until the socket closes (its code) or goes quiet (None)."""
    try:
        while True:
            message = await sock.recv(timeout=2)
            if message["type"] == "todo_created":
                acknowledged.add(message["data"]["id"])
    except ConnectionClosed:
        return sock.ws.close_code
    except TimeoutError:
        return None


async def test_killed_replica_clients_reconnect_to_a_survivor_with_every_acknowledged_write(
    db_url: str, jwt_env: dict[str, str], jwt_secret: str, tmp_path: Path
) -> None:
    env = {**jwt_env, **fanout_env(db_url), "WS_RATE_LIMIT": "0"}
    replicas = [
        ServiceProcess("todo_ws_service", env, tmp_path, name=f"todo-{i}").start() for i in range(2)
    ]
    gateway = start_gateway(replicas[:1], replicas, tmp_path)  # auth is not used here
    tokens = Tokens(jwt_secret)
    user = new_user_id()
    try:
        # Round-robin puts one of these two sockets on each replica.
        first, second = [await connect_through(gateway, tokens, user) for _ in range(2)]
        acknowledged: set[int] = set()
        for n in range(20):
            reply = await first.request({"action": "create_todo", "payload": {"title": f"t{n}"}})
            acknowledged.add(reply["data"]["id"])
            await second.recv()  # the fan-out copy, whichever replica it lives on

        # Keep writing on both sockets while one replica dies without warning.
        for sock in (first, second):
            for n in range(10):
                await sock.send({"action": "create_todo", "payload": {"title": f"burst{n}"}})
        replicas[0].kill()
        outcomes = [
            await read_until_closed_or_quiet(sock, acknowledged) for sock in (first, second)
        ]
        # Exactly the socket on the dead replica was closed, with 1014 (never 1006).
        assert sorted(outcomes, key=str) == [1014, None], outcomes
        alive = (first, second)[outcomes.index(None)]
        assert (await alive.request({"action": "get_all_todos"}))["type"] == "todos_list"

        survivor = await connect_through(gateway, tokens, user)
        listed = {t["id"] for t in survivor.initial["data"]}  # type: ignore[attr-defined]
        assert acknowledged <= listed, f"lost acknowledged writes: {acknowledged - listed}"
        reply = await survivor.request({"action": "create_todo", "payload": {"title": "after"}})
        assert reply["type"] == "todo_created"
        await survivor.close()
    finally:
        gateway.stop()
        for replica in replicas:
            replica.stop()

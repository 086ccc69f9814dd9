"""Several todo replicas on one PostgreSQL database, fanned out through Redis.

Replicas are real processes; the machine's Redis carries the fan-out (each module run
uses its own channel prefix), except where Redis itself is restarted: there the test runs
a redis-server of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.gateway.conftest import wait_until
from tests.support import (
    REDIS_URL,
    RedisServer,
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
    fanout_env,
)
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_user_socket

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def start_replicas(
    count: int, jwt_env: dict[str, str], db_url: str, redis_url: str, log_dir: Path
) -> list[ServiceProcess]:
    """`count` replicas started together (they race for the migrations), all healthy."""
    env = {**jwt_env, **fanout_env(db_url, redis_url)}
    replicas = [
        ServiceProcess("todo_ws_service", env, log_dir, name=f"todo-{i}") for i in range(count)
    ]
    try:
        for replica in replicas:
            replica.start(wait=False)
        for replica in replicas:
            replica.wait_healthy(60)
    except BaseException:
        for replica in replicas:  # none may outlive a failed start
            replica.stop()
        raise
    return replicas


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    url = create_postgres_database("scale")
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="module")
def replicas(
    db_url: str, jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServiceProcess]]:
    started = start_replicas(3, jwt_env, db_url, REDIS_URL, tmp_path_factory.mktemp("scale"))
    yield started
    for replica in started:
        replica.stop()


@pytest.fixture(scope="session")
def tokens(jwt_secret: str) -> Tokens:
    return Tokens(jwt_secret)


async def test_replicas_started_together_migrate_once(
    replicas: list[ServiceProcess], db_url: str
) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT app, name FROM tortoise_migrations")
    finally:
        await conn.close()
    names = [(r["app"], r["name"]) for r in rows]
    assert names, "no migration recorded"
    assert len(names) == len(set(names)), f"a migration ran twice: {names}"


async def test_a_change_reaches_the_users_sockets_on_every_replica_once(
    replicas: list[ServiceProcess], tokens: Tokens
) -> None:
    owner, stranger = new_user_id(), new_user_id()
    sockets = [await open_user_socket(r, tokens, owner) for r in replicas]
    local_twin = await open_user_socket(replicas[0], tokens, owner)
    outsider = await open_user_socket(replicas[1], tokens, stranger)
    origin, others = sockets[0], [*sockets[1:], local_twin]
    try:
        await origin.send(
            {"action": "create_todo", "payload": {"title": "fan out"}, "request_id": "c1"}
        )
        reply = await origin.recv()
        assert reply["type"] == "todo_created" and reply["request_id"] == "c1"
        todo_id = reply["data"]["id"]
        for sock in others:
            event = await sock.recv()
            assert event == {"type": "todo_created", "rev": reply["rev"], "data": reply["data"]}

        await others[1].send(
            {
                "action": "update_todo",
                "todo_id": todo_id,
                "payload": {"completed": True},
                "request_id": "u1",
            }
        )
        updated = await others[1].recv()
        assert updated["request_id"] == "u1" and updated["data"]["completed"] is True
        for sock in [origin, others[0], others[2]]:
            assert (await sock.recv()) == {
                "type": "todo_updated",
                "rev": updated["rev"],
                "data": updated["data"],
            }

        await origin.send({"action": "delete_todo", "todo_id": todo_id})
        deleted = await origin.recv()
        assert deleted["type"] == "todo_deleted"
        for sock in others:
            assert (await sock.recv()) == {
                "type": "todo_deleted",
                "rev": deleted["rev"],
                "data": {"todo_id": todo_id},
            }

        # No duplicates anywhere, and nothing ever reached the other user.
        for sock in [*sockets, local_twin, outsider]:
            await sock.expect_nothing_pending()
    finally:
        for sock in [*sockets, local_twin, outsider]:
            await sock.close()


def readiness(replica: ServiceProcess) -> str:
    return str(httpx.get(f"{replica.url}/readyz", timeout=3).json()["status"])


async def test_redis_restart_resyncs_every_socket(
    db_url: str, jwt_env: dict[str, str], tokens: Tokens, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path).start()
    replicas = start_replicas(2, jwt_env, db_url, redis.url, tmp_path)
    user = new_user_id()
    sockets: list[Socket] = []
    try:
        on_a = await open_user_socket(replicas[0], tokens, user)
        on_a_twin = await open_user_socket(replicas[0], tokens, user)
        on_b = await open_user_socket(replicas[1], tokens, user)
        sockets = [on_a, on_a_twin, on_b]

        redis.stop()
        await asyncio.to_thread(
            wait_until, lambda: readiness(replicas[0]) == "degraded", 15, "degraded readiness"
        )
        reply = await on_a.request({"action": "create_todo", "payload": {"title": "while down"}})
        assert reply["type"] == "todo_created"
        # Local sockets keep working without Redis.
        assert (await on_a_twin.recv())["data"] == reply["data"]

        redis.start()
        await asyncio.to_thread(
            wait_until, lambda: all(readiness(r) == "ready" for r in replicas), 20, "ready again"
        )
        # B missed the change: it gets a delta from its revision with it (protocol 1.1).
        resynced = await on_b.recv(timeout=15)
        while resynced["type"] != "todos_delta" or not resynced["data"]["upserted"]:
            resynced = await on_b.recv(timeout=15)
        assert resynced["since"] == 0 and resynced["rev"] == reply["rev"] == 1
        assert [t["title"] for t in resynced["data"]["upserted"]] == ["while down"]
        # A missed nothing: its delta (sent to every socket once Redis is back) is empty.
        fresh_on_a = await on_a.recv(timeout=15)
        assert fresh_on_a["type"] == "todos_delta" and fresh_on_a["since"] == 1
        assert fresh_on_a["data"] == {"upserted": [], "deleted": []}
    finally:
        for sock in sockets:
            await sock.close()
        for replica in replicas:
            replica.stop()
        redis.stop()

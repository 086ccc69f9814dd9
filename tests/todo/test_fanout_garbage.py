"""Issue 12 finding 7 (CONTRACT.md section 7): a malformed message on the fan-out channels
is logged and skipped. Garbage published where the replicas listen must neither stop
cross-replica fan-out nor reach a client, and both replicas stay ready.

Two replicas on one PostgreSQL database, fanned out through this machine's Redis on a
channel prefix of the test's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from tests.scale.test_replicas import start_replicas
from tests.support import (
    REDIS_URL,
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
)
from tests.todo.wsclient import Tokens, new_user_id, open_user_socket

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def replicas(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServiceProcess]]:
    db_url = create_postgres_database("garbage")
    started = start_replicas(2, jwt_env, db_url, REDIS_URL, tmp_path_factory.mktemp("garbage"))
    yield started
    for replica in started:
        replica.stop()
    drop_postgres_database(db_url)


def garbage_for(prefix: str, user: int) -> list[tuple[str, bytes]]:
    """(channel, message) pairs no replica published; a real message is
    "<replica>|E|<rev>|<event JSON>" or "<replica>|R|" on "<prefix>:user:<id>"."""
    channel = f"{prefix}:user:{user}"
    return [
        (channel, b"garbage"),
        (channel, b""),
        (channel, b"x|E|notanint|{}"),
        (channel, b"x|E|1"),
        (channel, b"x|Q|whatever"),
        (channel, b"x|E|1|not json at all"),  # would reach the client as a frame
        (channel, b'x|E|1|{"type": "error"}'),  # JSON, but not an event of ours
        (channel, b"\xff\xfe|E|1|\xff"),  # not UTF-8
        (f"{prefix}:user:notanumber", b'x|E|1|{"type":"todo_deleted"}'),
        (f"{prefix}:user:", b"x|R|"),
        (f"{prefix}:user:\xff", b"x|R|"),
        (channel, b"x|E|1|" + b"{" * 100_000),
    ]


def readiness(replica: ServiceProcess) -> httpx.Response:
    return httpx.get(f"{replica.url}/readyz", timeout=5)


async def test_garbage_on_the_channels_is_skipped_and_fan_out_goes_on(
    replicas: list[ServiceProcess], tokens: Tokens
) -> None:
    prefix = replicas[0].env["REDIS_CHANNEL_PREFIX"]
    user = new_user_id()
    on_a = await open_user_socket(replicas[0], tokens, user)
    on_b = await open_user_socket(replicas[1], tokens, user)
    redis = Redis.from_url(REDIS_URL)
    try:
        for channel, message in garbage_for(prefix, user):
            await redis.publish(channel, message)
        await asyncio.sleep(0.5)  # let both listeners take all of it

        for replica in replicas:
            response = readiness(replica)
            assert response.status_code == 200, response.text
            assert response.json()["checks"]["fanout"] == "ok"

        # Fan-out across replicas still works, both ways, and nothing of the garbage
        # reached a socket: the next message on each is the real change.
        created = await on_a.request({"action": "create_todo", "payload": {"title": "after"}})
        assert created["type"] == "todo_created" and created["rev"] == 1
        event = await on_b.recv()
        assert event == {"type": "todo_created", "rev": 1, "data": created["data"]}
        deleted = await on_b.request({"action": "delete_todo", "todo_id": created["data"]["id"]})
        assert (await on_a.recv()) == {k: v for k, v in deleted.items() if k != "request_id"}
        await on_a.expect_nothing_pending()
        await on_b.expect_nothing_pending()
    finally:
        await redis.aclose()
        await on_a.close()
        await on_b.close()

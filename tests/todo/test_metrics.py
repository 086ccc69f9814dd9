"""The todo service's `/metrics`: sockets, messages by action and outcome with handler
latency, and fan-out through Redis (the machine's, on a channel prefix of the test's own),
counted on a real service from real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.scrape import Scrape, eventually, scrape
from tests.support import REDIS_URL, ServiceProcess, fanout_env
from tests.todo.wsclient import Tokens, new_user_id, open_socket, open_user_socket

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def todo(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    tmp_path: Path = tmp_path_factory.mktemp("todo-metrics")
    env = {**jwt_env, **fanout_env(f"sqlite://{tmp_path / 'todo.sqlite3'}")}
    server = ServiceProcess("todo_ws_service", env, tmp_path, name="todo").start()
    yield server
    server.stop()


async def test_messages_by_action_and_outcome_with_latency(
    todo: ServiceProcess, tokens: Tokens
) -> None:
    before = scrape(todo.url)
    user = new_user_id()
    sock = await open_user_socket(todo, tokens, user)
    other = await open_user_socket(todo, tokens, user)
    refused = await open_socket(todo, "not-a-token")
    try:
        assert (await refused.recv())["code"] == "auth_failed"
        created = await sock.request({"action": "create_todo", "payload": {"title": "count me"}})
        assert created["type"] == "todo_created"
        assert (await other.recv())["type"] == "todo_created"
        answers = [
            await sock.request({"action": "update_todo", "todo_id": 2**40, "payload": {"a": 1}}),
            await sock.request({"action": "delete_todo", "todo_id": 2**40}),
            await sock.request("this is not JSON"),
            await sock.request({"action": "create_todo", "payload": {"title": ""}}),
            await sock.request({"action": "fly_to_the_moon"}),
        ]
        codes = [answer["code"] for answer in answers]
        assert codes == [
            "validation_error",
            "not_found",
            "invalid_json",
            "validation_error",
            "invalid_message",
        ]
        during = eventually(todo.url, lambda s: s.value("todo_fanout_published_total") is not None)
        assert during.value("todo_ws_sockets_open") == 2
    finally:
        for s in (sock, other, refused):
            await s.close()

    def moved(after: Scrape, name: str, **labels: str) -> float:
        return (after.value(name, **labels) or 0) - (before.value(name, **labels) or 0)

    # Each worker moves its message tallies into the metrics once a second.
    after = eventually(
        todo.url,
        lambda s: (
            s.value("todo_ws_sockets_open") == 0
            and moved(s, "todo_ws_messages_total", action="unknown", outcome="invalid_message") == 1
        ),
    )
    assert after.value("todo_ws_sockets_open") == 0
    assert moved(after, "todo_ws_connections_total", outcome="accepted") == 2
    assert moved(after, "todo_ws_connections_total", outcome="auth_failed") == 1
    message = "todo_ws_messages_total"
    assert moved(after, message, action="create_todo", outcome="ok") == 1
    assert moved(after, message, action="update_todo", outcome="validation_error") == 1
    assert moved(after, message, action="delete_todo", outcome="not_found") == 1
    assert moved(after, message, action="unknown", outcome="invalid_json") == 1
    assert moved(after, message, action="create_todo", outcome="validation_error") == 1
    assert moved(after, message, action="unknown", outcome="invalid_message") == 1
    assert "fly_to_the_moon" not in after.label_values(message, "action")
    # Latency for every message of a known action, error answers included.
    assert moved(after, "todo_ws_handler_seconds_count", action="create_todo") == 2
    assert moved(after, "todo_ws_handler_seconds_count", action="delete_todo") == 1
    assert after.value("todo_ws_handler_seconds_bucket", action="create_todo", le="+Inf") == (
        after.value("todo_ws_handler_seconds_count", action="create_todo")
    )
    assert after.types["todo_ws_handler_seconds"] == "histogram"
    # The change went to the user's other socket here, and once onto Redis.
    assert moved(after, "todo_fanout_deliveries_total", source="local") == 1
    assert moved(after, "todo_fanout_published_total") == 1
    assert after.value("todo_fanout_redis_subscribed") == 1


async def test_fanout_counts_what_other_replicas_send_and_skips_garbage(
    todo: ServiceProcess, tokens: Tokens
) -> None:
    before = eventually(todo.url, lambda s: s.value("todo_fanout_redis_subscribed") == 1)
    user = new_user_id()
    sock = await open_user_socket(todo, tokens, user)
    redis = Redis.from_url(REDIS_URL)
    channel = f"{todo.env['REDIS_CHANNEL_PREFIX']}:user:{user}"
    try:
        await redis.publish(channel, b"garbage")
        await redis.publish(channel, b"another-replica|R|")  # "resync your sockets"
        after = eventually(
            todo.url,
            lambda s: (
                (s.value("todo_fanout_malformed_total") or 0)
                > (before.value("todo_fanout_malformed_total") or 0)
                and (s.value("todo_fanout_received_total") or 0)
                > (before.value("todo_fanout_received_total") or 0)
            ),
        )
        assert (await sock.recv())["type"] == "todos_delta"  # the resync asked for
    finally:
        await redis.aclose()
        await sock.close()
    assert (after.value("todo_fanout_malformed_total") or 0) - (
        before.value("todo_fanout_malformed_total") or 0
    ) == 1
    assert (after.value("todo_fanout_received_total") or 0) - (
        before.value("todo_fanout_received_total") or 0
    ) == 1
    assert after.value("todo_fanout_redis_disconnects_total") == 0

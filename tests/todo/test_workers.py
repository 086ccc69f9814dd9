"""`--workers N`: several worker processes in one service, which needs Redis and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    REDIS_URL,
    REPO_ROOT,
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
    fanout_env,
    free_port,
)
from tests.todo.wsclient import Tokens, new_user_id, open_user_socket


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "--workers above 1 needs REDIS_URL"),
        ({"REDIS_URL": REDIS_URL}, "--workers above 1 needs PostgreSQL"),
    ],
    ids=["no-redis", "sqlite"],
)
def test_unsafe_worker_setups_are_refused_at_start(
    env: dict[str, str], message: str, jwt_env: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "todo_ws_service", "--port", str(free_port()), "--workers", "2"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", **jwt_env, "TODO_DB_URL": f"sqlite://{tmp_path}/t.db", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"configuration error: {message}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = create_postgres_database("workers")
    yield url
    drop_postgres_database(url)


@pytest.mark.postgres
@pytest.mark.redis
async def test_two_workers_fan_out_to_each_other_through_redis(
    postgres_url: str, jwt_env: dict[str, str], jwt_secret: str, tmp_path: Path
) -> None:
    env = {**jwt_env, **fanout_env(postgres_url)}
    server = ServiceProcess("todo_ws_service", env, tmp_path)
    server.extra_args = ["--workers", "2"]
    server.start(timeout=60)
    tokens = Tokens(jwt_secret)
    user = new_user_id()
    # The kernel spreads connections over the two workers; with eight sockets, some land
    # on each (and each must get every change, wherever it was made).
    sockets = [await open_user_socket(server, tokens, user) for _ in range(8)]
    try:
        reply = await sockets[0].request({"action": "create_todo", "payload": {"title": "w"}})
        assert reply["type"] == "todo_created"
        for sock in sockets[1:]:
            assert (await sock.recv()) == {
                "type": "todo_created",
                "rev": reply["rev"],
                "data": reply["data"],
            }
        for sock in sockets:
            await sock.expect_nothing_pending()
    finally:
        for sock in sockets:
            await sock.close()
        server.stop()

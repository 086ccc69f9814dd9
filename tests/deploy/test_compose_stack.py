"""compose.yaml's app services, run as local processes with the environment compose gives
them: service names mapped to loopback, the machine's PostgreSQL and Redis standing in for
the `postgres` and `redis` containers (no container engine runs here)."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.deploy.compose_file import AppService, app_services, load_compose
from tests.support import (
    REDIS_URL,
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
    free_port,
)
from tests.todo.wsclient import Socket, open_socket

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class LoopbackMap:
    """Rewrites compose's addresses (`postgres:5432`, `todo_ws_1:8002`...) to this machine."""

    def __init__(self, services: list[AppService]) -> None:
        self.ports = {s.name: free_port() for s in services}
        self.databases: dict[str, str] = {}

    def database(self, url: str) -> str:
        name = urlsplit(url).path.lstrip("/")
        if name not in self.databases:
            self.databases[name] = create_postgres_database(f"compose_{name}")
        return self.databases[name]

    def value(self, name: str, value: str, jwt_secret: str) -> str:
        if name == "JWT_SECRET":
            return jwt_secret
        if name.endswith("_DB_URL"):
            return self.database(value)
        if name == "REDIS_URL":
            return REDIS_URL
        return re.sub(
            r"http://([a-z0-9_]+):\d+",
            lambda m: f"http://127.0.0.1:{self.ports[m.group(1)]}",
            value,
        )


@pytest.fixture
def compose_stack(jwt_secret: str, tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    services = app_services(load_compose())
    loopback = LoopbackMap(services)
    # The replicas share the machine's Redis with other tests: channels of their own.
    channel_prefix = f"compose-{secrets.token_hex(4)}"
    processes: dict[str, ServiceProcess] = {}
    try:
        for service in services:  # compose order: auth, the todo replicas, then the gateway
            env = {k: loopback.value(k, v, jwt_secret) for k, v in service.environment.items()}
            if service.module == "todo_ws_service":
                env["REDIS_CHANNEL_PREFIX"] = channel_prefix
            processes[service.name] = ServiceProcess(
                service.module, env, tmp_path, port=loopback.ports[service.name], name=service.name
            ).start(timeout=60)
        yield processes
    finally:
        for process in reversed(processes.values()):
            process.stop()
        for url in loopback.databases.values():
            drop_postgres_database(url)


async def test_compose_services_work_together_as_local_processes(
    compose_stack: dict[str, ServiceProcess],
) -> None:
    gateway = compose_stack["gateway"]
    ready = httpx.get(f"{gateway.url}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text

    user = {"username": f"c{uuid.uuid4().hex[:10]}", "password": "compose password"}
    assert httpx.post(f"{gateway.url}/auth/register", json=user, timeout=10).status_code == 201
    token = httpx.post(f"{gateway.url}/auth/login", json=user, timeout=10).json()["access_token"]

    # Round-robin puts the two sockets on the two todo replicas; Redis joins them.
    sockets: list[Socket] = [await open_socket(gateway, token) for _ in range(2)]
    try:
        for sock in sockets:
            assert (await sock.recv())["type"] == "todos_list"
        created = await sockets[0].request(
            {"action": "create_todo", "payload": {"title": "composed"}, "request_id": "r1"}
        )
        assert created["type"] == "todo_created" and created["request_id"] == "r1"
        copy = await sockets[1].recv()
        assert copy == {"type": "todo_created", "rev": created["rev"], "data": created["data"]}
    finally:
        await asyncio.gather(*(sock.close() for sock in sockets))

    replicas = [p for n, p in compose_stack.items() if n.startswith("todo_ws")]
    for replica in replicas:  # both replicas were used and see the same database
        assert "/ws_ep/ws" in replica.logs()

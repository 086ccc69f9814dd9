"""Replicas: round-robin, passive and active health, failover, and no replica left."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway.conftest import start_gateway, start_upstream, wait_until
from tests.support import ServiceProcess, free_port


@dataclass
class Replicas:
    auth: ServiceProcess
    todo_1: ServiceProcess
    todo_2: ServiceProcess
    gateway: ServiceProcess


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    log_dir = tmp_path_factory.mktemp("gateway-replicas")
    processes: list[ServiceProcess] = []
    try:
        for name in ("auth-1", "todo-1", "todo-2"):
            processes.append(start_upstream(name, log_dir))
        auth, todo_1, todo_2 = processes
        processes.append(start_gateway([auth], [todo_1, todo_2], log_dir))
        yield Replicas(auth, todo_1, todo_2, processes[-1])
    finally:
        for process in reversed(processes):
            process.stop()


def served_by(gateway: ServiceProcess, count: int, method: str = "GET") -> list[str]:
    """The replica names that answered `count` requests through the gateway."""
    names = []
    for i in range(count):
        body = f"body {i}".encode()
        response = httpx.request(method, gateway.url + "/ws_ep/echo", content=body, timeout=10)
        assert response.status_code == 200, response.text
        echo = response.json()
        assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
        names.append(echo["name"])
    return names


def replica_states(gateway: ServiceProcess) -> dict[str, str]:
    body = httpx.get(gateway.url + "/readyz").json()
    return {r["url"]: r["status"] for pool in body["upstreams"].values() for r in pool}


async def open_socket(gateway: ServiceProcess) -> tuple[ClientConnection, str]:
    ws = await connect(gateway.ws_url + "/ws_ep/ws", open_timeout=10, proxy=None)
    return ws, json.loads(await ws.recv())["hello"]


async def close_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await ws.recv()
    return ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None


async def test_a_killed_replica_is_skipped_and_used_again_once_restarted(
    replicas: Replicas,
) -> None:
    gateway = replicas.gateway
    assert set(served_by(gateway, 4)) == {"todo-1", "todo-2"}
    opened = [await open_socket(gateway), await open_socket(gateway)]
    by_name = {name: ws for ws, name in opened}
    assert set(by_name) == {"todo-1", "todo-2"}

    replicas.todo_1.kill()
    # The socket on the killed replica is closed with 1014, never a bare 1006...
    assert await close_code(by_name["todo-1"]) == 1014
    # ...the other one keeps working.
    await by_name["todo-2"].send("still here")
    assert await by_name["todo-2"].recv() == "still here"
    # New requests (POSTs with bodies too) and new sockets all go to the live replica.
    assert set(served_by(gateway, 6, "POST")) == {"todo-2"}
    for _ in range(3):
        ws, name = await open_socket(gateway)
        assert name == "todo-2"
        await ws.close()
    ready = httpx.get(gateway.url + "/readyz")
    assert ready.status_code == 200  # the todo service still has a replica
    assert replica_states(gateway)[replicas.todo_1.url] == "down"

    replicas.todo_1.start()
    wait_until(
        lambda: replica_states(gateway)[replicas.todo_1.url] == "up",
        what="the restarted replica to be polled ready",
    )
    assert set(served_by(gateway, 4)) == {"todo-1", "todo-2"}
    await by_name["todo-2"].close()


async def test_a_replica_whose_readyz_fails_gets_no_new_traffic(replicas: Replicas) -> None:
    gateway, todo_2 = replicas.gateway, replicas.todo_2
    httpx.post(todo_2.url + "/_control/ready?value=0")
    try:
        wait_until(lambda: replica_states(gateway)[todo_2.url] == "down", what="active check")
        assert set(served_by(gateway, 4)) == {"todo-1"}
        _, name = await open_socket(gateway)
        assert name == "todo-1"
    finally:
        httpx.post(todo_2.url + "/_control/ready?value=1")
    wait_until(lambda: replica_states(gateway)[todo_2.url] == "up", what="active check")
    assert set(served_by(gateway, 4)) == {"todo-1", "todo-2"}


@dataclass
class PassiveOnly:
    a: ServiceProcess
    b: ServiceProcess
    gateway: ServiceProcess


@pytest.fixture
def passive_only(tmp_path: Path) -> Iterator[PassiveOnly]:
    """Two replicas, each serving as both the auth and the todo service. The one active
    check runs at start-up, so afterwards only passive health (and trying marked-down
    replicas anyway) is at work."""
    a = start_upstream("replica-a", tmp_path)
    b = start_upstream("replica-b", tmp_path)
    gateway = start_gateway([a, b], [a, b], tmp_path, GATEWAY_HEALTH_INTERVAL="60")
    try:
        yield PassiveOnly(a, b, gateway)
    finally:
        for process in (gateway, b, a):
            process.stop()


@pytest.fixture
def no_upstreams(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A gateway whose replicas are not listening at all."""
    nobody = [
        ServiceProcess("tests.gateway.upstream_app", {}, tmp_path, port=free_port())
        for _ in range(2)
    ]
    gateway = start_gateway(nobody[:1], nobody[1:], tmp_path)
    try:
        yield gateway
    finally:
        gateway.stop()


def post_bodies(gateway: ServiceProcess, count: int) -> list[str]:
    names = []
    for i in range(count):
        body = f"payload {i}".encode() * 1000
        response = httpx.post(gateway.url + "/auth/login", content=body, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        names.append(response.json()["name"])
    return names


def pool_states(gateway: ServiceProcess, service: str) -> list[dict[str, str]]:
    return list(httpx.get(gateway.url + "/readyz").json()["upstreams"][service])


async def test_no_replica_gives_502_1014_and_readyz_503(no_upstreams: ServiceProcess) -> None:
    gateway = no_upstreams
    for path, service in (("/auth/login", "auth"), ("/ws_ep/anything", "todo")):
        response = httpx.post(gateway.url + path, json={"a": 1})
        assert response.status_code == 502
        assert response.json() == {
            "detail": f"No replica of the {service} service is reachable.",
            "code": "bad_gateway",
        }
    # The WebSocket is accepted, then closed with 1014.
    async with connect(gateway.ws_url + "/ws_ep/ws?token=x", proxy=None) as ws:
        assert await close_code(ws) == 1014
    ready = httpx.get(gateway.url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["detail"] == "no healthy replica: auth, todo"
    assert [r["status"] for r in pool_states(gateway, "todo")] == ["down"]


async def test_a_refused_connection_moves_the_request_to_the_next_replica(
    passive_only: PassiveOnly,
) -> None:
    gateway, a, b = passive_only.gateway, passive_only.a, passive_only.b
    assert set(post_bodies(gateway, 4)) == {"replica-a", "replica-b"}
    b.kill()
    # Whichever request meets the dead replica is sent, body and all, to the other one.
    assert set(post_bodies(gateway, 4)) == {"replica-a"}
    assert pool_states(gateway, "auth") == [
        {"url": a.url, "status": "up", "error": None},
        {"url": b.url, "status": "down", "error": "ConnectError"},
    ]
    # Likewise for new sockets: the second one starts at the dead replica and moves on.
    for _ in range(3):
        ws, name = await open_socket(gateway)
        assert name == "replica-a"
        await ws.close()
    assert pool_states(gateway, "todo")[1]["status"] == "down"

    a.kill()
    down = httpx.get(gateway.url + "/auth/x")
    assert down.status_code == 502
    assert down.json()["code"] == "bad_gateway"
    assert [r["status"] for r in pool_states(gateway, "auth")] == ["down", "down"]
    # Every replica is marked down; a restarted one is used by the very next request.
    a.start()
    assert post_bodies(gateway, 1) == ["replica-a"]
    assert pool_states(gateway, "auth")[0]["status"] == "up"

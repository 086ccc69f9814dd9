"""The real services behind the gateway, used through the gateway only.

auth_service and todo_ws_service run as processes with `PROXIES_COUNT=1`, SQLite files in
a temporary directory and one JWT secret; the test talks to the gateway's port and no other.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.gateway import rawhttp
from tests.stack import LocalStack as Stack
from tests.stack import start_stack

TIMEOUT = 10.0
LOGIN_MAX_FAILURES = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, jwt_env: dict[str, str]) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("gateway-e2e")
    started = start_stack(tmp, jwt_env, {"LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES)})
    yield started
    started.stop()


@dataclass
class User:
    username: str
    password: str
    access_token: str


@pytest.fixture
def user(stack: Stack) -> User:
    username = "e2e_" + secrets.token_hex(4)
    password = secrets.token_urlsafe(12)
    registered = httpx.post(
        stack.url + "/auth/register",
        json={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["username"] == username
    # The OAuth2 password flow: form-encoded.
    login = httpx.post(
        stack.url + "/auth/login",
        data={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["token_type"] == "bearer"
    return User(username, password, tokens["access_token"])


class TodoSocket:
    """A client socket through the gateway: send an action, read the next server message."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        return dict(json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT)))


@pytest.fixture
async def two_sockets(stack: Stack, user: User) -> AsyncIterator[tuple[TodoSocket, TodoSocket]]:
    url = f"{stack.gateway.ws_url}/ws_ep/ws?token={user.access_token}"
    first = await connect(url, open_timeout=TIMEOUT, proxy=None)
    second = await connect(url, open_timeout=TIMEOUT, proxy=None)
    try:
        yield TodoSocket(first), TodoSocket(second)
    finally:
        await first.close()
        await second.close()


async def test_two_tabs_of_one_user_see_each_others_changes(
    stack: Stack, user: User, two_sockets: tuple[TodoSocket, TodoSocket]
) -> None:
    tab_a, tab_b = two_sockets
    assert await tab_a.receive() == {"type": "todos_list", "data": [], "rev": 0}
    assert await tab_b.receive() == {"type": "todos_list", "data": [], "rev": 0}

    await tab_a.send(
        {
            "action": "create_todo",
            "payload": {"title": "Buy milk", "description": "2 litres"},
            "request_id": "r1",
        }
    )
    created = await tab_a.receive()
    assert created["type"] == "todo_created"
    assert created["request_id"] == "r1"
    todo = created["data"]
    assert (todo["title"], todo["description"], todo["completed"]) == (
        "Buy milk",
        "2 litres",
        False,
    )
    seen_by_b = await tab_b.receive()
    assert seen_by_b == {"type": "todo_created", "rev": 1, "data": todo}

    await tab_a.send(
        {"action": "update_todo", "todo_id": todo["id"], "payload": {"completed": True}}
    )
    updated = (await tab_a.receive())["data"]
    assert updated["completed"] is True
    assert await tab_b.receive() == {"type": "todo_updated", "rev": 2, "data": updated}

    await tab_b.send({"action": "get_all_todos", "payload": None})
    assert await tab_b.receive() == {"type": "todos_list", "data": [updated], "rev": 2}

    await tab_b.send({"action": "delete_todo", "todo_id": todo["id"]})
    deleted = {"type": "todo_deleted", "rev": 3, "data": {"todo_id": todo["id"]}}
    assert await tab_b.receive() == deleted
    assert await tab_a.receive() == deleted

    await tab_a.send({"action": "get_all_todos"})
    assert await tab_a.receive() == {"type": "todos_list", "data": [], "rev": 3}


def test_me_answers_through_the_gateway(stack: Stack, user: User) -> None:
    me = httpx.get(
        stack.url + "/auth/me",
        headers={"Authorization": f"Bearer {user.access_token}"},
        timeout=TIMEOUT,
    )
    assert me.status_code == 200
    assert me.json()["username"] == user.username
    assert httpx.get(stack.url + "/auth/me", timeout=TIMEOUT).status_code == 401


@pytest.mark.parametrize("size", [100_000, 150_000, 200_000])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_big_register_body_at_a_normal_pace_gets_413_not_502(
    stack: Stack, size: int, framing: str
) -> None:
    # The auth service refuses such a body by answering 413 and closing while it is still
    # coming: the reset lost that answer and the gateway said 502. Now the gateway refuses
    # it itself, whatever the framing.
    body = b'{"username": "' + b"u" * size + b'", "password": "long enough"}'
    pieces = rawhttp.paced(body)
    if framing == "chunked":
        headers, pieces = [b"Transfer-Encoding: chunked"], rawhttp.chunked(pieces)
    else:
        headers = [b"Content-Length: %d" % len(body)]
    response = rawhttp.request(
        stack.gateway.port,
        b"/auth/register",
        b"POST",
        [b"Content-Type: application/json", *headers],
        pieces,
        pause=0.002,
    )
    assert response.status == 413
    assert response.json() == {
        "detail": "The request body is over 65536 bytes.",
        "code": "payload_too_large",
    }


def test_a_register_body_of_64_kib_still_reaches_the_auth_service(stack: Stack) -> None:
    # The gateway's /auth limit is not above the auth service's: a body at the limit gets
    # the service's own answer (a validation error here), not the service's 413.
    envelope = b'{"username": "", "password": "long enough"}'
    body = envelope.replace(b'""', b'"' + b"u" * (65536 - len(envelope)) + b'"')
    assert len(body) == 65536
    response = httpx.post(
        stack.url + "/auth/register",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_a_bad_token_is_closed_1008_through_the_gateway(stack: Stack) -> None:
    url = f"{stack.gateway.ws_url}/ws_ep/ws?token=not-a-jwt"
    async with connect(url, open_timeout=TIMEOUT, proxy=None) as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert error["type"] == "error"
        assert error["code"] == "auth_failed"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == 1008


async def test_an_oversized_frame_gets_the_services_1009(stack: Stack, user: User) -> None:
    url = f"{stack.gateway.ws_url}/ws_ep/ws?token={user.access_token}"
    async with connect(url, open_timeout=TIMEOUT, proxy=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "todos_list"
        await ws.send("x" * 70_000)  # over WS_MAX_MESSAGE (64 KiB), under the gateway's limit
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == 1009


def _failed_login(stack: Stack, username: str, client_address: str) -> int:
    transport = httpx.HTTPTransport(local_address=client_address)
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        response = client.post(
            stack.url + "/auth/login", json={"username": username, "password": "wrong-password"}
        )
    return response.status_code


def test_the_auth_service_sees_each_clients_own_address(stack: Stack, user: User) -> None:
    # The login throttle counts failures per username *and client address*. Behind the
    # gateway every connection comes from the gateway; only X-Forwarded-For (trusted with
    # PROXIES_COUNT=1) tells two clients apart.
    for _ in range(LOGIN_MAX_FAILURES):
        assert _failed_login(stack, user.username, "127.0.0.2") == 401
    assert _failed_login(stack, user.username, "127.0.0.2") == 429
    assert _failed_login(stack, user.username, "127.0.0.3") == 401


async def test_a_service_shutdown_reaches_the_client_as_its_own_close_code(
    stack: Stack, user: User
) -> None:
    url = f"{stack.gateway.ws_url}/ws_ep/ws?token={user.access_token}"
    async with connect(url, open_timeout=TIMEOUT, proxy=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "todos_list"
        await asyncio.to_thread(stack.todo.stop)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    # The service's clean 1001 goes through as is, not the gateway's 1014.
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == 1001

    await asyncio.to_thread(stack.todo.start)
    async with connect(url, open_timeout=TIMEOUT, proxy=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "todos_list"

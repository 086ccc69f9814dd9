"""The service's life around the sockets: SIGTERM, restart, a database that goes away, and
the limits that come from the environment (rate limit off, a small frame limit, pings)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import struct
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support import POSTGRES_ADMIN_DSN, ServiceProcess
from tests.todo.conftest import require_backend, start_todo_service
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_user_socket


@pytest.fixture
def fresh_server(
    todo_db_url: str, jwt_env: dict[str, str], tmp_path: Path
) -> Iterator[ServiceProcess]:
    """A server of this test's own (it gets stopped), on the module's database."""
    server = start_todo_service(jwt_env, todo_db_url, tmp_path)
    yield server
    server.stop()


async def test_sigterm_finishes_writes_closes_1001_and_restart_keeps_the_data(
    fresh_server: ServiceProcess, tokens: Tokens
) -> None:
    user_id = new_user_id()
    sock = await open_user_socket(fresh_server, tokens, user_id)
    watcher = await open_user_socket(fresh_server, tokens, user_id)
    first = await sock.request({"action": "create_todo", "payload": {"title": "before"}})
    assert first["type"] == "todo_created"
    assert (await watcher.recv())["type"] == "todo_created"

    # Writes in flight when the signal lands: each one either completes and is
    # acknowledged before the socket closes, or is never written.
    for i in range(30):
        await sock.send(
            {"action": "create_todo", "payload": {"title": f"t{i}"}, "request_id": str(i)}
        )
    acknowledged = {first["data"]["id"]}
    acknowledged.add((await sock.recv())["data"]["id"])  # the first of them is done
    assert fresh_server.proc is not None
    # The whole process group, as systemd and `ServiceProcess.stop` do (the harder case:
    # Sanic's main process then relays a second signal to the worker).
    os.killpg(fresh_server.proc.pid, signal.SIGTERM)
    while True:
        try:
            reply = await sock.recv()
        except ConnectionClosed:
            break
        assert reply["type"] == "todo_created" and reply["request_id"], reply
        acknowledged.add(reply["data"]["id"])
    assert sock.ws.close_code == 1001
    assert await watcher.close_code() == 1001
    fresh_server.proc.wait(15)  # exits promptly (raises if it hangs)

    # Started again on the same database: exactly the acknowledged todos are there.
    fresh_server.start()
    again = await open_user_socket(fresh_server, tokens, user_id)
    assert {t["id"] for t in again.initial["data"]} == acknowledged  # type: ignore[attr-defined]
    await again.close()


@pytest.fixture(scope="module")
def limits_server(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """SQLite only: these limits are about the socket, not the database."""
    tmp = tmp_path_factory.mktemp("limits")
    server = start_todo_service(
        jwt_env,
        f"sqlite://{tmp / 'todo.sqlite3'}",
        tmp,
        WS_RATE_LIMIT="0",
        WS_MAX_MESSAGE="1024",
        WS_PING_INTERVAL="0.5",
    )
    yield server
    server.stop()


@pytest.fixture
async def limits_sock(limits_server: ServiceProcess, tokens: Tokens) -> Socket:
    return await open_user_socket(limits_server, tokens, new_user_id())


async def test_rate_limit_zero_turns_it_off(limits_sock: Socket) -> None:
    for i in range(150):
        await limits_sock.send({"action": "get_all_todos", "request_id": str(i)})
    replies = [await limits_sock.recv() for _ in range(150)]
    assert all(r["type"] == "todos_list" for r in replies)


async def test_ws_max_message_sets_the_frame_limit(limits_sock: Socket) -> None:
    reply = await limits_sock.request({"action": "create_todo", "payload": {"title": "x" * 200}})
    assert reply["type"] == "todo_created"
    await limits_sock.send('{"action": "get_all_todos", "pad": "' + "p" * 1100 + '"}')
    assert await limits_sock.close_code() == 1009


async def test_server_pings_and_drops_a_peer_that_never_answers(
    limits_server: ServiceProcess, tokens: Tokens
) -> None:
    # A raw client, so it can stay silent when pinged (websockets' client always answers).
    reader, writer = await asyncio.open_connection("127.0.0.1", limits_server.port)
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    token = tokens.valid(new_user_id())
    writer.write(
        (
            f"GET /ws_ep/ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")

    async def read_frame() -> tuple[int, bytes]:
        b1, b2 = await reader.readexactly(2)
        length = b2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        return b1 & 0x0F, await reader.readexactly(length)

    opcodes = []
    try:
        async with asyncio.timeout(5):
            while True:
                opcode, payload = await read_frame()
                opcodes.append(opcode)
                if opcode == 0x8:
                    close_code = struct.unpack("!H", payload[:2])[0]
                    break
    finally:
        writer.close()
    assert opcodes[0] == 0x1  # the todos_list text frame
    assert 0x9 in opcodes  # a keepalive ping
    assert close_code == 1011  # no pong within the timeout


# ---------------------------------------------------------------- database outage


@pytest.fixture(scope="module")
def pg_server(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, str]]:
    require_backend("postgres")
    from tests.support import create_postgres_database, drop_postgres_database

    url = create_postgres_database("todo_outage")
    server = start_todo_service(jwt_env, url, tmp_path_factory.mktemp("outage"))
    yield server, url
    server.stop()
    drop_postgres_database(url)


async def _terminate_backends(database: str, allow_connections: bool = True) -> int:
    admin = await asyncpg.connect(f"{POSTGRES_ADMIN_DSN}/postgres")
    try:
        allow = "true" if allow_connections else "false"
        await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {allow}')
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return len(rows)
    finally:
        await admin.close()


@pytest.mark.postgres
async def test_database_connections_killed_give_internal_error_then_recovery(
    pg_server: tuple[ServiceProcess, str], tokens: Tokens
) -> None:
    server, url = pg_server
    sock = await open_user_socket(server, tokens, new_user_id())
    made = await sock.request({"action": "create_todo", "payload": {"title": "survives"}})
    assert made["type"] == "todo_created"

    killed = await _terminate_backends(url.rsplit("/", 1)[1])
    assert killed >= 1

    # The next requests either succeed (a fresh pool connection) or get internal_error,
    # never a dead socket or process; within a few tries the service is back.
    outcomes = []
    for i in range(20):
        reply = await sock.request({"action": "get_all_todos", "request_id": f"after{i}"})
        assert reply["request_id"] == f"after{i}"
        outcomes.append(reply["type"] if reply["type"] != "error" else reply["code"])
        assert outcomes[-1] in {"todos_list", "internal_error"}, reply
        if reply["type"] == "todos_list":
            assert reply["data"] == [made["data"]]
            break
        await asyncio.sleep(0.2)
    assert outcomes[-1] == "todos_list", outcomes
    assert "Traceback" not in str(outcomes)
    assert (await sock.request({"action": "create_todo", "payload": {"title": "after"}}))[
        "type"
    ] == "todo_created"
    assert httpx.get(f"{server.url}/readyz").status_code == 200

    # Now the database refuses new connections for a while: internal_error replies on an
    # open socket, /readyz says unavailable; when it is back, the service is too.
    database = url.rsplit("/", 1)[1]
    try:
        await _terminate_backends(database, allow_connections=False)
        reply = await sock.request({"action": "get_all_todos", "request_id": "down"})
        assert reply["type"] == "error" and reply["code"] == "internal_error", reply
        assert reply["request_id"] == "down" and "Traceback" not in reply["message"]
        reply = await sock.request({"action": "create_todo", "payload": {"title": "lost"}})
        assert reply["code"] == "internal_error"
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 503
    finally:
        await _terminate_backends(database, allow_connections=True)
    for _ in range(50):
        reply = await sock.request({"action": "get_all_todos"})
        if reply["type"] == "todos_list":
            break
        await asyncio.sleep(0.1)
    assert reply["type"] == "todos_list", reply
    assert [t["title"] for t in reply["data"]] == ["survives", "after"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    await sock.close()

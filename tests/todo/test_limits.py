"""The todo service's limits against abuse (CONTRACT.md section 7, issue 12 findings 2 and
4): sockets per user, todos per user (under concurrency too, on SQLite and PostgreSQL), and
the unsent data a socket that never reads may hold (the service's memory stays bounded).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from shared.settings import TodoSettings
from tests.support import ServiceProcess
from tests.todo.conftest import start_todo_service
from tests.todo.rawws import OP_CLOSE, RawSocket, frame
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_socket, open_user_socket

MAX_SOCKETS = 3
MAX_TODOS = 10


@pytest.fixture(scope="module")
def limited(
    todo_db_url: str, jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """Small limits, on each backend (the rate limit off: the tests send bursts)."""
    server = start_todo_service(
        jwt_env,
        todo_db_url,
        tmp_path_factory.mktemp("limits"),
        WS_MAX_CONNECTIONS_PER_USER=str(MAX_SOCKETS),
        TODO_MAX_PER_USER=str(MAX_TODOS),
        WS_RATE_LIMIT="0",
    )
    yield server
    server.stop()


def test_defaults_and_bounds_of_the_settings(jwt_env: dict[str, str]) -> None:
    settings = TodoSettings(jwt_secret=jwt_env["JWT_SECRET"])  # type: ignore[arg-type]
    assert settings.ws_max_connections_per_user == 32
    assert settings.todo_max_per_user == 5000
    assert settings.ws_max_buffered == 4 * 1024 * 1024
    with pytest.raises(ValidationError):  # a byte bound, not a count: 0 is no bound
        TodoSettings(jwt_secret=jwt_env["JWT_SECRET"], ws_max_buffered=0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        TodoSettings(jwt_secret=jwt_env["JWT_SECRET"], todo_max_per_user=-1)  # type: ignore[arg-type]


# ---------------------------------------------------------------- sockets per user


async def test_a_socket_beyond_the_users_limit_gets_too_many_connections_then_1013(
    limited: ServiceProcess, tokens: Tokens
) -> None:
    user = new_user_id()
    sockets = [await open_user_socket(limited, tokens, user) for _ in range(MAX_SOCKETS)]
    try:
        refused = await open_socket(limited, tokens.valid(user))
        error = await refused.recv()
        assert error["type"] == "error" and error["code"] == "too_many_connections", error
        assert await refused.close_code() == 1013

        # Another user is not counted against this one.
        stranger = await open_user_socket(limited, tokens, new_user_id())
        await stranger.close()

        # The sockets already open are untouched, and a closed one frees its place.
        for sock in sockets:
            await sock.expect_nothing_pending()
        await sockets.pop().close()
        sockets.append(await reopen_when_freed(limited, tokens, user))
    finally:
        for sock in sockets:
            await sock.close()


async def reopen_when_freed(server: ServiceProcess, tokens: Tokens, user: int) -> Socket:
    """A socket for `user` once the server has seen one of theirs close (it takes a moment)."""
    deadline = time.monotonic() + 10
    while True:
        sock = await open_socket(server, tokens.valid(user))
        first = await sock.recv()
        if first["type"] == "todos_list":
            return sock
        assert first["code"] == "too_many_connections" and time.monotonic() < deadline
        await sock.close_code()
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- todos per user


async def create(sock: Socket, title: str, **extra: object) -> dict[str, object]:
    return await sock.request({"action": "create_todo", "payload": {"title": title}, **extra})


async def test_create_beyond_the_limit_answers_limit_reached_and_keeps_the_socket(
    limited: ServiceProcess, tokens: Tokens
) -> None:
    sock = await open_user_socket(limited, tokens, new_user_id())
    try:
        made = [await create(sock, f"t{i}") for i in range(MAX_TODOS - 1)]
        last = await create(sock, "last", idempotency_key="k-last")
        assert all(m["type"] == "todo_created" for m in [*made, last])

        refused = await create(sock, "one too many", request_id="r1")
        assert refused["type"] == "error" and refused["code"] == "limit_reached", refused
        assert refused["request_id"] == "r1"
        # The repeat of a keyed create that got in is answered as the first time.
        assert await create(sock, "last", idempotency_key="k-last") == last
        listed = await sock.request({"action": "get_all_todos"})
        assert len(listed["data"]) == MAX_TODOS and listed["rev"] == MAX_TODOS, "no rev taken"

        deleted = await sock.request({"action": "delete_todo", "todo_id": made[0]["data"]["id"]})  # type: ignore[index]
        assert deleted["type"] == "todo_deleted"
        assert (await create(sock, "room again"))["type"] == "todo_created"
    finally:
        await sock.close()


async def test_sockets_creating_at_once_never_pass_the_limit(
    limited: ServiceProcess, tokens: Tokens
) -> None:
    user = new_user_id()
    sockets = [await open_user_socket(limited, tokens, user) for _ in range(MAX_SOCKETS)]
    per_socket = MAX_TODOS  # together three times the limit, all sent before any reply

    async def flood(n: int, sock: Socket) -> list[dict[str, object]]:
        for i in range(per_socket):
            await sock.send(
                {"action": "create_todo", "payload": {"title": f"{n}-{i}"}, "request_id": str(i)}
            )
        replies = []
        while len(replies) < per_socket:
            message = await sock.recv()
            if "request_id" in message:  # not another socket's event
                replies.append(message)
        return replies

    try:
        results = await asyncio.gather(*(flood(n, s) for n, s in enumerate(sockets)))
        replies = [reply for result in results for reply in result]
        created = [r for r in replies if r["type"] == "todo_created"]
        refused = [r for r in replies if r["type"] == "error"]
        assert len(created) == MAX_TODOS, f"{len(created)} created, the limit is {MAX_TODOS}"
        assert {r["code"] for r in refused} == {"limit_reached"}
        assert len(refused) == MAX_SOCKETS * per_socket - MAX_TODOS
        listed = await sockets[0].request({"action": "get_all_todos", "request_id": "list"})
        while listed.get("request_id") != "list":
            listed = await sockets[0].recv()
        assert len(listed["data"]) == MAX_TODOS
    finally:
        for sock in sockets:
            await sock.close()


# ---------------------------------------------------------------- a socket that never reads

BIG_DESCRIPTION = "\x01" * 2000  # 12 KB of JSON once escaped: the largest a todo gets
BIG_TODOS = 200  # a list of ~2.4 MB
EVENTS = 450  # ~5.4 MB of events
FLOOD = 120  # lists asked for and never read: ~290 MB unsent if nothing bounded it
RSS_GROWTH_BOUND = 80 * 1024 * 1024


@pytest.fixture(scope="module")
def unbounded_counts(
    jwt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """SQLite, default `WS_MAX_BUFFERED`, and the count limits and the rate limit off."""
    tmp = tmp_path_factory.mktemp("never-reads")
    server = start_todo_service(
        jwt_env,
        f"sqlite://{tmp / 'todo.sqlite3'}",
        tmp,
        WS_MAX_CONNECTIONS_PER_USER="0",
        TODO_MAX_PER_USER="0",
        WS_RATE_LIMIT="0",
    )
    yield server
    server.stop()


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Sanic's main process, its worker, its manager)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            found += process_tree(int(child))
    return found


def resident_bytes(pid: int) -> int:
    """VmRSS of `pid` and its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


async def test_a_socket_that_never_reads_is_closed_1013_and_memory_stays_bounded(
    unbounded_counts: ServiceProcess, tokens: Tokens
) -> None:
    """Issue 12 finding 2: while a socket's events wait for it to read, it may go on asking
    for lists; without a byte bound, each one waited in memory."""
    assert unbounded_counts.proc is not None
    pid = unbounded_counts.proc.pid
    user = new_user_id()
    writer = await open_user_socket(unbounded_counts, tokens, user)
    big = {"title": "big", "description": BIG_DESCRIPTION}
    ids = [await created_id(writer, big) for _ in range(BIG_TODOS)]

    token = tokens.valid(user)
    reader = await RawSocket.connect(unbounded_counts.port, token, receive_buffer=16_384)
    try:
        await reader.recv_frame()  # its first list, read: from now on it never reads
        baseline = resident_bytes(pid)
        # More events than the kernel's buffers take (~4 MB here): its writer now waits...
        for _ in range(EVENTS // 50):
            for _ in range(50):
                await writer.send({"action": "update_todo", "todo_id": ids[0], "payload": big})
            for _ in range(50):
                assert (await writer.recv())["type"] == "todo_updated"
        # ...while the socket goes on asking for lists (with request ids: each a new copy).
        await reader.send_raw(
            b"".join(
                frame(orjson.dumps({"action": "get_all_todos", "request_id": str(i)}))
                for i in range(FLOOD)
            )
        )
        peak = baseline
        for _ in range(100):  # 2 s
            peak = max(peak, resident_bytes(pid))
            await asyncio.sleep(0.02)
        growth = peak - baseline
        assert growth < RSS_GROWTH_BOUND, f"the service grew by {growth / 2**20:.0f} MiB"

        # Reading again, the client gets what was sent before the limit, then 1013.
        while (received := await reader.recv_frame()).opcode != OP_CLOSE:
            pass
        assert received.close_code == 1013
        # The user's other socket is untouched.
        assert (await writer.request({"action": "delete_todo", "todo_id": ids[1]}))["rev"]
    finally:
        await reader.close()
        await writer.close()


async def created_id(sock: Socket, payload: dict[str, object]) -> int:
    made = await sock.request({"action": "create_todo", "payload": payload})
    assert made["type"] == "todo_created", made
    return int(made["data"]["id"])


async def test_sigterm_is_not_held_up_by_a_socket_that_never_reads(
    jwt_env: dict[str, str], tokens: Tokens, tmp_path: Path
) -> None:
    """Shutdown closes every socket after finishing its message in hand; a client that
    takes nothing must not stall that (nor the process's exit) for ever."""
    server = start_todo_service(
        jwt_env, f"sqlite://{tmp_path / 'todo.sqlite3'}", tmp_path, WS_RATE_LIMIT="0"
    )
    try:
        user = new_user_id()
        writer = await open_user_socket(server, tokens, user)
        big = {"title": "big", "description": BIG_DESCRIPTION}
        for _ in range(BIG_TODOS):
            await created_id(writer, big)
        await writer.close()
        reader = await RawSocket.connect(server.port, tokens.valid(user), receive_buffer=16_384)
        await reader.recv_frame()
        # Lists it never reads: the socket's receive loop ends up waiting in a send.
        await reader.send_raw(b"".join(frame(b'{"action":"get_all_todos"}') for _ in range(5)))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        server.stop(timeout=30)
        assert time.monotonic() - started < 15, "shutdown waited on the stuck socket"
        await reader.close()
    finally:
        server.stop()


async def test_a_client_that_takes_nothing_for_a_ping_interval_is_closed_1013(
    jwt_env: dict[str, str], tokens: Tokens, tmp_path: Path
) -> None:
    """Under `WS_MAX_BUFFERED` too: its first list alone fills the transport, and Sanic's
    keepalive ping waits behind it for ever. The service checks its backlog instead."""
    server = start_todo_service(
        jwt_env,
        f"sqlite://{tmp_path / 'todo.sqlite3'}",
        tmp_path,
        WS_RATE_LIMIT="0",
        WS_PING_INTERVAL="1",
    )
    try:
        user = new_user_id()
        writer = await open_user_socket(server, tokens, user)
        big = {"title": "big", "description": BIG_DESCRIPTION}
        for _ in range(3 * BIG_TODOS):  # a first list of ~7 MB: more than the kernel takes
            await created_id(writer, big)
        await writer.close()
        reader = await RawSocket.connect(server.port, tokens.valid(user), receive_buffer=16_384)
        await asyncio.sleep(4)  # two intervals without reading a byte, and a margin
        while (received := await reader.recv_frame()).opcode != OP_CLOSE:
            pass
        assert received.close_code == 1013
        await reader.close()
    finally:
        server.stop()

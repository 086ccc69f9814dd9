"""Protocol 1.1 across replicas (CONTRACT.md section 6): gap-free delivery under load.

Two todo replicas share one fresh PostgreSQL database and fan out through a Redis of the
test's own (so it can be stopped). One user has a socket on each replica; both sockets
write at once, several requests in flight each. Every socket checks what it receives the
way a 1.1 client relies on it:

- an event (`todo_created`, `todo_updated`, `todo_deleted`) carries exactly the next `rev`
  after the one the socket holds; only the asker's own reply (its `request_id`) may come at
  or below it, after a `todos_delta` that already covered it;
- a `todos_delta` starts at or below the held `rev` (`since`) and moves it to its `rev`;
- applying them gives, at the end, exactly a fresh `todos_list`, whose `rev` is the number
  of successful writes (each committed change gets the next revision of the user).

The second test stops Redis in the middle of the writes and starts it again a second and
a half later: writes may then fail with `internal_error` or succeed, but every committed
change still reaches both sockets, as events or a delta, and none is skipped silently.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    RedisServer,
    ServiceProcess,
    create_postgres_database,
    drop_postgres_database,
    fanout_env,
    require_postgres,
)
from tests.todo.wsclient import Socket, Tokens, new_user_id, open_user_socket

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WRITES_PER_SOCKET = 60
IN_FLIGHT = 4  # requests a socket sends before it waits for the oldest reply
REPLY_TIMEOUT = 20.0  # a write stalled on a lost Redis may take a while, never forever
CONVERGE_TIMEOUT = 30.0
REDIS_DOWN_SECONDS = 1.5
EVENTS = {"todo_created", "todo_updated", "todo_deleted"}
SUCCESS = {
    "create_todo": "todo_created",
    "update_todo": "todo_updated",
    "delete_todo": "todo_deleted",
}


@pytest.fixture
def db_url() -> Iterator[str]:
    require_postgres()
    url = create_postgres_database("sync")
    yield url
    drop_postgres_database(url)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def replicas(
    db_url: str, redis: RedisServer, jwt_env: dict[str, str], tmp_path: Path
) -> Iterator[list[ServiceProcess]]:
    env = {**jwt_env, **fanout_env(db_url, redis.url), "WS_RATE_LIMIT": "0"}
    started = [ServiceProcess("todo_ws_service", env, tmp_path, name=f"todo-{i}") for i in (0, 1)]
    try:
        for replica in started:
            replica.start(wait=False)
        for replica in started:
            replica.wait_healthy(60)
        yield started
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture(scope="module")
def tokens(jwt_secret: str) -> Tokens:
    return Tokens(jwt_secret)


@dataclass
class Write:
    """One write this socket made and the direct reply it got."""

    action: str
    request: dict[str, Any]
    reply: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        return self.reply["type"] == SUCCESS[self.action]


@dataclass
class SyncedClient:
    """A socket, its own reader task, and the state it applied from what it received."""

    name: str
    sock: Socket
    state: dict[int, dict[str, Any]] = field(default_factory=dict)
    rev: int = 0
    writes: list[Write] = field(default_factory=list)
    received: list[str] = field(default_factory=list)  # a short trace for failure messages
    _pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _write_numbers: Iterator[int] = field(default_factory=itertools.count)
    # This socket's own todos: acknowledged and alive; and those with a write in flight.
    _mine: list[int] = field(default_factory=list)
    _busy: set[int] = field(default_factory=set)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, name: str, replica: ServiceProcess, tokens: Tokens, user: int
    ) -> SyncedClient:
        sock = await open_user_socket(replica, tokens, user)
        initial = sock.initial  # type: ignore[attr-defined]
        client = cls(name, sock, {t["id"]: t for t in initial["data"]}, initial["rev"])
        client._reader = asyncio.create_task(client._read_forever())
        return client

    # ------------------------------------------------------------ receiving

    async def _read_forever(self) -> None:
        try:
            while True:
                self._receive(await self.sock.recv(timeout=3600))
        except BaseException as exc:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(RuntimeError(f"{self.name}: reader stopped: {exc!r}"))
            raise

    def _fail(self, why: str, message: dict[str, Any]) -> AssertionError:
        trace = "\n  ".join(self.received[-15:])
        return AssertionError(
            f"{self.name} holding rev {self.rev}: {why}\n  message: {message}\n"
            f"  last received:\n  {trace}"
        )

    def _receive(self, message: dict[str, Any]) -> None:
        kind, request_id = message["type"], message.get("request_id")
        self.received.append(
            f"{kind} rev={message.get('rev')} since={message.get('since')} rid={request_id}"
        )
        if request_id is not None and request_id not in self._pending:
            raise self._fail("a request_id this socket has no request open for", message)

        if kind in EVENTS:
            rev = message["rev"]
            if rev == self.rev + 1:
                self._apply_event(message)
                self.rev = rev
            elif rev > self.rev + 1:
                raise self._fail(f"gap: revisions {self.rev + 1}..{rev - 1} were skipped", message)
            elif request_id is None:
                # Only the asker's own reply may come after a delta that covered it.
                raise self._fail("an event at or below the held rev (duplicate or late)", message)
        elif kind == "todos_delta":
            if request_id is not None:
                raise self._fail("a delta answering a request this socket never sent", message)
            if message["since"] > self.rev:
                raise self._fail("a delta starting after the held rev (a gap)", message)
            if message["rev"] < self.rev:
                raise self._fail("a delta ending before the held rev (goes back)", message)
            self._apply_delta(message)
            self.rev = message["rev"]
        elif kind == "todos_list" and request_id is not None:
            pass  # the answer to this socket's own get_all_todos: compared by the test
        elif kind == "error" and request_id is not None:
            pass  # a write that failed: the test judges its code
        else:
            raise self._fail("a message a 1.1 client can't place (no request of its own)", message)

        if request_id is not None:
            self._pending.pop(request_id).set_result(message)

    def _apply_event(self, message: dict[str, Any]) -> None:
        kind, data = message["type"], message["data"]
        if kind == "todo_created":
            if data["id"] in self.state or data["version"] != 1:
                raise self._fail("a created todo that is known already or not version 1", message)
            self.state[data["id"]] = data
        elif kind == "todo_updated":
            held = self.state.get(data["id"])
            if held is None or data["version"] != held["version"] + 1:
                raise self._fail(f"an update that does not follow the held {held}", message)
            self.state[data["id"]] = data
        else:
            if self.state.pop(data["todo_id"], None) is None:
                raise self._fail("a deletion of a todo this socket never had", message)

    def _apply_delta(self, message: dict[str, Any]) -> None:
        upserted, deleted = message["data"]["upserted"], message["data"]["deleted"]
        if {t["id"] for t in upserted} & set(deleted):
            raise self._fail("a delta with a todo both upserted and deleted", message)
        for todo in upserted:
            held = self.state.get(todo["id"])
            if held is not None and todo["version"] < held["version"]:
                raise self._fail(f"a delta with an older version than the held {held}", message)
            self.state[todo["id"]] = todo
        for todo_id in deleted:
            self.state.pop(todo_id, None)  # created and deleted after `since`: may be unknown

    def reader_failure(self) -> BaseException | None:
        assert self._reader is not None
        return self._reader.exception() if self._reader.done() else None

    # ------------------------------------------------------------ sending

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send with a fresh request_id; its direct reply, as the reader saw it."""
        request_id = f"{self.name}-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self.sock.send({**message, "request_id": request_id})
        try:
            return await asyncio.wait_for(future, REPLY_TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: no reply to {message} in {REPLY_TIMEOUT}s"
            ) from None

    def _next_write(self, n: int) -> dict[str, Any]:
        """Creates, updates and deletes (3:2:1) of this socket's own acknowledged todos;
        never two writes in flight on one todo (their order would then be the test's)."""
        free = [todo_id for todo_id in self._mine if todo_id not in self._busy]
        step = n % 6
        if step in (3, 4) and free:
            todo_id = free[(n * 7) % len(free)]
            self._busy.add(todo_id)
            payload: dict[str, Any] = (
                {"title": f"{self.name} edit {n}"}
                if step == 3
                else {"completed": n % 4 == 0, "description": f"note {n}"}
            )
            return {"action": "update_todo", "todo_id": todo_id, "payload": payload}
        if step == 5 and free:
            todo_id = free[0]
            self._busy.add(todo_id)
            return {"action": "delete_todo", "todo_id": todo_id}
        description = None if n % 2 else f"from {self.name}"
        return {
            "action": "create_todo",
            "payload": {"title": f"{self.name} todo {n}", "description": description},
        }

    async def _write(self, n: int) -> None:
        message = self._next_write(n)
        reply = await self.request(message)
        write = Write(message["action"], message, reply)
        self.writes.append(write)
        todo_id = message.get("todo_id")
        self._busy.discard(todo_id)  # type: ignore[arg-type]
        if write.succeeded and write.action == "create_todo":
            self._mine.append(reply["data"]["id"])
        elif write.succeeded and write.action == "delete_todo":
            self._mine.remove(todo_id)  # type: ignore[arg-type]

    async def write_many(self, count: int) -> None:
        """`count` writes, up to IN_FLIGHT at a time."""
        window = asyncio.Semaphore(IN_FLIGHT)
        tasks = []
        for _ in range(count):
            await window.acquire()
            task = asyncio.create_task(self._write(next(self._write_numbers)))
            task.add_done_callback(lambda _: window.release())
            tasks.append(task)
        await asyncio.gather(*tasks)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.sock.close()


async def fresh_list(replica: ServiceProcess, tokens: Tokens, user: int) -> dict[str, Any]:
    sock = await open_user_socket(replica, tokens, user)
    await sock.close()
    return sock.initial  # type: ignore[attr-defined,no-any-return]


async def wait_for_rev(clients: list[SyncedClient], rev: int) -> None:
    """Every client holds `rev` (bounded); a reader that failed fails the test at once."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while True:
        for client in clients:
            failure = client.reader_failure()
            if failure is not None:
                raise failure
        if all(client.rev == rev for client in clients):
            return
        behind = {c.name: c.rev for c in clients if c.rev != rev}
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {CONVERGE_TIMEOUT}s these sockets never reached rev {rev}: {behind}"
                + "".join(
                    f"\n{c.name} last received:\n  " + "\n  ".join(c.received[-10:])
                    for c in clients
                    if c.name in behind
                )
            )
        await asyncio.sleep(0.05)


def check_acknowledgements(clients: list[SyncedClient]) -> int:
    """The successful writes got the revisions 1..n, each once; n is returned."""
    acknowledged = sorted(
        w.reply["rev"] for client in clients for w in client.writes if w.succeeded
    )
    assert acknowledged == list(range(1, len(acknowledged) + 1)), (
        "successful writes must get consecutive revisions, each once "
        f"(an error reply for a committed write shows as a hole): {acknowledged}"
    )
    return len(acknowledged)


def expected_todos(clients: list[SyncedClient]) -> dict[int, dict[str, Any]]:
    """Each socket writes only its own todos: the newest acknowledged state of each one."""
    todos: dict[int, dict[str, Any]] = {}
    for write in sorted(
        (w for c in clients for w in c.writes if w.succeeded), key=lambda w: w.reply["rev"]
    ):
        if write.action == "delete_todo":
            del todos[write.request["todo_id"]]
        else:
            todos[write.reply["data"]["id"]] = write.reply["data"]
    return todos


async def converge_and_compare(
    clients: list[SyncedClient], replicas: list[ServiceProcess], tokens: Tokens, user: int
) -> None:
    total = check_acknowledgements(clients)
    lists = [await fresh_list(replica, tokens, user) for replica in replicas]
    assert lists[0] == lists[1], "two replicas list one database differently"
    final = lists[0]
    assert final["rev"] == total, (
        f"the user's rev is {final['rev']} after {total} successful writes "
        f"({sum(len(c.writes) for c in clients)} attempted)"
    )
    listed = {t["id"]: t for t in final["data"]}
    assert listed == expected_todos(clients), "the stored todos are not the acknowledged ones"

    await wait_for_rev(clients, final["rev"])
    for client in clients:
        assert client.state == listed, f"{client.name} applied a state other than the list"
        # Everything the server queued for this socket came before this answer, checked.
        answer = await client.request({"action": "get_all_todos"})
        assert answer["type"] == "todos_list" and answer["rev"] == final["rev"], answer
        assert {t["id"]: t for t in answer["data"]} == client.state
        assert client.rev == final["rev"], f"{client.name} moved past the final rev"


@pytest.fixture
async def clients(
    replicas: list[ServiceProcess], tokens: Tokens
) -> AsyncIterator[tuple[int, list[SyncedClient]]]:
    user = new_user_id()
    opened = [
        await SyncedClient.connect(name, replica, tokens, user)
        for name, replica in zip(("on-a", "on-b"), replicas, strict=True)
    ]
    for client in opened:
        assert client.rev == 0 and client.state == {}, "a fresh user starts at rev 0"
    yield user, opened
    for client in opened:
        await client.close()


async def test_concurrent_writes_on_two_replicas_reach_both_sockets_gap_free(
    clients: tuple[int, list[SyncedClient]], replicas: list[ServiceProcess], tokens: Tokens
) -> None:
    user, synced = clients
    await asyncio.gather(*(client.write_many(WRITES_PER_SOCKET) for client in synced))

    failed = [w for client in synced for w in client.writes if not w.succeeded]
    assert not failed, f"writes failed with Redis up: {[(w.request, w.reply) for w in failed]}"
    await converge_and_compare(synced, replicas, tokens, user)
    assert all(client.rev == 2 * WRITES_PER_SOCKET for client in synced)


async def test_redis_stopped_mid_writes_loses_no_change_on_any_socket(
    clients: tuple[int, list[SyncedClient]],
    replicas: list[ServiceProcess],
    redis: RedisServer,
    tokens: Tokens,
) -> None:
    user, synced = clients
    quarter = WRITES_PER_SOCKET // 4

    async def write_all(count: int) -> None:
        await asyncio.gather(*(client.write_many(count) for client in synced))

    await write_all(quarter)
    # Redis goes away while writes are on the wire, stays away for more writes, and comes
    # back while the last ones are being sent.
    stopped_at = time.monotonic()
    await asyncio.gather(asyncio.to_thread(redis.stop), write_all(quarter))
    await write_all(quarter)
    await asyncio.sleep(max(0.0, REDIS_DOWN_SECONDS - (time.monotonic() - stopped_at)))
    await asyncio.gather(asyncio.to_thread(redis.start), write_all(WRITES_PER_SOCKET - 3 * quarter))

    outcomes = [
        w.reply["type"] if w.succeeded else w.reply.get("code")
        for client in synced
        for w in client.writes
    ]
    unexpected = [
        (w.request, w.reply)
        for client in synced
        for w in client.writes
        if not w.succeeded and w.reply.get("code") != "internal_error"
    ]
    assert not unexpected, (
        f"only internal_error may answer a write while Redis is down: {unexpected}"
    )
    assert outcomes.count("internal_error") < len(outcomes), "no write succeeded at all"
    await converge_and_compare(synced, replicas, tokens, user)

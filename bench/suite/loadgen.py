"""The load generator's sockets (picows): closed loops, first-message waits, fan-out.

picows calls `on_ws_frame` straight from the event loop's read callback, so a closed loop
(reply in, next request out) costs no task switch and no future: the client stays cheap
enough that it is not what the benchmark measures (its CPU is reported anyway).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

# The CRUD cycle of bench/ws_hot_path.py: create, update (the todo just created), list,
# delete. The echo server gets the very same frames back.
CREATE = (
    b'{"action":"create_todo","payload":{"title":"Buy milk","description":"2 litres"},'
    b'"request_id":"c"}'
)
GET_ALL = b'{"action":"get_all_todos","payload":null,"request_id":"g"}'
ERROR_MARK = b'"type":"error"'
MAX_FRAME = 64 * 1024 * 1024


def update_frame(todo_id: int) -> bytes:
    return (
        b'{"action":"update_todo","todo_id":%d,"payload":{"completed":true},"request_id":"u"}'
        % todo_id
    )


def delete_frame(todo_id: int) -> bytes:
    return b'{"action":"delete_todo","todo_id":%d,"request_id":"d"}' % todo_id


def seed_frame(n: int) -> bytes:
    return b'{"action":"create_todo","payload":{"title":"seed %d"},"request_id":"s"}' % n


class Socket(WSListener):
    """A client socket: frames assembled into messages, `receive()` for the next one."""

    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self._parts: list[bytes] = []
        self._inbox: deque[bytes] = deque()
        self._waiter: asyncio.Future[bytes] | None = None
        self.close_code: int | None = None
        self.disconnected: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            code = frame.get_close_code()
            self.close_code = int(code.value) if code is not None else 1005
            if not transport.is_close_frame_sent:
                transport.send_close(code)
            transport.disconnect()
            return
        if kind not in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
            return  # pings are answered by picows (auto pong)
        if not frame.fin:
            self._parts.append(frame.get_payload_as_bytes())
            return
        payload = frame.get_payload_as_bytes()
        if self._parts:
            payload = b"".join([*self._parts, payload])
            self._parts = []
        self.on_message(payload)

    def on_message(self, payload: bytes) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(payload)
        else:
            self._inbox.append(payload)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(self.close_code or 1006)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"closed {self.close_code or 1006}"))

    async def receive(self, within: float = 30.0) -> bytes:
        if self._inbox:
            return self._inbox.popleft()
        if self.disconnected.done():
            raise ConnectionError(f"closed {self.close_code or 1006}")
        self._waiter = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(self._waiter, within)

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, payload)

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not self.disconnected.done():
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()


S = TypeVar("S", bound="Socket")


async def connect(factory: Callable[[], S], url: str, within: float = 10.0) -> S:
    _, listener = await ws_connect(
        factory, url, websocket_handshake_timeout=within, max_frame_size=MAX_FRAME
    )
    return listener  # type: ignore[return-value]


class Window:
    """The measured interval (monotonic clock, shared by every process on the machine) and
    the round trips that fell inside it."""

    def __init__(self, start: float, stop: float) -> None:
        self.start = start
        self.stop = stop
        self.latencies: list[float] = []
        self.errors = 0

    def summary(self) -> dict[str, Any]:
        return {"latencies": self.latencies, "errors": self.errors}


class CrudSocket(Socket):
    """Closed loop: each reply sends the next frame of the CRUD cycle from the callback."""

    def __init__(self, echo: bool) -> None:
        super().__init__()
        self.echo = echo
        self.todo_id = 1
        self.step = 0
        self.sent_at = 0.0
        self.window: Window | None = None
        self.finished: asyncio.Future[None] | None = None

    def start_loop(self, window: Window) -> asyncio.Future[None]:
        self.window = window
        self.finished = asyncio.get_running_loop().create_future()
        self._send_next()
        return self.finished

    def _send_next(self) -> None:
        step = self.step
        if step == 0:
            frame = CREATE
        elif step == 1:
            frame = update_frame(self.todo_id)
        elif step == 2:
            frame = GET_ALL
        else:
            frame = delete_frame(self.todo_id)
        self.sent_at = time.monotonic()
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, frame)

    def on_message(self, payload: bytes) -> None:
        window = self.window
        if window is None:
            super().on_message(payload)
            return
        now = time.monotonic()
        if window.start <= self.sent_at and now <= window.stop:
            window.latencies.append(now - self.sent_at)
            if ERROR_MARK in payload:
                window.errors += 1
        if self.step == 0 and not self.echo:
            try:
                self.todo_id = int(orjson.loads(payload)["data"]["id"])
            except (KeyError, TypeError, ValueError):
                window.errors += 1
        self.step = (self.step + 1) % 4
        if now >= window.stop:
            self.window = None
            if self.finished is not None and not self.finished.done():
                self.finished.set_result(None)
            return
        self._send_next()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        super().on_ws_disconnected(transport)
        if self.finished is not None and not self.finished.done():
            self.finished.set_exception(ConnectionError(f"closed {self.close_code or 1006}"))


class FanoutGroup:
    """K sockets of one user: when did the last of them get the current write's event."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.count = 0
        self.last_at = 0.0
        self.ack_at = 0.0
        self.last_id = 0
        self.done: asyncio.Future[None] | None = None

    def expect(self) -> asyncio.Future[None]:
        self.count = 0
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def delivered(self, payload: bytes) -> None:
        message = orjson.loads(payload)
        kind = message.get("type")
        if kind not in ("todo_created", "todo_deleted"):
            return
        if kind == "todo_created":
            self.last_id = int(message["data"]["id"])
        if "request_id" in message:  # the writer's own reply
            self.ack_at = time.monotonic()
        self.count += 1
        if self.count == self.size and self.done is not None and not self.done.done():
            self.last_at = time.monotonic()
            self.done.set_result(None)


class FanoutSocket(Socket):
    def __init__(self, group: FanoutGroup) -> None:
        super().__init__()
        self.group = group
        self.started = False

    def on_message(self, payload: bytes) -> None:
        if self.started:
            self.group.delivered(payload)
        else:
            super().on_message(payload)

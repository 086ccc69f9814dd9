"""The per-socket loop: receive, limit, parse, dispatch, encode once, send; in request order.

One `Connection` per authenticated socket. Messages are handled one at a time, so replies
leave in the order the requests came. Events from the user's other sockets arrive through
`deliver` and go out from a small outbox task, so a slow socket never stalls another's
request. `close` waits for the message being handled (its write committed and its reply
sent) and for the outbox, then closes with the given code: 1001 on shutdown, 1008 when the
token expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from sanic.exceptions import ServerError, WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed

from todo_ws_service.auth import User
from todo_ws_service.fanout import Hub
from todo_ws_service.handlers import dispatch
from todo_ws_service.messages import (
    ErrorCode,
    ProtocolError,
    error_message,
    parse_request,
    request_id_of,
)
from todo_ws_service.ratelimit import TokenBucket
from todo_ws_service.store import TodoStore

logger = logging.getLogger("todo_ws_service.connection")

# A handler (one SQL statement) that takes longer than this is treated as a failure.
HANDLER_TIMEOUT = 10.0
# How long `close` waits for the message in hand and the outbox before closing anyway.
DRAIN_TIMEOUT = 5.0
# Events queued for a socket that does not read them; beyond this it is closed (1013).
OUTBOX_LIMIT = 1000

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013

_SOCKET_GONE = (ConnectionClosed, WebsocketClosed, ServerError)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits, read from the settings once at start-up."""

    rate: float  # messages a second; 0 = unlimited
    burst: int


def encode(message: dict[str, Any]) -> str:
    """JSON text of a server message (orjson; Sanic sends a str as a text frame)."""
    return orjson.dumps(message).decode()


def with_request_id(encoded: str, request_id: str | None) -> str:
    """The asker's copy of an encoded event: the same JSON plus its `request_id`."""
    if request_id is None:
        return encoded
    # Splice rather than encode the whole event a second time.
    return f'{encoded[:-1]},"request_id":{orjson.dumps(request_id).decode()}}}'


def error_frame(
    code: ErrorCode,
    message: str,
    details: list[dict[str, str]] | None = None,
    request_id: str | None = None,
) -> str:
    return encode(error_message(code, message, details, request_id))


def _rid(frame: str | bytes) -> str | None:
    """The frame's valid `request_id`, if it has one (for replies that skip validation)."""
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return request_id_of(message) if isinstance(message, dict) else None


class Connection:
    """One authenticated WebSocket and its user."""

    def __init__(
        self, ws: WebsocketImplProtocol, user: User, store: TodoStore, hub: Hub, limits: Limits
    ) -> None:
        self._ws = ws
        self._user = user
        self._store = store
        self._hub = hub
        self._bucket = TokenBucket(limits.rate, limits.burst) if limits.rate > 0 else None
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._outbox: deque[str] = deque()
        self._outbox_open = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    @property
    def user_id(self) -> int:
        return self._user.id

    # ------------------------------------------------------------ the loop

    async def serve(self) -> None:
        """Send the list, then answer messages until the socket closes."""
        # Register before reading the list so no change falls between the two; events
        # queued meanwhile wait until the list has gone out (it must be the first message).
        self._hub.register(self)
        expiry = self._schedule_expiry()
        try:
            if not await self._send_initial_list():
                return
            self._open_outbox()
            await self._receive_loop()
        finally:
            expiry.cancel()
            self._hub.unregister(self)
            if self._writer is not None:
                self._writer.cancel()

    async def _send_initial_list(self) -> bool:
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT):
                rows = await self._store.list_for(self._user.id)
        except Exception:
            logger.exception("could not load the todo list at connect")
            # Without its list the client has no state to apply events to: let it retry.
            await self._send_final(
                error_frame("internal_error", "could not load your todos, reconnect later"),
                CLOSE_SERVER_ERROR,
                "internal error",
            )
            return False
        await self.send_reply(encode({"type": "todos_list", "data": rows}))
        return True

    async def _receive_loop(self) -> None:
        # Runs until the socket is gone: returning early would let Sanic close it with 1000
        # before `close` sends its own code.
        ws = self._ws
        while True:
            try:
                frame = await ws.recv()
            except _SOCKET_GONE:
                return
            if frame is None:
                return
            if self._closing:
                continue  # closing: what arrives now is not answered
            self._idle.clear()
            try:
                await self.send_reply(await self._answer(frame))
            except _SOCKET_GONE:
                return
            finally:
                self._idle.set()

    async def _answer(self, frame: str | bytes) -> str:
        """Handle one frame; the encoded reply for this socket (events are published here)."""
        request_id: str | None = None
        if self._bucket is not None and not self._bucket.take():
            return error_frame("rate_limited", "too many messages, slow down", None, _rid(frame))
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return error_frame("invalid_json", "the frame is not valid JSON")
        try:
            request = parse_request(message)
            request_id = request.request_id
            if self._store.can_hang:
                async with asyncio.timeout(HANDLER_TIMEOUT):
                    reply = await dispatch(self._user, request, self._store)
            else:
                reply = await dispatch(self._user, request, self._store)
        except ProtocolError as exc:
            return error_frame(exc.code, exc.message, exc.details, exc.request_id or request_id)
        except Exception:
            logger.exception("handling a message failed", extra={"user_id": self._user.id})
            return error_frame("internal_error", "something went wrong", None, request_id)
        if not reply.broadcast:
            if request_id is not None:
                reply.message["request_id"] = request_id
            return encode(reply.message)
        event = encode(reply.message)
        reply_to_asker = with_request_id(event, request_id)
        # The hub sends the asker's copy itself, so fan-out and ordering stay in one place.
        await self._hub.publish(self._user.id, event, self, reply_to_asker)
        return ""

    # ------------------------------------------------------------ sending

    async def send_reply(self, data: str) -> None:
        """Send now (an empty string means "already sent")."""
        if data:
            await self._ws.send(data)

    def deliver(self, data: str) -> None:
        """Queue an event from one of the user's other sockets (or another replica)."""
        if self._closing:
            return
        if len(self._outbox) >= OUTBOX_LIMIT:
            logger.warning("closing a socket that does not read its events")
            self.close_soon(CLOSE_TRY_AGAIN, "too slow")
            return
        self._outbox.append(data)
        if self._outbox_open and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_outbox())

    def _open_outbox(self) -> None:
        self._outbox_open = True
        if self._outbox:
            self._writer = asyncio.create_task(self._write_outbox())

    async def _write_outbox(self) -> None:
        try:
            while self._outbox:
                await self._ws.send(self._outbox.popleft())
        except _SOCKET_GONE:
            self._outbox.clear()

    # ------------------------------------------------------------ closing

    def _schedule_expiry(self) -> asyncio.TimerHandle:
        # One timer per connection, from the token's `exp`: no token check per message.
        delay = max(0.0, self._user.expires_at - time.time())
        return asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        frame = error_frame("token_expired", "your access token expired, reconnect with a new one")
        self.close_soon(CLOSE_POLICY, "token expired", frame)

    def close_soon(self, code: int, reason: str, final: str | None = None) -> None:
        """Start closing in the background (from a timer or a synchronous caller)."""
        if self._closer is None:
            self._closer = asyncio.create_task(self._close(code, reason, final))

    async def close(self, code: int, reason: str, final: str | None = None) -> None:
        """Finish the message in hand and queued events, send `final`, then close `code`.

        Every caller waits for the same close: Sanic may run its shutdown listeners twice,
        and the second run must not return (and let Sanic cancel the handler) before the
        first one has drained this socket.
        """
        self.close_soon(code, reason, final)
        assert self._closer is not None
        await asyncio.shield(self._closer)

    async def _close(self, code: int, reason: str, final: str | None) -> None:
        self._closing = True
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                await self._idle.wait()
                if self._writer is not None:
                    await self._writer
        except TimeoutError:
            logger.warning("closing a socket before its last reply went out")
        except _SOCKET_GONE:
            pass
        await self._send_final(final, code, reason)

    async def _send_final(self, final: str | None, code: int, reason: str) -> None:
        self._closing = True
        try:
            if final is not None:
                await self._ws.send(final)
            await self._ws.close(code, reason)
        except _SOCKET_GONE:
            pass

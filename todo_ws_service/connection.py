"""The per-socket loop: receive, limit, parse, dispatch, reply; in request order.

One `Connection` per authenticated socket. Messages are handled one at a time, so replies
leave in the order the requests came. Everything the socket is sent goes through its
`RevisionGate` (gapfill.py: changes in revision order, none skipped) onto its `Outbox`
(outbox.py: one writer at a time, bounded), so a slow socket never stalls another's
request. `close` waits for the message
being handled (its write committed and its reply sent) and for the outbox, then closes
with the given code: 1001 on shutdown, 1008 when the token expires.

Limits (CONTRACT.md section 7): a socket beyond its user's `WS_MAX_CONNECTIONS_PER_USER`
is refused (`too_many_connections`, 1013); one that does not read is dropped with 1013
(outbox.py); invalid UTF-8 closes with 1007
after the frames before it are answered; a list or delta is charged to the rate limiter by
its size.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import orjson
from sanic.server.websockets.impl import WebsocketImplProtocol

from todo_ws_service.fanout import Hub
from todo_ws_service.frames import error_frame, request_id_in, with_request_id
from todo_ws_service.gapfill import RevisionGate
from todo_ws_service.handlers import Reply, Session, dispatch
from todo_ws_service.inbox import CLOSE_INVALID_DATA, INVALID_UTF8, Inbox
from todo_ws_service.messages import ErrorCode, ProtocolError, error_message, parse_request
from todo_ws_service.metrics import MessageMetrics
from todo_ws_service.outbox import CLOSE_TRY_AGAIN, SOCKET_GONE, Outbox
from todo_ws_service.ratelimit import TokenBucket
from todo_ws_service.store import encode

logger = logging.getLogger("todo_ws_service.connection")

# A handler (a transaction) that takes longer than this is treated as a failure.
HANDLER_TIMEOUT = 10.0
# How long `close` waits for the message in hand and the outbox before closing anyway.
DRAIN_TIMEOUT = 5.0
# A list or delta costs one more token of the rate limit per this many characters: a
# client asking for its 5,000 todos over and over must not take the loop from everyone.
SNAPSHOT_CHARS_PER_TOKEN = 65_536

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_SERVER_ERROR = 1011


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits, read from the settings once at start-up."""

    rate: float  # messages a second; 0 = unlimited
    burst: int
    max_buffered: int = 4 * 1024 * 1024  # unsent bytes (characters) before closing 1013
    # How often a socket with unsent data is checked for a client that takes nothing.
    stall_interval: float = 20.0


class Connection:
    """One authenticated WebSocket and its user."""

    def __init__(
        self,
        ws: WebsocketImplProtocol,
        inbox: Inbox,
        session: Session,
        hub: Hub,
        limits: Limits,
        since: int | None = None,
        metrics: MessageMetrics | None = None,  # None: METRICS_ENABLED is false
    ) -> None:
        self._ws = ws
        self._metrics = metrics
        self._inbox = inbox
        self._session = session
        self._hub = hub
        self._since = since
        self._bucket = TokenBucket(limits.rate, limits.burst) if limits.rate > 0 else None
        self._outbox = Outbox(ws, limits.max_buffered, limits.stall_interval, self._on_drop)
        self._emit = self._outbox.put
        self._gate = RevisionGate(self._emit, self._read_delta, self._on_fill_failed)
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._closer: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def user_id(self) -> int:
        return self._session.user.id

    # ------------------------------------------------------------ the loop

    async def serve(self) -> None:
        """Send the list (or the delta after `since`), then answer until the socket closes."""
        # Register before reading so no change falls between the two: the gate holds
        # what arrives meanwhile until the first message has gone out.
        if not self._hub.register(self):
            limit = self._hub.max_per_user
            text = f"you have {limit} open sockets here, the most allowed: close one first"
            await self._send_final(
                error_frame("too_many_connections", text), CLOSE_TRY_AGAIN, "too many sockets"
            )
            return
        self._schedule_expiry(self._session.user.expires_at)
        self._outbox.start_stall_checks()
        try:
            if not await self._send_first_message():
                return
            await self._receive_loop()
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            self._hub.unregister(self)
            self._gate.close()
            self._outbox.stop()

    async def _send_first_message(self) -> bool:
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT):
                rev, frame = await self._read_delta(self._since)
        except Exception:
            logger.exception("could not load the todo list at connect")
            # Without its list the client has no state to apply events to: let it retry.
            await self._send_final(
                error_frame("internal_error", "could not load your todos, reconnect later"),
                CLOSE_SERVER_ERROR,
                "internal error",
            )
            return False
        self._outbox.in_request = True
        self._gate.start(rev, frame)
        try:
            await self._outbox.write()
        except SOCKET_GONE:
            return False
        finally:
            self._outbox.in_request = False
        return True

    async def _read_delta(self, since: int | None) -> tuple[int, str]:
        return await self._session.store.sync_frame(self.user_id, since)

    async def _receive_loop(self) -> None:
        # Runs until the socket is gone: returning early would let Sanic close it with 1000
        # before `close` sends its own code.
        receive = self._inbox.receive
        while True:
            try:
                frame = await receive()
            except SOCKET_GONE:
                return
            if frame is None:
                return
            if self._closing:
                continue  # closing: what arrives now is not answered
            self._idle.clear()
            self._outbox.in_request = True
            try:
                await self._answer(frame)
                await self._outbox.write()  # returns at once if a writer task is at it
            except SOCKET_GONE:
                return
            finally:
                self._outbox.in_request = False
                self._idle.set()

    async def _answer(self, frame: str | bytes) -> None:
        """Handle one frame: its reply, and the change's events, go to the gate."""
        request_id: str | None = None
        metrics = self._metrics
        if self._bucket is not None and not self._bucket.take():
            if metrics is not None:
                metrics.failed(None, "rate_limited")
            self._refuse(
                frame, "rate_limited", "too many messages, slow down", request_id_in(frame)
            )
            return
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            if metrics is not None and frame != INVALID_UTF8:
                metrics.failed(None, "invalid_json")
            self._refuse(frame, "invalid_json", "the frame is not valid JSON")
            return
        started = time.perf_counter()
        try:
            request = parse_request(message)
            request_id = request.request_id
            if self._session.store.can_hang:
                async with asyncio.timeout(HANDLER_TIMEOUT):
                    reply = await dispatch(self._session, request)
            else:
                reply = await dispatch(self._session, request)
        except ProtocolError as exc:
            if metrics is not None:
                metrics.failed_message(message, exc.code, started)
            rid = exc.request_id if exc.request_id is not None else request_id  # "" is one
            self._emit(encode(error_message(exc.code, exc.message, exc.details, rid, exc.data)))
            return
        except Exception:
            if metrics is not None:
                metrics.failed_message(message, "internal_error", started)
            logger.exception("handling a message failed", extra={"user_id": self.user_id})
            self._emit(error_frame("internal_error", "something went wrong", None, request_id))
            return
        if metrics is not None:
            metrics.handled(request.action, time.perf_counter() - started)
        await self._deliver_own(reply, request_id)

    def _refuse(
        self, frame: str | bytes, code: ErrorCode, text: str, request_id: str | None = None
    ) -> None:
        """Answer a frame that can't be handled; close 1007 if it was invalid UTF-8."""
        # Checked only here: the marker is never JSON, so it always comes this way.
        if frame == INVALID_UTF8:
            self._closing = True  # nothing after it is answered
            self.close_soon(CLOSE_INVALID_DATA, "invalid UTF-8")
        else:
            self._emit(error_frame(code, text, None, request_id))

    async def _deliver_own(self, reply: Reply, request_id: str | None) -> None:
        frame = with_request_id(reply.frame, request_id)
        if reply.expires_at is not None:
            self._schedule_expiry(reply.expires_at)
        if reply.rev is None:
            self._emit(frame)
        elif reply.snapshot:
            self._gate.snapshot(reply.rev, frame)
            if self._bucket is not None:
                self._bucket.charge(len(frame) // SNAPSHOT_CHARS_PER_TOKEN)
        elif reply.broadcast:
            # The hub gives the asker its copy and everyone else theirs, in one place.
            waiting = self._hub.publish(self.user_id, reply.rev, reply.frame, self, frame)
            if waiting is not None:
                await waiting  # replies leave in request order: wait for our turn
        else:
            waiting = self._gate.offer_reply(reply.rev, frame)  # an idempotent repeat
            if waiting is not None:
                await waiting

    # ------------------------------------------------------------ sending

    def deliver(self, rev: int, frame: str) -> None:
        """A change from one of the user's other sockets (or another replica)."""
        if not self._closing:
            self._gate.offer(rev, frame)

    def deliver_reply(self, rev: int, frame: str) -> asyncio.Future[None] | None:
        return self._gate.offer_reply(rev, frame)

    def resync(self) -> None:
        if not self._closing:
            self._gate.fill_now()

    def _on_drop(self) -> None:
        self._closing = True  # failed for not reading: nothing more is answered

    def _on_fill_failed(self) -> None:
        # The socket can't be brought up to date: let the client resume with `since`.
        self.close_soon(CLOSE_SERVER_ERROR, "internal error")

    # ------------------------------------------------------------ closing

    def _schedule_expiry(self, expires_at: int) -> None:
        # One timer per connection, from the token's `exp`: no token check per message.
        if self._expiry is not None:
            self._expiry.cancel()
        delay = max(0.0, expires_at - time.time())
        self._expiry = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        frame = error_frame("token_expired", "your access token expired, reconnect with a new one")
        self.close_soon(CLOSE_POLICY, "token expired", frame)

    def close_soon(self, code: int, reason: str, final: str | None = None) -> None:
        """Start closing in the background (from a timer or a synchronous caller)."""
        if self._closer is None:
            self._closer = asyncio.create_task(self._close(code, reason, final))

    async def close(self, code: int, reason: str, final: str | None = None) -> None:
        """Finish the message in hand and queued frames, send `final`, then close `code`.

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
                if self._outbox.writer is not None:
                    await self._outbox.writer
                await self._outbox.write()
        except TimeoutError:
            logger.warning("closing a socket before its last reply went out")
        except SOCKET_GONE:
            pass
        await self._send_final(final, code, reason)

    async def _send_final(self, final: str | None, code: int, reason: str) -> None:
        self._closing = True
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                if final is not None:
                    await self._ws.send(final)
                await self._ws.close(code, reason)
        except TimeoutError:
            # A send still waits on a client that has taken nothing for this long: drop
            # the connection (its close frame could never reach it anyway).
            self._ws.fail_connection(code, reason)
            io_proto = self._ws.io_proto
            if io_proto is not None and io_proto.transport is not None:
                io_proto.transport.abort()
        except SOCKET_GONE:
            pass

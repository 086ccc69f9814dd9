"""One socket's frames on their way to the wire: in order, one writer, bounded memory.

Frames are put in the order they must go (the revision gate decides it). One writer at a
time sends them: the socket's receive loop right after each request (no task per message
on the hot path), or a small task for frames that arrive between requests.

`WS_MAX_BUFFERED` (CONTRACT.md section 7) bounds what a socket may hold unsent: the
frames queued here plus the bytes its transport has not written. A send only waits when
the transport is full, so the bound is checked only while the writer is busy. Past it,
or when the client took nothing of its backlog for a whole `stall_interval`, the socket
is failed with 1013 at once and its frames freed. The frame being sent counts on top of the
bound, so one list larger than it (5,000 long todos) still reaches a client that reads.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from collections.abc import Callable

from sanic.exceptions import RequestCancelled, ServerError, WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

logger = logging.getLogger("todo_ws_service.outbox")

CLOSE_TRY_AGAIN = 1013
# RFC 6455 section 5.2: FIN and the text opcode; a server's frames are not masked.
_FIN_TEXT = 0x81
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")

# RequestCancelled: Sanic's send on a transport that is closing.
SOCKET_GONE = (ConnectionClosed, WebsocketClosed, ServerError, RequestCancelled)


class Outbox:
    """The frames waiting for one socket."""

    def __init__(
        self,
        ws: WebsocketImplProtocol,
        max_buffered: int,
        stall_interval: float,
        on_drop: Callable[[], None],
    ) -> None:
        self._ws = ws
        self._max_buffered = max_buffered
        self._stall_interval = stall_interval
        self._on_drop = on_drop
        self._frames: deque[str] = deque()
        # Characters ever queued, and ever taken off to be sent: their difference is what
        # waits here (not counting the frame being sent).
        self._queued_chars = 0
        self._sent_chars = 0
        self.writing = False
        self._in_flight = 0  # length of the frame being sent
        # True while the receive loop handles a request: it writes itself afterwards.
        self.in_request = False
        self.writer: asyncio.Task[None] | None = None
        self.dropped = False
        self._stall_check: asyncio.TimerHandle | None = None
        # At the last stall check: the transport's unsent bytes, and `_sent_chars`.
        self._backlog_seen = 0
        self._sent_seen = 0

    def put(self, frame: str) -> None:
        """Queue a frame; start a writer unless one runs or the receive loop will write."""
        # The frame being sent may alone be larger than the bound (a big user's whole
        # list): it is allowed on top of it, once.
        if self.writing and self._unsent() > self._max_buffered + self._in_flight:
            self._drop()
            return
        self._frames.append(frame)
        self._queued_chars += len(frame)
        if not self.writing and not self.in_request:
            self.writer = asyncio.create_task(self.write())

    async def write(self) -> None:
        """Send what is queued (returns at once if another writer is at it).

        A lost socket empties the queue; it is raised to the receive loop only.
        """
        if self.writing:
            return
        self.writing = True
        try:
            while self._frames:
                frame = self._frames.popleft()
                self._sent_chars += len(frame)
                self._in_flight = len(frame)
                if not self._write_now(frame):
                    await self._ws.send(frame)
                self._in_flight = 0
        except SOCKET_GONE:
            self._forget_queued()
            if self.in_request:
                raise
        finally:
            self.writing = False

    def _write_now(self, frame: str) -> bool:
        """Write `frame` to the transport as one unmasked text frame, if nothing stands in
        the way; False: `ws.send` must do it (and wait, or raise, as the case may be).

        `ws.send` would do the same through a lock, three coroutines and websockets' frame
        builder (about a tenth of a message's cost). Data frames change nothing in the
        protocol's state (no extension is negotiated), so the two can be mixed: this one
        declines while a send, a ping or a close holds the lock, while the transport pushes
        back (Sanic clears `_can_write` at its high-water mark), and once the socket is
        no longer open.
        """
        ws = self._ws
        io_proto = ws.io_proto
        finished = ws.data_finished_fut
        if (
            ws.ws_proto.state is not State.OPEN
            or ws.conn_mutex.locked()
            or io_proto is None
            or not io_proto._can_write.is_set()
            or finished is None
            or finished.done()
        ):
            return False
        transport = io_proto.transport
        if transport is None or transport.is_closing():
            return False
        payload = frame.encode()
        size = len(payload)
        if size < 126:
            header = bytes((_FIN_TEXT, size))
        elif size < 65536:
            header = _HEADER_16.pack(_FIN_TEXT, 126, size)
        else:
            header = _HEADER_64.pack(_FIN_TEXT, 127, size)
        transport.write(header + payload)
        io_proto._time = time.monotonic()  # as Sanic's send does
        return True

    def start_stall_checks(self) -> None:
        loop = asyncio.get_running_loop()
        self._stall_check = loop.call_later(self._stall_interval, self._check_stall)

    def stop(self) -> None:
        if self._stall_check is not None:
            self._stall_check.cancel()
        if self.writer is not None:
            self.writer.cancel()

    def _unsent(self) -> int:
        """Characters queued here plus bytes the transport has not written yet."""
        return self._queued_chars - self._sent_chars + self._transport_backlog()

    def _transport_backlog(self) -> int:
        io_proto = self._ws.io_proto
        transport = io_proto.transport if io_proto is not None else None
        return transport.get_write_buffer_size() if transport is not None else 0

    def _forget_queued(self) -> None:
        self._frames.clear()
        self._sent_chars = self._queued_chars

    def _drop(self) -> None:
        """Over the bound: free what is queued and fail the socket with 1013 now.

        The close frame follows what the transport already holds; a client that reads again
        gets it. Waiting to send it properly could wait for ever on a client that doesn't.
        """
        self._forget_queued()
        if not self.dropped:
            logger.warning("closing a socket that does not read its messages")
            self.dropped = True
            self._on_drop()
            self._ws.fail_connection(CLOSE_TRY_AGAIN, "too slow")

    def _check_stall(self) -> None:
        """Drop a client that took none of its unsent data for a whole interval.

        Sanic's keepalive ping can't catch it: the ping waits behind the stuck send. A
        transport only holds data the kernel would not take, and a send waits while it is
        that full: a backlog that did not shrink while no frame went out means nothing
        was read.
        """
        backlog = self._transport_backlog()
        if 0 < self._backlog_seen <= backlog and self._sent_chars == self._sent_seen:
            self._drop()
            return
        self._backlog_seen, self._sent_seen = backlog, self._sent_chars
        self.start_stall_checks()

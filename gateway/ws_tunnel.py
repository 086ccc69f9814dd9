"""The WebSocket tunnel: after the upstream's `101`, bytes are copied both ways, as nginx does.

Two asyncio protocols share one connection pair: `Tunnel` is the upstream connection's
protocol (and holds the pair's state), `ClientSide` is the client connection's. Whatever
one side sends is written to the other at once; no message is decoded.

Flow control, both ways: when a connection's write buffer passes the high-water mark
(`WS_MAX_BUFFERED`), asyncio calls its protocol's `pause_writing`, which stops reading the
*other* connection; `resume_writing` (the buffer is back under a quarter of it) reads it
again. A side that reads slowly, or not at all, thus slows its peer down through TCP,
and the gateway holds at most `WS_MAX_BUFFERED` plus one read (up to 256 KiB) per
direction, whatever either side does.

Endings (close codes are end to end: the close handshake itself goes through the tunnel):

| what happened                                    | what the gateway does                         |
|--------------------------------------------------|-----------------------------------------------|
| either side closed its connection                | closes the other once its buffer is written   |
| the upstream's connection ended without a close  | writes close 1014 "bad gateway" to the client |
| frame (killed, network), between two frames      | (mid-frame: the client connection is closed)  |
| the gateway shuts down                           | writes close 1001 to the client (between two  |
|                                                  | frames), which answers it through the tunnel: |
|                                                  | the upstream sees the client close with 1001  |

Per tunnel: these two small objects (`__slots__`), the two transports, no task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.ws_tunnel_frames import OPCODE_CLOSE, close_frame, walk_frame_headers
from shared.logs import redact

logger = logging.getLogger("gateway.ws")

BAD_GATEWAY = close_frame(1014, "bad gateway")
SHUTTING_DOWN = close_frame(1001, "gateway shutting down")
# How long a tunnel closing at shutdown waits for the client's answer before aborting.
SHUTDOWN_CLOSE_TIMEOUT = 5.0


class ClientSide(asyncio.Protocol):
    """The client connection's protocol: what the client sends goes to the upstream."""

    __slots__ = ("tunnel", "upstream")

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.upstream = tunnel.upstream

    def data_received(self, data: bytes) -> None:
        self.upstream.write(data)

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost follows

    def pause_writing(self) -> None:
        if not self.upstream.is_closing():
            self.upstream.pause_reading()  # the client is not taking what the upstream sends

    def resume_writing(self) -> None:
        if not self.upstream.is_closing():
            self.upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.client_lost()


class Tunnel(asyncio.Protocol):
    """The upstream connection's protocol and the tunnel's state (see the module doc)."""

    __slots__ = (
        "client",
        "connections",
        "loop",
        "on_end",
        "outcome",
        "partial_header",
        "path",
        "request_id",
        "shutting_down",
        "started",
        "to_skip",
        "upstream",
        "upstream_closed_cleanly",
    )

    def __init__(
        self,
        client: asyncio.Transport,
        upstream: asyncio.Transport,
        connections: set[Any],
        path: str,
        request_id: str,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.on_end = on_end  # called once when the tunnel ends (the metrics' open count)
        self.upstream = upstream
        self.loop = asyncio.get_running_loop()
        # Sanic's set of open connections: its shutdown calls close_if_idle, then abort.
        self.connections = connections
        self.path = path
        self.request_id = request_id  # its log line is written outside the request
        self.started = time.monotonic()
        self.to_skip = 0  # payload bytes of the upstream's current frame still to come
        self.partial_header = b""  # a frame header cut off at the end of the last read
        self.upstream_closed_cleanly = False  # the upstream sent a close frame
        self.shutting_down = False
        self.outcome = ""

    def start(
        self, max_buffered: int, response_head: bytes, client_bound: bytes, upstream_bound: bytes
    ) -> None:
        """Become both connections' protocol, send the client the upstream's `101` (with
        whatever followed it: often the first frame, in one write), and the upstream what
        the client sent early."""
        client_side = ClientSide(self)
        self.client.set_protocol(client_side)
        self.upstream.set_protocol(self)
        self.connections.add(self)
        for transport in (self.client, self.upstream):
            if not transport.is_closing():  # the upstream may be gone already
                transport.set_write_buffer_limits(high=max_buffered, low=max_buffered // 4)
        if upstream_bound and not self.upstream.is_closing():
            self.upstream.write(upstream_bound)
        self.client.write(response_head + client_bound)
        self._follow(client_bound)
        self.client.resume_reading()  # Sanic may have paused it while reading the head
        logger.debug("websocket %s: tunnel open", redact(self.path))

    # The upstream's bytes, to the client: the hot path.
    def data_received(self, data: bytes) -> None:
        if self.shutting_down:
            return  # the client has been sent its close frame: nothing may follow it
        self.client.write(data)
        self._follow(data)

    def _follow(self, data: bytes) -> None:
        """Follow the frame headers of `data`, just written to the client."""
        size = len(data)
        to_skip = self.to_skip - size
        if to_skip >= 0:
            self.to_skip = to_skip  # still inside one frame's payload
            return
        if to_skip == -size and size > 3 and not self.partial_header:
            # The usual read: exactly one unmasked frame of under 64 KiB, header included.
            second = data[1]  # a mask bit (which a server must not set) makes it > 127
            if second < 126:
                length = 2 + second
            elif second == 126:
                length = 4 + (data[2] << 8 | data[3])
            else:
                length = 0  # 64-bit length, or masked: the general walk
            if length == size:
                if data[0] & 0x0F == OPCODE_CLOSE:
                    self.upstream_closed_cleanly = True
                return
        if self.partial_header:
            data, start = self.partial_header + data, 0
        else:
            start = self.to_skip
        self.to_skip, self.partial_header, saw_close = walk_frame_headers(data, start)
        if saw_close:
            self.upstream_closed_cleanly = True

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        if not self.client.is_closing():
            self.client.pause_reading()  # the upstream is not taking what the client sends

    def resume_writing(self) -> None:
        if not self.client.is_closing():
            self.client.resume_reading()

    def _between_frames(self) -> bool:
        return self.to_skip == 0 and not self.partial_header

    def connection_lost(self, exc: Exception | None) -> None:
        """The upstream connection is gone: end the client's, with 1014 if it was lost."""
        if not self.client.is_closing():
            if self.upstream_closed_cleanly or self.shutting_down:
                self.outcome = self.outcome or "upstream closed"
            elif self._between_frames():
                self.client.write(BAD_GATEWAY)
                self.outcome = "upstream lost, client closed with 1014"
            else:
                self.outcome = "upstream lost mid-frame, client connection closed"
            self.client.close()  # after what is still buffered for it
        self._ended()

    def client_lost(self) -> None:
        """The client connection is gone: end the upstream's once its buffer is written."""
        if not self.upstream.is_closing():
            self.outcome = self.outcome or "client closed"
            self.upstream.close()
        self._ended()

    # Sanic's shutdown: close_if_idle() on every connection, then abort() after
    # GRACEFUL_SHUTDOWN_TIMEOUT on those still open.
    def close_if_idle(self) -> bool:
        if self.shutting_down or self.client.is_closing() or self.upstream.is_closing():
            return False
        if self.upstream_closed_cleanly:
            return False  # a close handshake is under way already
        self.shutting_down = True
        if not self._between_frames():
            self.outcome = "gateway shutting down mid-frame, connections closed"
            self.abort()
            return True
        self.client.write(SHUTTING_DOWN)
        self.outcome = "gateway shutting down, client closed with 1001"
        # The client's answering close frame goes upstream; the upstream then closes.
        self.loop.call_later(SHUTDOWN_CLOSE_TIMEOUT, self.abort)
        return False

    def abort(self) -> None:
        self.client.abort()
        self.upstream.abort()

    def _ended(self) -> None:
        if self in self.connections:
            self.connections.discard(self)
            if self.on_end is not None:
                self.on_end()
            logger.info(
                "websocket %s: %s after %.1fs (request %s)",
                redact(self.path),
                self.outcome,
                time.monotonic() - self.started,
                self.request_id,
            )

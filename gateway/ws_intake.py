"""A cap on what the gateway reads from a client socket ahead of the relay.

Sanic 25.12's WebSocket (`WebsocketImplProtocol.data_received`) parses every chunk the
client sends and starts a task per chunk to hand its frames over; it stops reading only
once its assembler holds a message nobody asked for. A client that sends fast while the
relay is busy (its upstream slow to take messages) thus piles up one task per chunk: a
client could make the gateway hold hundreds of MB. `ClientIntake` does what Sanic does
with each chunk, and also counts the bytes whose task has not run yet: past `limit` it
stops reading the client until the relay has caught up, so the client's own sends wait.
Sanic resumes reading whenever the relay takes a message; while over the limit, reading
is paused again at once.
"""

from __future__ import annotations

import asyncio

from sanic import Websocket


class ClientIntake:
    """Reads `client` for the relay with at most about `limit` bytes read ahead."""

    def __init__(self, client: Websocket, limit: int) -> None:
        self.client = client
        self.limit = limit
        self.pending = 0  # bytes read whose frames the relay has not been handed yet
        self.paused = False
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self) -> None:
        """Take over reading `client` from Sanic (its protocol calls `data_received`)."""
        self._sanic_resume_frames = self.client.resume_frames
        self.client.data_received = self.data_received  # type: ignore[method-assign]
        self.client.resume_frames = self.resume_frames  # type: ignore[method-assign]

    def data_received(self, data: bytes) -> None:
        # Sanic's own steps, as in WebsocketImplProtocol.data_received...
        client = self.client
        client.ws_proto.receive_data(data)
        data_to_send = client.ws_proto.data_to_send()
        events = client.ws_proto.events_received()
        if not data_to_send and not events:
            return
        task = asyncio.create_task(client.async_data_received(data_to_send, events))
        # ...plus the count: released when the task has handed its frames over.
        size = len(data)
        self.pending += size
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._handed_over(done, size))
        if self.pending > self.limit:
            self.paused = True
            self._pause_reading()

    def resume_frames(self) -> bool:
        """Sanic's, called when the relay takes a message; our cap still holds."""
        resumed = self._sanic_resume_frames()
        if self.paused:
            self._pause_reading()
        return resumed

    def _handed_over(self, task: asyncio.Task[None], size: int) -> None:
        self._tasks.discard(task)
        self.pending -= size
        # Resume at half the limit, and not while Sanic holds reading paused itself
        # (its assembler resumes when the relay asks for the next message).
        if self.paused and self.pending <= self.limit // 2:
            self.paused = False
            transport = self._transport()
            if transport is not None and self.client.pause_frame_fut is None:
                transport.resume_reading()

    def _pause_reading(self) -> None:
        transport = self._transport()
        if transport is not None:
            transport.pause_reading()  # idempotent

    def _transport(self) -> asyncio.Transport | None:
        transport = self.client.io_proto.transport if self.client.io_proto else None
        return None if transport is None or transport.is_closing() else transport

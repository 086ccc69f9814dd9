"""What the upstream sent that the client has not taken yet, bounded in bytes.

The upstream is read as fast as it sends, so its socket never backs up because of one slow
client, and each message waits here until the client's socket takes it. A client that
reads slowly, or never, makes this grow: past `WS_MAX_BUFFERED` unsent bytes (waiting here
plus still in the client connection's write buffer) the relay closes the client with 1013
instead of holding more (contract section 7). One message larger than the limit (a big
user's whole list) is taken only when nothing else is unsent.
"""

from __future__ import annotations

import asyncio
from collections import deque

from sanic import Websocket
from sanic.exceptions import WebsocketClosed
from websockets.exceptions import ConnectionClosed

Message = str | bytes


class ClientTooSlow(Exception):
    """Relaying one more message would hold more unsent bytes than the limit allows."""


def message_size(message: Message) -> int:
    """Bytes on the wire (a text frame is UTF-8); isascii() is O(1) for str."""
    if isinstance(message, str) and not message.isascii():
        return len(message.encode())
    return len(message)


class ClientOutbox:
    """Messages on their way to one client socket, at most `limit` bytes unsent."""

    def __init__(self, client: Websocket, limit: int) -> None:
        self.client = client
        self.limit = limit
        self._messages: deque[tuple[Message, int]] = deque()
        self._waiting_bytes = 0  # in `_messages`, and the one being handed to the client
        self._changed = asyncio.Event()
        self._ended = False

    def _client_backlog(self) -> int:
        """Bytes the client connection has been given but not yet written to its socket."""
        transport = self.client.io_proto.transport if self.client.io_proto else None
        return transport.get_write_buffer_size() if transport is not None else 0

    def unsent(self) -> int:
        return self._waiting_bytes + self._client_backlog()

    def put(self, message: Message) -> None:
        """Queue `message` for the client; ClientTooSlow when that would pass the limit."""
        size = message_size(message)
        unsent = self.unsent()
        if unsent > 0 and unsent + size > self.limit:
            raise ClientTooSlow(f"{unsent} bytes unsent, {size} more")
        self._messages.append((message, size))
        self._waiting_bytes += size
        self._changed.set()

    def end(self) -> None:
        """No more messages: `deliver` returns once the queued ones are sent."""
        self._ended = True
        self._changed.set()

    async def deliver(self) -> None:
        """Send queued messages to the client in order until `end`, or the client is gone."""
        try:
            while True:
                if not self._messages:
                    if self._ended:
                        return
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                message, size = self._messages[0]
                # Sanic's send() waits while the connection's write buffer is over its
                # high-water mark, so the client's socket paces this loop.
                await self.client.send(message)
                self._messages.popleft()
                self._waiting_bytes -= size
        except (ConnectionClosed, WebsocketClosed):
            return

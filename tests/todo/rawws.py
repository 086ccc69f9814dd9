"""A WebSocket client on a bare TCP socket, for frames no well-behaved library would send.

`RawSocket` does the opening handshake by hand, then sends whatever bytes it is given
(hand-built masked frames, several in one TCP segment, invalid UTF-8, garbage) and reads the
server's frames one by one. Server frames are never masked (RFC 6455 section 5.1).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from dataclasses import dataclass

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
TIMEOUT = 10.0


def frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """One client frame: masked, as RFC 6455 requires of a client."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 2**16:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return head + mask + masked


@dataclass(frozen=True)
class Frame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The code of a close frame (None for another frame, or a close without a code)."""
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return int(struct.unpack("!H", self.payload[:2])[0])


class RawSocket:
    """A handshaken TCP connection to `/ws_ep/ws`; `send_raw` writes bytes as they are."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, token: str, receive_buffer: int | None = None) -> RawSocket:
        """Handshake on `/ws_ep/ws?token=...`; `receive_buffer` sets the kernel's SO_RCVBUF
        (a small one makes a client that stops reading hold back the server at once)."""
        sock = socket.socket()
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), TIMEOUT
        )
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws_ep/ws?token={token} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        """Write `data` in one call (one TCP segment, for small data on loopback)."""
        self.writer.write(data)
        await self.writer.drain()

    async def recv_frame(self, timeout: float = TIMEOUT) -> Frame:
        """The server's next frame (a ping is answered and skipped)."""
        while True:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await asyncio.wait_for(self.reader.readexactly(size), timeout)
            opcode = first & 0x0F
            if opcode == OP_PING:
                await self.send_raw(frame(payload, OP_PONG))
                continue
            return Frame(opcode, payload)

    async def close_code(self, timeout: float = TIMEOUT) -> int | None:
        """Read past any data frames to the server's close frame; its code."""
        while True:
            received = await self.recv_frame(timeout)
            if received.opcode == OP_CLOSE:
                return received.close_code

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

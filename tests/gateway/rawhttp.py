"""HTTP/1.1 over a plain socket, for what httpx would not send as written.

httpx resolves `..` and `.` in paths and sends a body as fast as it can; these helpers
send the request target byte for byte and can pace a body the way a slow uplink does.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> RawResponse:
    """A whole HTTP/1.1 response as read off the socket (a chunked body is de-chunked)."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return RawResponse(int(status_line.split(" ")[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def request(
    port: int,
    target: bytes,
    method: bytes = b"GET",
    headers: Iterable[bytes] = (),
    body_pieces: Iterable[bytes] = (),
    pause: float = 0.0,
    timeout: float = 10.0,
) -> RawResponse:
    """Send one request (`Connection: close`) and read the whole response.

    `body_pieces` are sent one by one with `pause` seconds between them; when the server
    stops taking them (it answered early and closed), the answer is read all the same.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        head = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (
            method,
            target,
            port,
        )
        sock.sendall(head + b"".join(h + b"\r\n" for h in headers) + b"\r\n")
        try:
            for piece in body_pieces:
                sock.sendall(piece)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    return parse_response(bytes(data))


def paced(body: bytes, piece: int = 16 * 1024) -> list[bytes]:
    """`body` cut into pieces of `piece` bytes."""
    return [body[start : start + piece] for start in range(0, len(body), piece)]


def chunked(pieces: Iterable[bytes]) -> list[bytes]:
    """`pieces` in chunked transfer coding, the last chunk included."""
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]

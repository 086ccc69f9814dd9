"""Raw HTTP/1.1 over a plain socket: bytes exactly as written, where httpx would fix them."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass
class RawReply:
    """What came back on one connection until it was closed or went quiet."""

    data: bytes
    closed: bool  # the server closed the connection (EOF), rather than leaving it open
    elapsed: float  # seconds from the first byte sent to EOF or to the quiet timeout

    @property
    def status(self) -> int | None:
        if not self.data.startswith(b"HTTP/1."):
            return None
        return int(self.data.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        head = self.data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def read_until_closed(sock: socket.socket, quiet: float, started: float) -> RawReply:
    """Read until EOF, or until nothing arrives for `quiet` seconds."""
    sock.settimeout(quiet)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
        return RawReply(data, True, time.monotonic() - started)
    except TimeoutError:
        return RawReply(data, False, time.monotonic() - started)
    except ConnectionResetError:
        return RawReply(data, True, time.monotonic() - started)


def exchange(port: int, request: bytes, quiet: float = 2.0) -> RawReply:
    """Send `request` in one piece and read the answer (see `read_until_closed`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(request)
        return read_until_closed(sock, quiet, started)


def trickle(
    sock: socket.socket, data: bytes, interval: float, give_up_after: float
) -> tuple[int, float]:
    """Send `data` one byte every `interval` seconds until the server hangs up (or
    `give_up_after` seconds pass); return how many bytes went out and the seconds taken."""
    started = time.monotonic()
    sent = 0
    for byte in data:
        if time.monotonic() - started > give_up_after:
            break
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
        if server_hung_up(sock, interval):
            break
    return sent, time.monotonic() - started


def server_hung_up(sock: socket.socket, wait: float) -> bool:
    """Wait up to `wait` seconds for the server to answer or close; True once it has."""
    sock.settimeout(wait)
    try:
        chunk = sock.recv(65536, socket.MSG_PEEK)
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return chunk == b"" or chunk.startswith(b"HTTP/1.")

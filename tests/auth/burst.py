"""Requests that reach a server at the same instant: one connection each, opened first,
then every request written back to back (an HTTP client library would pace them out).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post_json(path: str, payload: object, headers: dict[str, str] | None = None) -> bytes:
    """A complete `POST` request (one per connection: `Connection: close`)."""
    body = json.dumps(payload).encode()
    head = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), headers, body)


async def send_at_once(port: int, requests: list[bytes], timeout: float = 60) -> list[RawResponse]:
    """Send every request at once, each on its own connection; the answers in order."""
    connections = await asyncio.gather(
        *(asyncio.open_connection("127.0.0.1", port) for _ in requests)
    )
    try:
        for (_, writer), request in zip(connections, requests, strict=True):
            writer.write(request)
        await asyncio.gather(*(writer.drain() for _, writer in connections))
        answers = await asyncio.wait_for(
            asyncio.gather(*(reader.read() for reader, _ in connections)), timeout
        )
    finally:
        for _, writer in connections:
            writer.close()
    return [parse_response(answer) for answer in answers]

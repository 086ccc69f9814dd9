"""Requests that reach a server at the same instant: one connection each, opened first,
then every request written back to back (an HTTP client library would pace them out).
"""

from __future__ import annotations

import asyncio
import json

from tests.gateway.rawhttp import RawResponse, parse_response


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

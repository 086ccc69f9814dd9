"""Opening the upstream leg of a tunnel: the client's upgrade request, sent to a replica.

The request goes out as the client sent it (path and query, end-to-end headers,
`Upgrade`/`Connection` for the upgrade itself) plus `Host` and the gateway's
`X-Forwarded-*` and `X-Request-ID` (gateway/headers.py). Replicas are tried in the pool's
order: one that refuses the TCP connection, does not answer within
`GATEWAY_CONNECT_TIMEOUT`, or closes without an answer is marked down and the next one is
tried (the request cannot have been acted on: an upgrade is a GET). The answer is read with
httptools (Sanic's own dependency):

- `101`: `Upgraded`, the open connection with the response head and whatever the upstream
  sent after it (often its first frame, in the same packet);
- anything else: `Refused`, the whole response (status, headers, body), for the client.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools
from sanic import Request

from gateway.headers import end_to_end, forwarding_headers
from gateway.upstreams import Replica, ReplicaPool

# Never forwarded as the client sent them: set here (`host`, the upgrade's own
# hop-by-hop pair) or by forwarding_headers().
_SET_HERE = frozenset(
    {"host", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"}
)
# A refusal's body is held whole to answer the client; a larger one is a bad gateway.
MAX_REFUSAL_BODY = 1024 * 1024
MAX_RESPONSE_HEAD = 64 * 1024


@dataclass(slots=True)
class Upgraded:
    """A replica switched protocols: its connection, ready to become a tunnel."""

    transport: asyncio.Transport
    response_head: bytes
    handshake: UpstreamHandshake


@dataclass(slots=True)
class Refused:
    """A replica answered the upgrade with an HTTP response (4xx, 5xx, even a 200)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class UpstreamUnusable(Exception):
    """No usable answer from this replica (closed, too slow, malformed, too large)."""


def upgrade_request(request: Request, target: str, host: str) -> bytes:
    """The request head sent to the replica at `host` for the client's upgrade `request`."""
    headers = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    headers += end_to_end(request.headers.items(), _SET_HERE)
    headers += forwarding_headers(request)
    lines = [f"GET {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    # Sanic decoded the head with surrogateescape after CheckedHttp allowed only ASCII.
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "surrogateescape")


class UpstreamHandshake(asyncio.Protocol):
    """Reads the replica's answer to the upgrade request (see the module doc)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.received = bytearray()  # the head, for a 101 passed on as it came
        self.head_end = -1
        self.early = bytearray()  # after a 101: what the upstream sent before the tunnel
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.upgraded = False
        self.lost = False
        self.head_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            self.early += data
            return
        if self.done.done():
            return
        self.received += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Only a 101 switches protocols (llhttp stops here for CONNECT-like answers too).
            offset = upgrade.args[0]
            consumed_before = len(self.received) - len(data)
            self.head_end = consumed_before + offset
            self.early += self.received[self.head_end :]
            del self.received[self.head_end :]
            self.upgraded = self.parser.get_status_code() == 101
            self._finish(None if self.upgraded else UpstreamUnusable("upgrade without 101"))
        except httptools.HttpParserError as exc:
            self._finish(UpstreamUnusable(f"malformed answer: {exc}"))
        if not self.head_done.done() and len(self.received) > MAX_RESPONSE_HEAD:
            self._finish(UpstreamUnusable("response head too large"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if not self.head_done.done():
            self.head_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > MAX_REFUSAL_BODY:
            raise httptools.HttpParserCallbackError("refusal body too large")

    def on_message_complete(self) -> None:
        self._finish(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.head_done.done() and not self.done.done() and not self.upgraded:
            # A body delimited by the end of the connection ends here.
            self._finish(None)
        self._finish(UpstreamUnusable("closed without an answer"))

    def _finish(self, error: Exception | None) -> None:
        for future in (self.head_done, self.done):
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def result(self, transport: asyncio.Transport) -> Upgraded | Refused:
        if self.upgraded:
            return Upgraded(transport, bytes(self.received), self)
        status = self.parser.get_status_code()
        return Refused(status, self.headers, bytes(self.body))


def _address(replica: Replica) -> tuple[str, int, ssl.SSLContext | None]:
    url = urlsplit(replica.url)
    secure = url.scheme == "https"
    port = url.port or (443 if secure else 80)
    return url.hostname or "", port, ssl.create_default_context() if secure else None


async def _ask(
    replica: Replica, head: bytes, connect_timeout: float, read_timeout: float
) -> Upgraded | Refused:
    host, port, tls = _address(replica)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(connect_timeout):
        transport, handshake = await loop.create_connection(
            UpstreamHandshake, host, port, ssl=tls, server_hostname=host if tls else None
        )
    try:
        transport.write(head)
        async with asyncio.timeout(connect_timeout):
            await handshake.head_done
        # The rest of a refusal (its body) may take as long as any upstream answer.
        async with asyncio.timeout(read_timeout):
            await handshake.done
    except BaseException:
        transport.abort()
        raise
    outcome = handshake.result(transport)
    if isinstance(outcome, Refused):
        transport.close()  # a refused upgrade's connection is never reused
    return outcome


async def open_upstream(
    request: Request,
    target: str,
    pool: ReplicaPool,
    connect_timeout: float,
    read_timeout: float,
) -> Upgraded | Refused | None:
    """Send the upgrade to the first replica that answers it; None when none does."""
    for replica in pool.attempt_order():
        head = upgrade_request(request, target, urlsplit(replica.url).netloc)
        try:
            outcome = await _ask(replica, head, connect_timeout, read_timeout)
        except (OSError, TimeoutError, UpstreamUnusable) as exc:
            pool.mark_failed(replica, type(exc).__name__)
            continue
        pool.mark_succeeded(replica)
        return outcome
    return None

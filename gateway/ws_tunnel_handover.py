"""Taking a client connection away from Sanic, for a tunnel, from inside a route handler.

Sanic runs each connection as one task (`HttpProtocol.connection_task`, around
`Http.http1()`): it reads a request head into the protocol's `recv_buffer`, awaits the
handler, and when the handler returns, closes the connection (`protocol.close()`) unless
keep-alive lets it read the next request. Its timeouts are checked by a timer of the
protocol (`check_timeouts`), which stands aside while a WebSocket upgrade's handler runs.

`detach_from_sanic` makes the handler's return end Sanic's part without touching the
connection:

1. what the client sent after its request head (pipelined frames) is taken out of
   `recv_buffer`, for the upstream;
2. `protocol.transport = None`: Sanic's `close()` and `abort()` do nothing without it,
   so the end of the connection task (and anything else in Sanic) leaves the socket open;
3. the protocol leaves Sanic's set of connections (the tunnel joins it instead, so that
   Sanic's graceful shutdown still reaches it) and its timeout timer is cancelled;
4. the caller then sets its own protocol on the transport (`transport.set_protocol`):
   from there on the event loop hands the socket's events to the tunnel only.

The request's `Upgrade: websocket` header is what tells Sanic that a handler ending
without a response is no error (`Http.upgrade_websocket`), and its `Connection: Upgrade`
ends the keep-alive loop, so the connection task returns at once.
"""

from __future__ import annotations

import asyncio
from typing import cast

from sanic import Request
from sanic.server.protocols.http_protocol import HttpProtocol


def detach_from_sanic(request: Request) -> tuple[asyncio.Transport, set[object], bytes]:
    """Take the client's connection from Sanic: its transport, Sanic's connection set (for
    the tunnel to join) and the bytes already read past the request head."""
    transport = cast(asyncio.Transport, request.transport)
    protocol = transport.get_protocol()
    assert isinstance(protocol, HttpProtocol)
    pipelined = bytes(protocol.recv_buffer)
    protocol.recv_buffer.clear()
    protocol.transport = None
    protocol.connections.discard(protocol)
    if protocol._callback_check_timeouts is not None:
        protocol._callback_check_timeouts.cancel()
    return transport, protocol.connections, pipelined

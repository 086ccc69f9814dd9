"""The WebSocket bridge: the client's socket relayed to a socket on one replica.

Two pumps run side by side (websockets' consumer/producer pattern): client -> upstream and
upstream -> client, frames relayed as they are (text stays text, binary stays binary).
When either leg ends, the other pump is cancelled and the other leg is closed with the
code and reason the first one closed with. What a peer cannot legally receive is mapped
(RFC 6455 forbids 1005, 1006 and 1015 on the wire):

| what happened                                   | the other side gets          |
|-------------------------------------------------|------------------------------|
| upstream closed with code C (1000, 1008, 4xxx…) | client: C and its reason     |
| upstream lost without a close frame             | client: 1014 "bad gateway"   |
| no replica accepted the connection              | client: accepted, then 1014  |
| client closed with code C                       | upstream: C and its reason   |
| client lost without a close frame               | upstream: 1001 "going away"  |
| a close frame with no code (1005)               | the other side: 1000         |
| the gateway shuts down                          | both: 1001                   |
| over WS_MAX_BUFFERED unsent to the client       | client: 1013, upstream: 1001 |

Memory per socket is bounded both ways. Upstream -> client: the upstream is read as it
sends, into a `ClientOutbox` that holds at most WS_MAX_BUFFERED unsent bytes (a larger
single message larger than that goes through only when nothing else waits, up to
`LARGEST_MESSAGE`; past that the upstream leg's `max_size` refuses it with 1013). Client ->
upstream: `ClientIntake` stops reading the client past WS_MAX_BUFFERED read ahead, and a
message goes upstream only while that leg's write buffer is under `write_limit`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sanic import Request, Websocket
from sanic.exceptions import WebsocketClosed
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage
from websockets.frames import Close, CloseCode
from websockets.protocol import State

from gateway.headers import forwarding_headers
from gateway.upstreams import ReplicaPool
from gateway.ws_intake import ClientIntake
from gateway.ws_outbox import ClientOutbox, ClientTooSlow
from shared.logs import redact

logger = logging.getLogger("gateway.ws")

BAD_GATEWAY = (int(CloseCode.BAD_GATEWAY), "bad gateway")
GOING_AWAY = int(CloseCode.GOING_AWAY)
TOO_SLOW = (int(CloseCode.TRY_AGAIN_LATER), "too much unsent data")
CLOSE_TIMEOUT = 5.0
# Upstream leg: frames read ahead of the relay (it reads at once, so rarely more than one),
# and the write buffer above which sending to the upstream waits for it to drain.
UPSTREAM_MAX_QUEUE = 4
# The largest single message relayed, whatever WS_MAX_BUFFERED says: a user's whole list
# (5,000 todos of 2,000-char descriptions, about 12 MB) is one message. It is let through
# only when nothing else is waiting for the client, so a socket holds at most
# WS_MAX_BUFFERED, or this one message.
LARGEST_MESSAGE = 16 * 1024 * 1024
UPSTREAM_WRITE_LIMIT = 64 * 1024

# Client headers that matter to a WebSocket service; the rest describe the handshake.
_PASSED_TO_UPSTREAM = ("origin", "cookie", "authorization", "accept-language")


def _sendable(code: int) -> bool:
    try:
        Close(code, "").check()
    except Exception:
        return False
    return True


def close_for_client(upstream_close: Close | None) -> tuple[int, str]:
    """What the client is closed with after the upstream leg ended with `upstream_close`."""
    if upstream_close is None:
        return BAD_GATEWAY
    if upstream_close.code == CloseCode.NO_STATUS_RCVD:
        return int(CloseCode.NORMAL_CLOSURE), ""
    if _sendable(upstream_close.code):
        return upstream_close.code, upstream_close.reason
    return BAD_GATEWAY


def close_for_upstream(client_close: Close | None) -> tuple[int, str]:
    """What the upstream is closed with after the client leg ended with `client_close`."""
    if client_close is None:
        return GOING_AWAY, "client connection lost"
    if client_close.code == CloseCode.NO_STATUS_RCVD:
        return int(CloseCode.NORMAL_CLOSURE), ""
    if _sendable(client_close.code):
        return client_close.code, client_close.reason
    return GOING_AWAY, ""


class UpstreamRefused(Exception):
    """A replica answered the handshake with an HTTP error instead of switching protocols."""


async def open_upstream_socket(
    request: Request,
    path: str,
    pool: ReplicaPool,
    open_timeout: float,
    ping_interval: float,
    max_size: int,
) -> ClientConnection | None:
    """Connect to `path` on the first replica that accepts; None when none does."""
    target = path + (f"?{request.query_string}" if request.query_string else "")
    passed = [(k, v) for k, v in request.headers.items() if k.lower() in _PASSED_TO_UPSTREAM]
    headers = forwarding_headers(request) + passed
    for replica in pool.attempt_order():
        try:
            upstream = await connect(
                replica.ws_url + target,
                additional_headers=headers,
                user_agent_header=request.headers.get("user-agent"),
                open_timeout=open_timeout,
                ping_interval=ping_interval,
                ping_timeout=ping_interval,
                close_timeout=CLOSE_TIMEOUT,
                # A message the relay may not hold: refused here, the client gets 1013.
                max_size=max_size,
                max_queue=UPSTREAM_MAX_QUEUE,
                write_limit=UPSTREAM_WRITE_LIMIT,
                compression=None,
                proxy=None,  # never an HTTP(S)_PROXY from the environment
            )
        except (OSError, TimeoutError, InvalidMessage) as exc:
            pool.mark_failed(replica, type(exc).__name__)
            continue
        except InvalidHandshake as exc:
            raise UpstreamRefused(str(exc)) from None
        pool.mark_succeeded(replica)
        return upstream
    return None


def _really_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _client_to_upstream(client: Websocket, upstream: ClientConnection) -> None:
    try:
        while True:
            message = await client.recv()
            if message is not None:
                await upstream.send(message)
    except (ConnectionClosed, WebsocketClosed):
        return
    except asyncio.CancelledError:
        # Sanic's recv() raises CancelledError when the client closes; a real
        # cancellation (from the bridge) must still propagate.
        if _really_cancelled():
            raise


async def _upstream_to_outbox(upstream: ClientConnection, outbox: ClientOutbox) -> None:
    """Read the upstream as fast as it sends; ClientTooSlow when the outbox is full."""
    try:
        while True:
            outbox.put(await upstream.recv())
    except ConnectionClosed:
        outbox.end()


def _refused_an_oversized_message(upstream: ClientConnection) -> bool:
    """Did this leg close the upstream because a message was over `max_size` (1009)?"""
    sent = upstream.protocol.close_sent
    return (
        sent is not None
        and sent.code == CloseCode.MESSAGE_TOO_BIG
        and not upstream.protocol.close_rcvd_then_sent  # we closed first, not an echo
    )


async def _close_quietly(closer: Any) -> None:
    try:
        await asyncio.wait_for(closer, CLOSE_TIMEOUT)
    except (TimeoutError, ConnectionClosed, WebsocketClosed, OSError):
        pass


async def _drop_slow_client(
    client: Websocket, upstream: ClientConnection, max_buffered: int
) -> str:
    """Close a client that would leave over `max_buffered` bytes unsent: 1013, at once."""
    logger.warning("websocket client too slow: over %d bytes unsent, closing 1013", max_buffered)
    # Not client.close(): its close frame would wait behind what the client won't read.
    client.fail_connection(*TOO_SLOW)
    await _close_quietly(upstream.close(GOING_AWAY, "client too slow"))
    return f"client too slow, closed with {TOO_SLOW[0]}"


async def relay_frames(client: Websocket, upstream: ClientConnection, max_buffered: int) -> str:
    """Relay both ways until one leg closes, then close the other alike; say what happened."""
    outbox = ClientOutbox(client, max_buffered)
    to_upstream = asyncio.create_task(_client_to_upstream(client, upstream))
    from_upstream = asyncio.create_task(_upstream_to_outbox(upstream, outbox))
    to_client = asyncio.create_task(outbox.deliver())
    pumps = {to_upstream, from_upstream, to_client}
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        if done == {from_upstream} and from_upstream.exception() is None:
            # The upstream ended: what it sent before its close still goes to the client.
            await asyncio.wait(
                {to_client, to_upstream}, timeout=CLOSE_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    failures = [p.exception() for p in pumps if p.done() and not p.cancelled() and p.exception()]
    too_slow = [f for f in failures if isinstance(f, ClientTooSlow)]
    for failure in failures:
        if not isinstance(failure, ClientTooSlow):
            logger.error("websocket relay failed", exc_info=failure)
    if too_slow or _refused_an_oversized_message(upstream):
        return await _drop_slow_client(client, upstream, max_buffered)
    # Which leg ended is read from the sockets' states, not from which pump returned:
    # a pump also stops when *sending* to the other leg fails.
    if upstream.state is not State.OPEN:
        code, reason = close_for_client(upstream.protocol.close_rcvd)
        await _close_quietly(client.close(code, reason))
        return f"upstream ended, client closed with {code}"
    if client.ws_proto.state is not State.OPEN:
        code, reason = close_for_upstream(client.ws_proto.close_rcvd)
        await _close_quietly(upstream.close(code, reason))
        return f"client ended, upstream closed with {code}"
    # Neither leg closed: a pump failed unexpectedly (logged above).
    await _close_quietly(upstream.close(int(CloseCode.INTERNAL_ERROR), ""))
    await _close_quietly(client.close(int(CloseCode.INTERNAL_ERROR), ""))
    return "relay failed, both closed with 1011"


async def bridge_websocket(
    request: Request,
    client: Websocket,
    path: str,
    pool: ReplicaPool,
    open_timeout: float,
    max_buffered: int,
) -> None:
    """Serve one accepted client socket by relaying it to `path` on a replica of `pool`."""
    started = time.monotonic()
    ClientIntake(client, max_buffered).install()
    ping_interval = float(request.app.config.WEBSOCKET_PING_INTERVAL or 20)
    try:
        upstream = await open_upstream_socket(
            request, path, pool, open_timeout, ping_interval, max(max_buffered, LARGEST_MESSAGE)
        )
    except UpstreamRefused as exc:
        logger.warning("%s upstream refused the websocket: %s", pool.service, redact(str(exc)))
        await _close_quietly(client.close(*BAD_GATEWAY))
        return
    if upstream is None:
        logger.warning("no %s replica reachable for a websocket", pool.service)
        await _close_quietly(client.close(*BAD_GATEWAY))
        return
    try:
        outcome = await relay_frames(client, upstream, max_buffered)
    except asyncio.CancelledError:
        # Sanic cancels the handler when the client's connection is gone (often right
        # after its close frame) and when the gateway shuts down.
        if client.ws_proto.state is State.OPEN:
            code, reason = GOING_AWAY, "gateway shutting down"
            await _close_quietly(client.close(code, reason))
        else:
            code, reason = close_for_upstream(client.ws_proto.close_rcvd)
        await _close_quietly(upstream.close(code, reason))
        raise
    finally:
        await _close_quietly(upstream.close())
    logger.info(
        "websocket %s: %s after %.1fs", redact(request.path), outcome, time.monotonic() - started
    )

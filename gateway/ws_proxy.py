"""A WebSocket upgrade through the gateway: the upstream's answer decides what happens.

| the replicas...                        | the client gets                                    |
|----------------------------------------|----------------------------------------------------|
| one answers `101`                      | that `101`, then a byte tunnel to it (ws_tunnel.py)|
| one answers anything else (401, 404…)  | that HTTP answer, as an ordinary proxied response  |
| none accepts the connection or answers | its socket accepted by the gateway, then close 1014|

Only the last case makes the gateway a WebSocket endpoint itself (through Sanic's own
handshake); otherwise every frame, close handshake included, is the two ends' own.
"""

from __future__ import annotations

import logging

from sanic import HTTPResponse, Request, Websocket
from sanic.exceptions import BadRequest
from sanic.log import access_logger

from gateway.headers import client_response_headers
from gateway.metrics import GatewayMetrics
from gateway.upstreams import ReplicaPool
from gateway.ws_tunnel import Tunnel
from gateway.ws_tunnel_handover import detach_from_sanic
from gateway.ws_tunnel_upstream import Refused, open_upstream

logger = logging.getLogger("gateway.ws")

BAD_GATEWAY = (1014, "bad gateway")
# Set by Sanic on the response it builds from a refusal's body.
_SET_BY_SANIC = ("content-length", "transfer-encoding")


async def _close_with_bad_gateway(request: Request, client: Websocket) -> None:
    await client.close(*BAD_GATEWAY)


def _passed_on(refused: Refused) -> HTTPResponse:
    headers = [
        (name, value)
        for name, value in client_response_headers(refused.headers)
        if name.lower() not in _SET_BY_SANIC
    ]
    response = HTTPResponse(refused.body, status=refused.status)
    for name, value in headers:
        response.headers.add(name, value)
    return response


async def proxy_websocket(
    request: Request,
    path: str,
    pool: ReplicaPool,
    connect_timeout: float,
    read_timeout: float,
    max_buffered: int,
) -> HTTPResponse | None:
    """Serve the upgrade `request` from a replica of `pool` (see the module doc)."""
    if "content-length" in request.headers or "transfer-encoding" in request.headers:
        raise BadRequest("A WebSocket upgrade request has no body.")
    target = path + (f"?{request.query_string}" if request.query_string else "")
    outcome = await open_upstream(request, target, pool, connect_timeout, read_timeout)
    metrics: GatewayMetrics = request.app.ctx.metrics
    if outcome is None:
        metrics.tunnel_unreachable.inc()
        logger.warning("no %s replica reachable for a websocket", pool.service)
        await request.app._websocket_handler(_close_with_bad_gateway, request)
        return None
    if isinstance(outcome, Refused):
        metrics.tunnel_refused.inc()
        logger.info("%s replica refused a websocket: %d", pool.service, outcome.status)
        return _passed_on(outcome)
    if request.transport.is_closing():  # the client left while the upstream answered
        outcome.transport.close()
        return None
    client, connections, pipelined = detach_from_sanic(request)
    tunnel = Tunnel(
        client, outcome.transport, connections, path, str(request.id), metrics.tunnels_open.dec
    )
    metrics.tunnels_opened.inc()
    metrics.tunnels_open.inc()
    early = bytes(outcome.handshake.early)
    tunnel.start(max_buffered, outcome.response_head, early, pipelined)
    if outcome.handshake.lost:  # the upstream closed before the tunnel took it over
        tunnel.connection_lost(None)
    access_logger.info(
        "",
        extra={
            "status": 101,
            "byte": "tunnel",
            "host": f"{request.client_ip}:{request.port}",
            "request": f"GET {request.url}",
            "duration": "",
        },
    )
    return None

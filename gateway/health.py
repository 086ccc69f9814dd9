"""The gateway's own `/healthz` (alive) and `/readyz` (every service has a usable replica)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from gateway.upstreams import ReplicaPool


def gateway_health_blueprint(pools: list[ReplicaPool]) -> Blueprint:
    """`/readyz` answers 503 when a service has no available replica; the body lists all."""
    bp = Blueprint("gateway_health")

    @bp.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @bp.get("/readyz")
    async def readyz(request: Request) -> HTTPResponse:
        upstreams = {pool.service: pool.state() for pool in pools}
        down = [pool.service for pool in pools if not pool.has_ready()]
        if down:
            body = {
                "status": "unavailable",
                "code": "not_ready",
                "detail": f"no healthy replica: {', '.join(down)}",
                "upstreams": upstreams,
            }
            return json(body, status=503)
        return json({"status": "ready", "upstreams": upstreams})

    return bp

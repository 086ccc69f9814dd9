"""`GET /healthz` (the process is alive) and `GET /readyz` (what it depends on answers).

A readiness check is an async callable returning "ok" or "degraded" (still serving, but
something is missing, e.g. Redis fan-out) and raising when the dependency is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

ReadinessCheck = Callable[[], Awaitable[str]]

CHECK_TIMEOUT = 2.0
logger = logging.getLogger("shared.health")


async def _run_check(name: str, check: ReadinessCheck) -> str:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except Exception as exc:
        logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
        return "down"


def health_blueprint(checks: Mapping[str, ReadinessCheck], prefix: str = "") -> Blueprint:
    """Routes `{prefix}/healthz` and `{prefix}/readyz` running `checks` concurrently."""
    bp = Blueprint(f"health{prefix.replace('/', '_')}", url_prefix=prefix or None)

    @bp.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @bp.get("/readyz")
    async def readyz(request: Request) -> HTTPResponse:
        names = list(checks)
        results = await asyncio.gather(*(_run_check(n, checks[n]) for n in names))
        states = dict(zip(names, results, strict=True))
        if "down" in results:
            down = ", ".join(n for n, s in states.items() if s == "down")
            body = {
                "status": "unavailable",
                "checks": states,
                "code": "not_ready",
                "detail": f"not ready: {down} down",
            }
            return json(body, status=503)
        status = "degraded" if "degraded" in results else "ready"
        return json({"status": status, "checks": states})

    return bp

"""The gateway app: `/auth/*` and `/ws_ep/*` proxied to replica pools, the web client at `/`.

| path                    | what                                                 |
|-------------------------|------------------------------------------------------|
| `/healthz`, `/readyz`   | the gateway's own health (readyz asks the pools)     |
| `/auth/<path>`          | HTTP, any method -> AUTH_UPSTREAMS                   |
| `/ws_ep/<path>`         | WebSocket upgrade or HTTP, any method -> TODO_UPSTREAMS |
| anything else           | a file of `gateway/static/`, or 404 JSON             |

Sanic's router keeps one GET handler per path, so `/ws_ep/<path>` has one handler that
looks at the `Upgrade` header and opens a WebSocket tunnel or runs the HTTP proxy.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from sanic import HTTPResponse, Request, Sanic
from sanic.exceptions import NotFound

from gateway.health import gateway_health_blueprint
from gateway.http_proxy import proxy_http
from gateway.metrics import GatewayMetrics
from gateway.paths import path_under
from gateway.static_files import add_static_routes
from gateway.upstreams import HealthMonitor, ReplicaPool
from gateway.ws_proxy import proxy_websocket
from shared.app import new_service_app
from shared.cors import install_gateway_cors
from shared.settings import GatewaySettings, settings_or_environment
from shared.shutdown import install_stop_once

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _is_websocket_upgrade(request: Request) -> bool:
    return request.method == "GET" and request.headers.get("upgrade", "").lower() == "websocket"


def _path_under(prefix: str, request: Request) -> str:
    """The path to forward; 404 when its dot segments would leave `prefix`."""
    path = path_under(prefix, request.path)
    if path is None:
        raise NotFound(f"The path leaves {prefix}/.")
    return path


def _new_http_client(settings: GatewaySettings) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=settings.gateway_connect_timeout,
        read=settings.gateway_read_timeout,
        write=settings.gateway_read_timeout,
        pool=settings.gateway_connect_timeout,
    )
    client = httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
        follow_redirects=False,
        trust_env=False,  # no HTTP(S)_PROXY or .netrc from the environment
    )
    # httpx adds Accept, Accept-Encoding, Connection and User-Agent to every request;
    # a transparent proxy sends only what the client sent.
    for name in list(client.headers):
        del client.headers[name]
    return client


def create_app(settings: GatewaySettings | None = None) -> Sanic:
    """Build the gateway; with no `settings`, read them from the environment."""
    settings = settings_or_environment(GatewaySettings, settings)
    app = new_service_app("gateway", settings)
    # sanic-ext's automatic OPTIONS/HEAD/CORS/docs routes would collide with the proxy's.
    app.config.AUTO_EXTEND = False
    install_gateway_cors(app, settings.cors_origins)  # answers preflights itself
    auth_pool = ReplicaPool.from_urls("auth", settings.auth_upstreams)
    todo_pool = ReplicaPool.from_urls("todo", settings.todo_upstreams)
    app.ctx.pools = [auth_pool, todo_pool]
    app.ctx.metrics = GatewayMetrics.build(settings.metrics_enabled)

    @app.before_server_start
    async def open_upstreams(app: Sanic) -> None:
        app.ctx.http = _new_http_client(settings)
        monitor = HealthMonitor(
            app.ctx.pools, app.ctx.http, settings.gateway_health_interval, timeout=2.0
        )
        app.ctx.health_task = asyncio.create_task(monitor.run(), name="gateway-health")

    @app.after_server_stop
    async def close_upstreams(app: Sanic) -> None:
        app.ctx.health_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app.ctx.health_task
        await app.ctx.http.aclose()

    auth_max_body = min(settings.gateway_max_body, settings.gateway_auth_max_body)

    async def proxy_auth(request: Request, path: str) -> None:
        target = _path_under("/auth", request)
        await proxy_http(request, target, auth_pool, request.app.ctx.http, auth_max_body)

    async def proxy_todo(request: Request, path: str) -> HTTPResponse | None:
        target = _path_under("/ws_ep", request)
        if _is_websocket_upgrade(request):
            # A byte tunnel to a replica that answers 101 (gateway/ws_proxy.py).
            return await proxy_websocket(
                request,
                target,
                todo_pool,
                settings.gateway_connect_timeout,
                settings.gateway_read_timeout,
                settings.ws_max_buffered,
            )
        max_body = settings.gateway_max_body
        await proxy_http(request, target, todo_pool, request.app.ctx.http, max_body)
        return None

    # Tells Sanic this handler may end without an HTTP response (after an upgrade);
    # WebSocket support serves the one case the gateway accepts a socket itself (1014).
    proxy_todo.is_websocket = True  # type: ignore[attr-defined]
    app.enable_websocket()

    app.blueprint(gateway_health_blueprint(app.ctx.pools))
    app.add_route(proxy_auth, "/auth/<path:path>", methods=PROXY_METHODS, stream=True)
    app.add_route(proxy_todo, "/ws_ep/<path:path>", methods=PROXY_METHODS, stream=True)
    add_static_routes(app)
    install_stop_once(app)
    return app

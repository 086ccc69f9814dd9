"""The todo WebSocket service: `create_app()` builds it (`sanic todo_ws_service.app:create_app
--factory` works too).

Routes: `GET /ws_ep/ws?token=...[&since=N]` (the WebSocket), `/healthz`, `/readyz` (also
under `/ws_ep/`, as seen through the gateway).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from sanic import Request, Sanic
from sanic.server.websockets.impl import WebsocketImplProtocol

from shared.app import new_service_app
from shared.database import close_database, open_database, ping_database, tortoise_config
from shared.health import health_blueprint
from shared.settings import TodoSettings, settings_or_environment
from shared.shutdown import install_stop_once
from shared.tokens import AccessTokenCodec
from todo_ws_service.auth import AuthFailed, authenticate
from todo_ws_service.connection import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    Connection,
    Limits,
)
from todo_ws_service.fanout import Hub, LocalHub
from todo_ws_service.frames import error_frame
from todo_ws_service.handlers import Session
from todo_ws_service.inbox import Inbox
from todo_ws_service.metrics import FanoutMetrics, MessageMetrics, SocketMetrics
from todo_ws_service.protocol_docs import protocol_docs_blueprint
from todo_ws_service.redis_hub import RedisHub
from todo_ws_service.store import Retention, open_store

SERVICE = "todo_ws_service"
logger = logging.getLogger(f"{SERVICE}.app")


def create_app(settings: TodoSettings | None = None) -> Sanic:
    """The service's app, configured from `settings` (default: the environment)."""
    settings = settings_or_environment(TodoSettings, settings)
    app = new_service_app(SERVICE, settings)
    # Frames over the limit make the websockets protocol fail the connection with 1009.
    app.config.WEBSOCKET_MAX_SIZE = settings.ws_max_message
    app.config.WEBSOCKET_PING_INTERVAL = settings.ws_ping_interval
    app.config.WEBSOCKET_PING_TIMEOUT = settings.ws_ping_interval

    codec = AccessTokenCodec(settings)
    limits = Limits(
        settings.ws_rate_limit,
        settings.ws_rate_burst,
        settings.ws_max_buffered,
        stall_interval=settings.ws_ping_interval,
    )
    retention = Retention(
        settings.todo_tombstone_ttl, settings.idempotency_ttl, settings.todo_purge_interval
    )
    hub = create_hub(settings)
    app.ctx.hub = hub
    sockets = SocketMetrics.build(settings.metrics_enabled)
    messages = MessageMetrics() if settings.metrics_enabled else None
    if messages is not None:
        install_message_metrics(app, messages)
    app.ctx.shutting_down = False

    async def hub_check() -> str:
        return await hub.check()

    checks = {"database": ping_database, "fanout": hub_check}
    app.blueprint(health_blueprint(checks))
    app.blueprint(health_blueprint(checks, prefix="/ws_ep"))
    app.blueprint(protocol_docs_blueprint())

    async def todo_socket(request: Request, ws: WebsocketImplProtocol) -> None:
        # Before any await, so no frame goes another way (invalid UTF-8 closes 1007).
        inbox = Inbox.attach(ws)
        # The handshake is always accepted; a bad token gets an error message and 1008.
        try:
            user = authenticate(codec, request.args.get("token"))
        except AuthFailed as exc:
            sockets.auth_failed.inc()
            await ws.send(error_frame("auth_failed", str(exc)))
            await ws.close(CLOSE_POLICY, "authentication failed")
            return
        if app.ctx.shutting_down:
            sockets.shutting_down.inc()
            await ws.close(CLOSE_GOING_AWAY, "server shutting down")
            return
        session = Session(user, app.ctx.store, codec)
        since = resume_point(request.args.get("since"))
        sockets.accepted.inc()
        sockets.open.inc()
        try:
            await Connection(ws, inbox, session, hub, limits, since, messages).serve()
        finally:
            sockets.open.dec()

    app.add_websocket_route(todo_socket, "/ws_ep/ws")

    @app.before_server_start
    async def open_resources(app: Sanic) -> None:
        config = tortoise_config(settings.todo_db_url, SERVICE, settings.db_pool_size)
        await open_database(config)
        app.ctx.store = open_store(config, retention, settings.todo_max_per_user)
        await app.ctx.store.start()
        await hub.start()

    # Registered after the WebSocket route: shutdown listeners run in reverse order, so
    # this drains the sockets before Sanic cancels their handlers.
    @app.before_server_stop
    async def close_sockets(app: Sanic) -> None:
        app.ctx.shutting_down = True
        await drain(hub)

    @app.after_server_stop
    async def close_resources(app: Sanic) -> None:
        await hub.close()
        await app.ctx.store.close()
        await close_database()

    @app.main_process_start
    async def refuse_unsafe_workers(app: Sanic) -> None:
        problem = unsafe_worker_setup(app.state.workers, settings)
        if problem:
            print(f"configuration error: {problem}", file=sys.stderr)
            raise SystemExit(2)

    install_stop_once(app)
    return app


def install_message_metrics(app: Sanic, messages: MessageMetrics) -> None:
    """Flush the message tallies into the metrics each second, and when the worker stops."""

    @app.after_server_start
    async def start_flushing(app: Sanic) -> None:
        app.ctx.metrics_flusher = asyncio.create_task(messages.flush_forever())

    @app.after_server_stop
    async def flush_last(app: Sanic) -> None:
        app.ctx.metrics_flusher.cancel()
        messages.flush()


def unsafe_worker_setup(workers: int, settings: TodoSettings) -> str | None:
    """Why `workers` processes can't serve with these settings, if they can't.

    Each worker is its own process with its own sockets: without Redis, a change made on
    one worker would never reach the user's sockets on another. And the SQLite store
    writes from the event loop, expecting to be its file's only writer.
    """
    if workers <= 1:
        return None
    if settings.redis_url is None:
        return "--workers above 1 needs REDIS_URL (fan-out between worker processes)"
    if settings.todo_db_url.startswith("sqlite"):
        return "--workers above 1 needs PostgreSQL (SQLite has one writer: use TODO_DB_URL)"
    return None


def create_hub(settings: TodoSettings) -> Hub:
    """Redis fan-out across replicas when `REDIS_URL` is set, else inside this process."""
    max_per_user = settings.ws_max_connections_per_user
    metrics = FanoutMetrics.build(settings.metrics_enabled)
    if settings.redis_url is None:
        return LocalHub(max_per_user, metrics)
    return RedisHub(settings.redis_url, settings.redis_channel_prefix, max_per_user, metrics)


def resume_point(since: str | None) -> int | None:
    """`?since=N` as a revision; None (a full list) unless it is a non-negative integer."""
    if since is None or not (since.isascii() and since.isdigit()) or len(since) > 18:
        return None
    return int(since)


async def drain(hub: Hub) -> None:
    """Let every socket finish the message in hand, then close it with 1001 (going away)."""
    sockets = [s for s in hub.subscribers() if isinstance(s, Connection)]
    if sockets:
        logger.info("closing %d sockets for shutdown", len(sockets))
        await asyncio.gather(*(s.close(CLOSE_GOING_AWAY, "server shutting down") for s in sockets))

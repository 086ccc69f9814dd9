"""`create_app`: the auth service's Sanic app, also usable as `sanic ... --factory`."""

from __future__ import annotations

from sanic import Blueprint, Sanic
from sanic_ext import openapi

from auth_service import schemas
from auth_service.api_docs import configure_openapi, json_content
from auth_service.context import AuthContext
from auth_service.db import database_config
from auth_service.routes import bp as auth_routes
from shared.app import new_service_app
from shared.database import close_database, open_database, ping_database
from shared.health import health_blueprint
from shared.settings import AuthSettings, settings_or_environment
from shared.shutdown import install_stop_once

SERVICE_NAME = "auth_service"
MAX_BODY_BYTES = 64 * 1024


def documented_health(bp: Blueprint) -> Blueprint:
    """Describe `/healthz` and `/readyz` in the OpenAPI document too."""
    for route in bp._future_routes:
        openapi.operation(route.uri.strip("/"))(route.handler)
        openapi.response(200, json_content(schemas.HealthStatus), "Alive / ready")(route.handler)
        if route.uri.endswith("readyz"):
            openapi.response(503, json_content(schemas.HealthStatus), "A dependency is down")(
                route.handler
            )
    return bp


def create_app(settings: AuthSettings | None = None) -> Sanic:
    """The auth service; with no `settings`, reads them from the environment (or exits)."""
    settings = settings_or_environment(AuthSettings, settings)
    app = new_service_app(SERVICE_NAME, settings)
    # Every body here is a few hundred bytes; refuse big ones before reading them (413).
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    configure_openapi(app)
    app.blueprint(auth_routes)
    app.blueprint(documented_health(health_blueprint({"database": ping_database})))
    # The same under /auth, as seen through the gateway (which forwards paths unchanged);
    # left out of the document, which has them once.
    gateway_health = health_blueprint({"database": ping_database}, prefix="/auth")
    for route in gateway_health._future_routes:
        openapi.exclude()(route.handler)
    app.blueprint(gateway_health)

    @app.before_server_start
    async def open_resources(app: Sanic) -> None:
        app.ctx.auth = AuthContext.build(settings)
        await open_database(database_config(settings))
        await app.ctx.auth.passwords.warm_up()

    @app.after_server_stop
    async def close_resources(app: Sanic) -> None:
        await close_database()
        app.ctx.auth.passwords.close()
        await app.ctx.auth.limits.close()

    install_stop_once(app)
    return app

"""The common shape of every service's Sanic app."""

from __future__ import annotations

from sanic import Sanic

from shared.errors import install_error_handler
from shared.logs import build_log_config, install_request_ids
from shared.settings import ServiceSettings


def new_service_app(name: str, settings: ServiceSettings) -> Sanic:
    """A Sanic app with JSON logs, request ids, the JSON error shape and proxy trust set."""
    app = Sanic(name, log_config=build_log_config(name, settings.log_level))
    app.config.PROXIES_COUNT = settings.proxies_count
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.ctx.settings = settings
    install_error_handler(app)
    install_request_ids(app)
    return app

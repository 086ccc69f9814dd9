"""The common shape of every service's Sanic app."""

from __future__ import annotations

from asyncio import Protocol
from typing import Any

from sanic import Sanic

from shared.cors import install_cors
from shared.errors import install_error_handler
from shared.logs import build_log_config, install_request_ids
from shared.metrics import install_metrics
from shared.protocols import HEADER_TIMEOUT_CONFIG, guarded_protocol
from shared.request_ids import ServiceRequest
from shared.settings import ServiceSettings


class ServiceApp(Sanic):
    """A Sanic app whose connections get the head deadline and head checks.

    The protocol is chosen when the app is prepared, which both `python -m <service>`
    (shared/server.py) and the Sanic CLI do, so both ways of running get it.
    """

    def prepare(self, *args: Any, protocol: type[Protocol] | None = None, **kwargs: Any) -> None:
        super().prepare(*args, protocol=protocol or guarded_protocol(self), **kwargs)


def new_service_app(name: str, settings: ServiceSettings) -> Sanic:
    """A Sanic app with JSON or text logs, request ids, the JSON error shape, proxy trust."""
    log_config = build_log_config(name, settings.log_level, settings.log_format)
    app = ServiceApp(name, log_config=log_config, request_class=ServiceRequest)
    app.config.PROXIES_COUNT = settings.proxies_count
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config[HEADER_TIMEOUT_CONFIG] = settings.http_header_timeout
    app.ctx.settings = settings
    install_cors(app, settings.cors_origins)
    install_error_handler(app)
    install_request_ids(app)
    install_metrics(app, settings)
    return app

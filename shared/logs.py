"""Structured logs: one JSON object a line, a request id on each, secrets redacted.

Sanic's access log writes the full URL, and a WebSocket URL carries the access token in
its query string, so every record goes through `RedactSecrets` before it is written.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from typing import Any

from sanic import Request, Sanic
from sanic.log import LOGGING_CONFIG_DEFAULTS
from sanic.logging.formatter import JSONAccessFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_SECRET_IN_TEXT = re.compile(
    r"(?i)((?:access_|refresh_)?token|password|secret|authorization)"
    r"(\"?\s*[=:]\s*\"?)(?:bearer\s+)?[^&\s\"',]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """Blank out anything that looks like `token=...`, `password: ...` in `text`."""
    return _SECRET_IN_TEXT.sub(rf"\1\2{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Scrubs the message and the access log's `request` field of tokens and passwords."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        request_line = getattr(record, "request", None)
        if isinstance(request_line, str):
            record.request = redact(request_line)
        return True


class AddRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class AccessLogFormatter(JSONAccessFormatter):
    """Sanic's JSON access line plus the request id (its formatter keeps only fixed fields)."""

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        line = super().to_dict(record)
        line["request_id"] = getattr(record, "request_id", None)
        return line


def build_log_config(service: str, level: str = "INFO") -> dict[str, Any]:
    """Sanic's logging config with JSON formatters and our two filters on every handler."""
    # Copy two levels deep by hand: the handlers hold sys.stdout, which can't be deep-copied.
    config = {key: value for key, value in LOGGING_CONFIG_DEFAULTS.items()}
    config["handlers"] = {n: dict(h) for n, h in LOGGING_CONFIG_DEFAULTS["handlers"].items()}
    config["loggers"] = {n: dict(lg) for n, lg in LOGGING_CONFIG_DEFAULTS["loggers"].items()}
    config["formatters"] = {
        "generic": {"class": "sanic.logging.formatter.JSONFormatter"},
        "access": {"()": AccessLogFormatter},
    }
    config["filters"] = {
        "request_id": {"()": AddRequestId},
        "redact": {"()": RedactSecrets},
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id", "redact"]
    for logger in config["loggers"].values():
        logger["level"] = level
    # Our own modules log under the service's name through the same console handler.
    config["loggers"][service] = {"level": level, "handlers": ["console"], "propagate": False}
    config["loggers"]["tortoise"] = {"level": "WARNING", "handlers": ["console"]}
    return config


def install_request_ids(app: Sanic) -> None:
    """Tag each request's log lines with its id and echo the id back as X-Request-ID."""

    async def remember_request_id(request: Request) -> None:
        request_id_var.set(str(request.id))

    async def echo_request_id(request: Request, response: Any) -> None:
        if response is not None:
            response.headers["X-Request-ID"] = str(request.id)

    app.register_middleware(remember_request_id, "request", priority=100)
    app.register_middleware(echo_request_id, "response", priority=100)

"""Logs: one JSON object a line (or one readable text line), a request id on each, secrets
redacted.

Sanic's access log writes the full URL, and a WebSocket URL carries the access token in
its query string. Every string field of every line (message, URL, traceback, extras) goes
through `redact` before it is written: it blanks the value of any query parameter whose
name, once percent-decoded, mentions a token, password or secret (`?%74oken=` is `token`
to Sanic, so it must be to us too), `password: ...`-like text, and anything shaped like a
JWT wherever it appears.

`LOG_FORMAT=text` renders the same redacted fields as one short line for people
(`14:02:11 INFO  auth_service.routes  user registered user_id=3 request_id=...`); `json`,
the default, is for log collectors.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from typing import Any, Literal
from urllib.parse import unquote_plus

from sanic import Request, Sanic
from sanic.log import LOGGING_CONFIG_DEFAULTS
from sanic.logging.formatter import JSONAccessFormatter, JSONFormatter

LogFormat = Literal["json", "text"]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REDACTED = "[redacted]"
_SECRET_WORDS = ("token", "password", "passwd", "secret", "authorization", "jwt")
_SECRET_IN_TEXT = re.compile(
    r"(?i)((?:access_|refresh_)?token|password|secret|authorization)"
    r"(\"?\s*[=:]\s*\"?)(?:bearer\s+)?[^&\s\"',]+"
)
# `name=value` after `?`, `&` or `;` (a query string, or form data written to a log).
_QUERY_PARAMETER = re.compile(r"(?<=[?&;])([^=&;#\s\"']+)=([^&;#\s\"']*)")
# A JWT is three base64url parts, the first one a JSON object (`{"` is `eyJ`); dots may be
# percent-encoded.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*(?:(?:\.|%2[eE])[A-Za-z0-9_-]*){1,2}")


def _decoded_name(name: str) -> str:
    """A query parameter's name as a server would read it (decoded until it stops changing)."""
    for _ in range(3):
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name.strip().lower()


def _redact_parameter(match: re.Match[str]) -> str:
    name = _decoded_name(match.group(1))
    if any(word in name for word in _SECRET_WORDS):
        return f"{match.group(1)}={REDACTED}"
    return match.group(0)


def redact(text: str) -> str:
    """Blank out anything that looks like `token=...`, `password: ...` or a JWT in `text`."""
    text = _QUERY_PARAMETER.sub(_redact_parameter, text)
    text = _SECRET_IN_TEXT.sub(rf"\1\2{REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def _redacted_fields(line: dict[str, Any]) -> dict[str, Any]:
    return {key: redact(value) if isinstance(value, str) else value for key, value in line.items()}


class AddRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class LogFormatter(JSONFormatter):
    """Sanic's JSON line (message, traceback, extras), every string field redacted."""

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        return _redacted_fields(super().to_dict(record))


class AccessLogFormatter(JSONAccessFormatter):
    """Sanic's JSON access line plus the request id (its formatter keeps only fixed fields),
    every string field redacted (the URL carries the WebSocket's token)."""

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        line = super().to_dict(record)
        line["request_id"] = getattr(record, "request_id", None)
        return _redacted_fields(line)


# Fields a text line shows in its fixed columns, or not at all (where the code is).
_TEXT_OMITTED = frozenset(
    {"timestamp", "level", "message", "name", "levelno", "pathname", "module", "filename"}
    | {"lineno", "exc_info", "stack_info", "request_id", "verbosity"}
)


def _text_value(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if not text or any(c.isspace() or c == '"' for c in text) else text


def _text_line(record: logging.LogRecord, name: str, fields: dict[str, Any]) -> str:
    """`HH:MM:SS LEVEL name  message key=value ... request_id=...`, then any traceback."""
    clock = time.strftime("%H:%M:%S", time.localtime(record.created))
    extras = [
        f"{key}={_text_value(value)}"
        for key, value in fields.items()
        if key not in _TEXT_OMITTED and value is not None
    ]
    if fields.get("request_id"):
        extras.append(f"request_id={fields['request_id']}")
    head = f"{clock} {record.levelname:<5} {name}  {fields.get('message') or ''}".rstrip()
    line = " ".join([head, *extras])
    for key in ("exc_info", "stack_info"):
        if fields.get(key):
            line += "\n" + str(fields[key])
    return line


class TextLogFormatter(LogFormatter):
    """The JSON formatter's redacted fields as one readable line."""

    def format(self, record: logging.LogRecord) -> str:
        return _text_line(record, record.name, self.to_dict(record))


class TextAccessLogFormatter(AccessLogFormatter):
    """An access line: `HH:MM:SS INFO  access  GET http://... 200 15B 1.2ms host=...`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.to_dict(record)
        parts = [fields.pop("request", None), fields.pop("status", None)]
        size, duration = fields.pop("byte", None), fields.pop("duration", None)
        if isinstance(size, int):  # or "DISCONNECTED", said as it is
            parts.append(f"{size}B")
        elif size:
            parts.append(str(size))
        if duration:  # Sanic's own text, e.g. " 1.2ms"
            parts.append(str(duration).strip())
        summary = " ".join(str(part) for part in parts if part not in (None, ""))
        fields["message"] = " ".join(filter(None, [fields.get("message"), summary]))
        return _text_line(record, "access", fields)


FORMATTERS: dict[str, tuple[type[logging.Formatter], type[logging.Formatter]]] = {
    "json": (LogFormatter, AccessLogFormatter),
    "text": (TextLogFormatter, TextAccessLogFormatter),
}


def build_log_config(
    service: str, level: str = "INFO", log_format: LogFormat = "json"
) -> dict[str, Any]:
    """Sanic's logging config with our formatters (`log_format`: `json` or `text`, both
    redacted) and the request id on every line.

    Every logger writes through these handlers: Sanic's, the service's own (`service.*`),
    `shared.*`, and the root logger (WARNING and up, for libraries and asyncio), so no
    line reaches Python's bare last-resort handler, which would skip the redaction.
    """
    # Copy two levels deep by hand: the handlers hold sys.stdout, which can't be deep-copied.
    config = {key: value for key, value in LOGGING_CONFIG_DEFAULTS.items()}
    config["handlers"] = {n: dict(h) for n, h in LOGGING_CONFIG_DEFAULTS["handlers"].items()}
    config["loggers"] = {n: dict(lg) for n, lg in LOGGING_CONFIG_DEFAULTS["loggers"].items()}
    generic, access = FORMATTERS[log_format]
    config["formatters"] = {"generic": {"()": generic}, "access": {"()": access}}
    config["filters"] = {"request_id": {"()": AddRequestId}}
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id"]
    for logger in config["loggers"].values():
        logger["level"] = level
        logger["propagate"] = False  # the root logger's handler would write it twice
    # Our own modules log under the service's name through the same console handler.
    for own in (service, "shared"):
        config["loggers"][own] = {"level": level, "handlers": ["console"], "propagate": False}
    config["loggers"]["tortoise"] = {
        "level": "WARNING",
        "handlers": ["console"],
        "propagate": False,
    }
    config["root"] = {"level": "WARNING", "handlers": ["console"]}
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

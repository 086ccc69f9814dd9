"""Typed settings, read from the environment once at start-up.

Each service builds its own settings object with `load_settings(SomeSettings)`; a bad
value stops the process with one clear line instead of a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import ConfigurationError

from shared.cors import parse_origins

MIN_SECRET_BYTES = 32


def validate_db_url(url: str) -> str:
    """Reject a database URL Tortoise could not use, at start-up rather than first query."""
    try:
        expand_db_url(url)
    except (ConfigurationError, ValueError, KeyError) as exc:
        raise ValueError(f"not a usable database URL ({exc})") from None
    return url


def validate_redis_url(value: str | None) -> str | None:
    """A Redis URL redis-py can open; empty means unset."""
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value or None


def split_urls(value: object) -> list[str]:
    """Turn `a,b , c` into ['a', 'b', 'c'] (upstream lists come comma-separated)."""
    if isinstance(value, str):
        return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(part).rstrip("/") for part in value]
    raise ValueError("expected a comma-separated list of URLs")


class ServiceSettings(BaseSettings):
    """What every service reads."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # How many proxies in front of us may set X-Forwarded-For; 1 behind the gateway.
    proxies_count: int = Field(default=0, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # `json` for log collectors, `text` (one readable line) for people; both redacted.
    log_format: Literal["json", "text"] = "json"
    # The whole request head must arrive within this many seconds, however slowly it
    # trickles (Sanic's REQUEST_TIMEOUT restarts on every byte).
    http_header_timeout: float = Field(default=10.0, gt=0)
    # `GET /metrics` (Prometheus) on the service's own port and the recording behind it;
    # false: no route and no recording (shared/metrics.py, docs/operations.md#metrics).
    metrics_enabled: bool = True
    # Origins whose pages may call this service (shared/cors.py); empty: same origin only.
    cors_origins: Annotated[list[str], NoDecode] = []

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> list[str]:
        return parse_origins(value)


class JwtSettings(ServiceSettings):
    """The JWT rules shared by the auth service (issuer) and the todo service (verifier)."""

    jwt_secret: SecretStr
    jwt_issuer: str = "todo-auth"
    jwt_audience: str = "todo-api"
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"

    @field_validator("jwt_secret")
    @classmethod
    def _secret_is_strong(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value


class AuthSettings(JwtSettings):
    auth_db_url: str = "sqlite://data/auth.sqlite3"
    access_token_ttl: int = Field(default=900, gt=0)
    refresh_token_ttl: int = Field(default=1_209_600, gt=0)
    # 0 turns the limit off, as for every count limit (CONTRACT.md section 7).
    login_max_failures: int = Field(default=10, ge=0)
    login_failure_window: int = Field(default=300, gt=0)
    db_pool_size: int = Field(default=10, gt=0)
    # Limits against abuse (CONTRACT.md section 7); 0 turns a count limit off.
    register_max_per_address: int = Field(default=20, ge=0)
    register_window: int = Field(default=3600, gt=0)
    login_max_per_address: int = Field(default=100, ge=0)
    hash_queue_max: int = Field(default=64, ge=1)
    # Set: the limits above are shared through Redis by every worker and replica
    # (auth_service/throttle_redis.py); unset: each process counts in its own memory.
    redis_url: str | None = None
    # Keys are `{prefix}:...`; a prefix per deployment lets several share a Redis.
    redis_key_prefix: str = Field(default="todo-auth", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # A Redis slower than this counts as unreachable (the limits fall back to the process).
    redis_timeout: float = Field(default=1.0, gt=0)

    @field_validator("auth_db_url")
    @classmethod
    def _usable_db_url(cls, value: str) -> str:
        return validate_db_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        return validate_redis_url(value)


class TodoSettings(JwtSettings):
    todo_db_url: str = "sqlite://data/todo.sqlite3"
    redis_url: str | None = None
    # Channels are `{prefix}:user:{id}`; a prefix per deployment lets several share a Redis.
    redis_channel_prefix: str = Field(default="todo", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    ws_rate_limit: float = Field(default=30.0, ge=0)
    ws_rate_burst: int = Field(default=60, gt=0)
    ws_max_message: int = Field(default=65_536, gt=0)
    ws_ping_interval: float = Field(default=20.0, gt=0)
    db_pool_size: int = Field(default=10, gt=0)
    # Protocol 1.1: how long deletions (for resumes) and idempotency keys are remembered,
    # and how often the forgotten ones are purged.
    todo_tombstone_ttl: float = Field(default=604_800, gt=0)
    idempotency_ttl: float = Field(default=86_400, gt=0)
    todo_purge_interval: float = Field(default=300, gt=0)
    # Limits against abuse (CONTRACT.md section 7); 0 turns a count limit off.
    ws_max_connections_per_user: int = Field(default=32, ge=0)  # per replica (process)
    todo_max_per_user: int = Field(default=5000, ge=0)
    # Unsent bytes a socket may hold (its outbox and transport) before it is closed 1013.
    ws_max_buffered: int = Field(default=4 * 1024 * 1024, gt=0)

    @field_validator("todo_db_url")
    @classmethod
    def _usable_db_url(cls, value: str) -> str:
        return validate_db_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        return validate_redis_url(value)


class GatewaySettings(ServiceSettings):
    auth_upstreams: Annotated[list[str], NoDecode] = ["http://127.0.0.1:8001"]
    todo_upstreams: Annotated[list[str], NoDecode] = ["http://127.0.0.1:8002"]
    gateway_max_body: int = Field(default=1_048_576, gt=0)
    gateway_connect_timeout: float = Field(default=3.0, gt=0)
    gateway_read_timeout: float = Field(default=30.0, gt=0)
    gateway_health_interval: float = Field(default=5.0, gt=0)
    # The auth service refuses bodies over 64 KiB by closing early; the gateway answers
    # the 413 itself so that a client never sees that as a 502. Keep it <= auth's limit.
    gateway_auth_max_body: int = Field(default=65_536, gt=0)
    # Unsent bytes the WebSocket relay holds per socket before closing it with 1013.
    ws_max_buffered: int = Field(default=4 * 1024 * 1024, gt=0)

    @field_validator("auth_upstreams", "todo_upstreams", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> list[str]:
        return split_urls(value)

    @field_validator("auth_upstreams", "todo_upstreams")
    @classmethod
    def _non_empty_http(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one upstream URL")
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} must start with http:// or https://")
        return value


S = TypeVar("S", bound=BaseSettings)


def format_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]).upper() or "settings"
        problems.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def settings_or_environment(cls: type[S], given: object) -> S:
    """`given` when it is a `cls`; otherwise read `cls` from the environment.

    Apps' factories use this: the Sanic CLI (`sanic pkg.app:create_app --factory`) calls
    the factory with its own argparse namespace as the first argument.
    """
    return given if isinstance(given, cls) else load_settings(cls)


def load_settings(cls: type[S]) -> S:
    """Read `cls` from the environment, or exit with one line naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        print(f"configuration error: {format_validation_error(exc)}", file=sys.stderr)
        raise SystemExit(2) from None

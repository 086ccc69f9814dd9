"""What the handlers share, built once per worker process and kept on `app.ctx.auth`."""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Request

from auth_service.metrics import AuthMetrics
from auth_service.passwords import PasswordHasher
from auth_service.throttle import AttemptLimits, build_limits
from shared.settings import AuthSettings
from shared.tokens import AccessTokenCodec


@dataclass(slots=True)
class AuthContext:
    settings: AuthSettings
    tokens: AccessTokenCodec
    passwords: PasswordHasher
    # Failed logins and registrations: in memory, or shared through Redis (throttle.py).
    limits: AttemptLimits
    metrics: AuthMetrics

    @classmethod
    def build(cls, settings: AuthSettings) -> AuthContext:
        metrics = AuthMetrics.build(settings.metrics_enabled)
        return cls(
            settings=settings,
            tokens=AccessTokenCodec(settings),
            passwords=PasswordHasher(settings.hash_queue_max, metrics=metrics),
            limits=build_limits(settings),
            metrics=metrics,
        )


def auth_context(request: Request) -> AuthContext:
    context: AuthContext = request.app.ctx.auth
    return context


def client_address(request: Request) -> str:
    """The client's address; behind the gateway PROXIES_COUNT=1 makes it the real one."""
    return request.remote_addr or request.ip

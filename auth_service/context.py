"""What the handlers share, built once per worker process and kept on `app.ctx.auth`."""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Request

from auth_service.passwords import PasswordHasher
from auth_service.throttle import LoginThrottle, SlidingWindowCounter
from shared.settings import AuthSettings
from shared.tokens import AccessTokenCodec


@dataclass(slots=True)
class AuthContext:
    settings: AuthSettings
    tokens: AccessTokenCodec
    passwords: PasswordHasher
    throttle: LoginThrottle
    registrations: SlidingWindowCounter[str]

    @classmethod
    def build(cls, settings: AuthSettings) -> AuthContext:
        return cls(
            settings=settings,
            tokens=AccessTokenCodec(settings),
            passwords=PasswordHasher(settings.hash_queue_max),
            throttle=LoginThrottle(
                settings.login_max_failures,
                settings.login_failure_window,
                settings.login_max_per_address,
            ),
            registrations=SlidingWindowCounter(
                settings.register_max_per_address, settings.register_window
            ),
        )


def auth_context(request: Request) -> AuthContext:
    context: AuthContext = request.app.ctx.auth
    return context


def client_address(request: Request) -> str:
    """The client's address; behind the gateway PROXIES_COUNT=1 makes it the real one."""
    return request.remote_addr or request.ip

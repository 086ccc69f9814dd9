"""The auth service's errors, each one row of CONTRACT.md section 3.

ApiError (shared.errors)
 ├── UsernameTaken           409 username_taken
 ├── InvalidCredentials      401 invalid_credentials
 ├── TooManyAttempts         429 too_many_attempts (+ Retry-After)
 ├── Busy                    503 busy (+ Retry-After): the password-hashing queue is full
 ├── InvalidRefreshToken     401 invalid_refresh_token
 └── NotAuthenticated        401 invalid_token / token_expired (+ WWW-Authenticate)
"""

from __future__ import annotations

from shared.errors import ApiError


class UsernameTaken(ApiError):
    """This username is already taken."""

    status_code = 409
    code = "username_taken"


class InvalidCredentials(ApiError):
    """Incorrect username or password."""

    status_code = 401
    code = "invalid_credentials"


class TooManyAttempts(ApiError):
    """Too many failed logins; try again later."""

    status_code = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class Busy(ApiError):
    """The server is busy; try again shortly."""

    status_code = 503
    code = "busy"

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)})


class InvalidRefreshToken(ApiError):
    """The refresh token is invalid, expired, spent or revoked."""

    status_code = 401
    code = "invalid_refresh_token"


class NotAuthenticated(ApiError):
    """A valid bearer access token is required."""

    status_code = 401
    code = "invalid_token"

    def __init__(
        self, detail: str | None = None, *, code: str | None = None, presented: bool = True
    ) -> None:
        # RFC 6750 section 3: no error attribute when the request carried no credentials.
        challenge = 'Bearer error="invalid_token"' if presented else "Bearer"
        super().__init__(detail, code=code, headers={"WWW-Authenticate": challenge})

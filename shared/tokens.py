"""Access tokens: one place for the JWT rules both services follow.

The auth service issues with `AccessTokenCodec.issue`; the todo service verifies with
`AccessTokenCodec.verify`. The algorithm is pinned and `sub`, `exp`, `iss`, `aud` are
required, so `alg: none`, a token for another audience or one without a subject is refused.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from shared.settings import JwtSettings

REQUIRED_CLAIMS = ["sub", "exp", "iss", "aud"]


class InvalidToken(Exception):
    """The token is missing, malformed, wrongly signed or fails a claim check."""


class ExpiredToken(InvalidToken):
    """The token was valid once; its `exp` has passed."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    username: str | None
    expires_at: int
    token_id: str | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    claims: AccessClaims


class AccessTokenCodec:
    """Signs and verifies access tokens with settings fixed at construction time."""

    def __init__(self, settings: JwtSettings) -> None:
        self._key = settings.jwt_secret.get_secret_value()
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._options = {"require": REQUIRED_CLAIMS}

    def issue(self, user_id: int | str, username: str, ttl_seconds: int) -> IssuedToken:
        now = int(time.time())
        claims = AccessClaims(str(user_id), username, now + ttl_seconds, uuid.uuid4().hex)
        payload = {
            "sub": claims.user_id,
            "username": username,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": claims.expires_at,
            "jti": claims.token_id,
        }
        token = jwt.encode(payload, self._key, algorithm=self._algorithm)
        return IssuedToken(token, ttl_seconds, claims)

    def verify(self, token: str | None) -> AccessClaims:
        """Return the claims of a valid token, or raise `ExpiredToken` / `InvalidToken`."""
        if not token:
            raise InvalidToken("no token")
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options=self._options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise ExpiredToken("token expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        subject = payload["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("sub must be a non-empty string")
        username = payload.get("username")
        return AccessClaims(
            subject,
            username if isinstance(username, str) else None,
            int(payload["exp"]),
            payload.get("jti"),
        )

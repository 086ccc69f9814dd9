"""Who is on the socket: the access token from the query string, verified once at connect."""

from __future__ import annotations

from dataclasses import dataclass

from shared.tokens import AccessTokenCodec, ExpiredToken, InvalidToken


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str | None
    # Unix time the token stops being valid; the socket is closed then.
    expires_at: int


class AuthFailed(Exception):
    """The token is missing, invalid, expired, or its `sub` is not a user id."""


def authenticate(codec: AccessTokenCodec, token: str | None) -> User:
    """The user a token names, or `AuthFailed` with a message safe to send to the client."""
    try:
        claims = codec.verify(token)
    except ExpiredToken:
        raise AuthFailed("token expired") from None
    except InvalidToken:
        raise AuthFailed("missing or invalid token") from None
    # `sub` is the auth service's numeric user id as a string; todos store it as a number.
    if not (claims.user_id.isascii() and claims.user_id.isdigit()):
        raise AuthFailed("token subject is not a user id")
    user_id = int(claims.user_id)
    if not 0 < user_id < 2**63:
        raise AuthFailed("token subject is not a user id")
    return User(user_id, claims.username, claims.expires_at)

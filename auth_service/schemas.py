"""Request and response bodies of the auth service (CONTRACT.md section 3).

The same models validate requests and feed the OpenAPI document, so the two can't drift.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
USERNAME_MAX_LENGTH = 32  # the `users.username_key` column's size too
_POSSIBLE_USERNAME = re.compile(rf"[A-Za-z0-9_.-]{{3,{USERNAME_MAX_LENGTH}}}")


def is_possible_username(name: str) -> bool:
    """Whether `name` passes the rules of `Username`, so it could have been registered."""
    return _POSSIBLE_USERNAME.fullmatch(name) is not None


Username = Annotated[
    str,
    Field(
        min_length=3,
        max_length=USERNAME_MAX_LENGTH,
        pattern=USERNAME_PATTERN,
        description="3-32 characters of A-Z a-z 0-9 _ . - (unique regardless of case)",
        json_schema_extra={"example": "alice"},
    ),
]
NewPassword = Annotated[
    str,
    Field(
        min_length=8,
        max_length=128,
        description="8-128 characters",
        json_schema_extra={"format": "password", "writeOnly": True},
    ),
]
# Logging in checks nothing but presence (and a sane upper bound on what gets hashed):
# a username or password that could never have been registered is simply wrong.
LoginName = Annotated[str, Field(min_length=1, max_length=256)]
LoginPassword = Annotated[
    str,
    Field(min_length=1, max_length=1024, json_schema_extra={"format": "password"}),
]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]


class StrictBody(BaseModel):
    """A request body: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class UserCreate(StrictBody):
    """Body of `POST /auth/register`."""

    username: Username
    password: NewPassword


class LoginJSON(StrictBody):
    """JSON body of `POST /auth/login`."""

    username: LoginName
    password: LoginPassword


class LoginForm(BaseModel):
    """Form body of `POST /auth/login` (OAuth2 password flow, RFC 6749 section 4.3)."""

    grant_type: str = Field(default="password", pattern="^password$", description='"password"')
    username: LoginName
    password: LoginPassword
    scope: str = Field(default="", description="accepted and ignored")
    client_id: str = Field(default="", description="accepted and ignored")
    client_secret: str = Field(default="", description="accepted and ignored")


class RefreshRequest(StrictBody):
    """Body of `POST /auth/refresh` and `POST /auth/logout`."""

    refresh_token: OpaqueToken


class UserPublic(BaseModel):
    """A user as others may see it (never the password hash)."""

    id: int
    username: str
    created_at: datetime = Field(description="ISO 8601, UTC")


class TokenPair(BaseModel):
    """What a login or a refresh answers."""

    access_token: str = Field(description="JWT for `Authorization: Bearer ...`")
    token_type: str = Field(description='always "bearer"', json_schema_extra={"enum": ["bearer"]})
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str = Field(description="single use; send it to /auth/refresh")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error: a human `detail`, a machine `code`, and `errors` on validation."""

    detail: str
    code: str
    errors: list[FieldError] = Field(
        default_factory=list, description="only on validation_error: one entry per problem"
    )


class HealthStatus(BaseModel):
    status: str
    checks: dict[str, str] = Field(
        default_factory=dict, description="readiness only: each dependency's state"
    )

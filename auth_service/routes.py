"""The `/auth` calls of CONTRACT.md section 3: register, login, refresh, logout, me."""

from __future__ import annotations

import logging

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, empty, json
from sanic_ext import openapi
from tortoise.exceptions import IntegrityError

from auth_service import schemas
from auth_service.api_docs import BEARER_SCHEME, error_response, json_content
from auth_service.bodies import form_fields, is_form, parse_json, parse_model
from auth_service.context import AuthContext, auth_context, client_address
from auth_service.errors import (
    Busy,
    InvalidCredentials,
    NotAuthenticated,
    TooManyAttempts,
    UsernameTaken,
)
from auth_service.models import User
from auth_service.sessions import issue_refresh_token, revoke_token_family, rotate_refresh_token
from shared.tokens import ExpiredToken, InvalidToken

logger = logging.getLogger("auth_service.routes")

bp = Blueprint("auth", url_prefix="/auth")


def public_user(user: User) -> dict[str, object]:
    return schemas.UserPublic.model_validate(user, from_attributes=True).model_dump(mode="json")


async def token_pair(ctx: AuthContext, user: User, refresh_token: str) -> HTTPResponse:
    access = ctx.tokens.issue(user.id, user.username, ctx.settings.access_token_ttl)
    pair = schemas.TokenPair(
        access_token=access.token,
        token_type="bearer",  # noqa: S106 (the OAuth2 token type, not a secret)
        expires_in=access.expires_in,
        refresh_token=refresh_token,
    )
    # Tokens must never be cached by a browser or a proxy (RFC 6749 section 5.1).
    return json(pair.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@bp.post("/register")
@openapi.operation("register")
@openapi.summary("Create an account")
@openapi.body(json_content(schemas.UserCreate), required=True)
@openapi.response(201, json_content(schemas.UserPublic), "The new user")
@error_response(409, "username_taken: the username (in any letter case) exists")
@error_response(422, "validation_error: `errors` names each bad field")
@error_response(429, "too_many_attempts: too many registrations from this address; see Retry-After")
@error_response(503, "busy: too many passwords waiting to be hashed; see Retry-After")
async def register(request: Request) -> HTTPResponse:
    ctx = auth_context(request)
    new = parse_json(request, schemas.UserCreate)
    address = client_address(request)
    attempt = await ctx.limits.start_registration(address)
    if attempt.retry_after:
        logger.warning("registration throttled", extra={"client": address})
        ctx.metrics.register_throttled.inc()
        ctx.metrics.throttled_register.inc()
        raise TooManyAttempts(
            attempt.retry_after, "Too many registrations from this address; try later."
        )
    # Every attempt that gets to hashing counts (a taken name costs a hash as well).
    async with attempt:
        # Hash first, then insert: the unique index settles races, and a taken name costs
        # about as long as a free one.
        try:
            password_hash = await ctx.passwords.hash(new.password)
        except Busy:
            attempt.void()  # refused before any work: not counted
            ctx.metrics.register_busy.inc()
            raise
        try:
            user = await User.create(
                username=new.username,
                username_key=new.username.lower(),
                password_hash=password_hash,
            )
        except IntegrityError:
            ctx.metrics.register_taken.inc()
            raise UsernameTaken() from None
    ctx.metrics.register_created.inc()
    logger.info("user registered", extra={"user_id": user.id})
    return json(public_user(user), status=201)


async def find_user(username: str) -> User | None:
    """The user of `username` in any letter case, if there is one."""
    # A name that breaks the registration rules can't exist, and must not reach the query:
    # Tortoise refuses a value longer than the column and PostgreSQL a NUL (both a 500).
    if not schemas.is_possible_username(username):
        return None
    return await User.get_or_none(username_key=username.lower())


@bp.post("/login")
@openapi.operation("login")
@openapi.summary("Log in with a username and password (OAuth2 password flow)")
@openapi.body(
    {
        **json_content(schemas.LoginForm, "application/x-www-form-urlencoded"),
        **json_content(schemas.LoginJSON),
    },
    required=True,
)
@openapi.response(200, json_content(schemas.TokenPair), "An access token and a refresh token")
@error_response(401, "invalid_credentials: unknown user or wrong password (same answer)")
@error_response(422, "validation_error: a field is missing or malformed")
@error_response(429, "too_many_attempts: too many failures; see Retry-After")
@error_response(503, "busy: too many passwords waiting to be checked; see Retry-After")
async def login(request: Request) -> HTTPResponse:
    ctx = auth_context(request)
    if is_form(request):
        credentials: schemas.LoginForm | schemas.LoginJSON = parse_model(
            schemas.LoginForm, form_fields(request)
        )
    else:
        credentials = parse_json(request, schemas.LoginJSON)
    username, address = credentials.username, client_address(request)
    attempt = await ctx.limits.start_login(username, address)
    if attempt.retry_after:
        logger.warning("login throttled", extra={"client": address})
        ctx.metrics.login_throttled.inc()
        ctx.metrics.throttled_login.inc()
        raise TooManyAttempts(attempt.retry_after)
    # The attempt counts as a failure until proven otherwise, so that concurrent guesses
    # can't all slip under the limit while their hashes are being checked.
    async with attempt:
        user = await find_user(username)
        try:
            ok, new_hash = await ctx.passwords.verify(
                credentials.password, user.password_hash if user else None
            )
        except Busy:
            attempt.void()  # never checked: not a failure
            ctx.metrics.login_busy.inc()
            raise
        if user is None or not ok:
            # The username is not logged: people type passwords into that field.
            logger.info("login failed", extra={"client": address})
            ctx.metrics.login_invalid.inc()
            raise InvalidCredentials()
        attempt.succeeded()
    ctx.metrics.login_success.inc()
    if new_hash:
        user.password_hash = new_hash
        await user.save(update_fields=["password_hash"])
    refresh = await issue_refresh_token(user, ctx.settings.refresh_token_ttl)
    logger.info("login", extra={"user_id": user.id, "family_id": str(refresh.family_id)})
    return await token_pair(ctx, user, refresh.token)


@bp.post("/refresh")
@openapi.operation("refresh")
@openapi.summary("Trade a refresh token for a new pair (the old one is spent)")
@openapi.body(json_content(schemas.RefreshRequest), required=True)
@openapi.response(200, json_content(schemas.TokenPair), "A new access token and refresh token")
@error_response(401, "invalid_refresh_token: unknown, expired, spent or revoked")
@error_response(422, "validation_error: refresh_token missing or malformed")
async def refresh(request: Request) -> HTTPResponse:
    ctx = auth_context(request)
    body = parse_json(request, schemas.RefreshRequest)
    user, new = await rotate_refresh_token(body.refresh_token, ctx.settings.refresh_token_ttl)
    return await token_pair(ctx, user, new.token)


@bp.post("/logout")
@openapi.operation("logout")
@openapi.summary("Revoke a refresh token and every token of its login session")
@openapi.body(json_content(schemas.RefreshRequest), required=True)
@openapi.response(204, {}, "Logged out (also when the token was unknown or already revoked)")
@error_response(422, "validation_error: refresh_token missing or malformed")
async def logout(request: Request) -> HTTPResponse:
    body = parse_json(request, schemas.RefreshRequest)
    await revoke_token_family(body.refresh_token)
    return empty(status=204)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("A bearer access token is required", presented=False)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("The Authorization header must be 'Bearer <token>'")
    return token.strip()


def user_id_from(subject: str) -> int | None:
    """The user id in a token's `sub`, if it can be one (a positive 32-bit integer)."""
    if subject.isascii() and subject.isdigit() and len(subject) <= 10:
        value = int(subject)
        return value if 0 < value < 2**31 else None
    return None


@bp.get("/me")
@openapi.operation("me")
@openapi.summary("The user of the access token")
@openapi.secured(BEARER_SCHEME)
@openapi.response(200, json_content(schemas.UserPublic), "The current user")
@error_response(401, "invalid_token / token_expired: missing, invalid or expired token")
async def me(request: Request) -> HTTPResponse:
    ctx = auth_context(request)
    try:
        claims = ctx.tokens.verify(bearer_token(request))
    except ExpiredToken:
        raise NotAuthenticated("The access token has expired", code="token_expired") from None
    except InvalidToken:
        raise NotAuthenticated("The access token is invalid") from None
    user_id = user_id_from(claims.user_id)
    user = await User.get_or_none(id=user_id) if user_id is not None else None
    if user is None:
        raise NotAuthenticated("The access token's user does not exist")
    return json(public_user(user))

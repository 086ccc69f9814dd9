"""Refresh tokens: issued per login, single use, rotated on refresh, revoked by family.

A login starts a family (a random UUID). Each refresh spends the presented token and adds
a fresh one to the same family. Presenting a spent token again means two parties hold the
family's tokens (one of them stolen), so the whole family is revoked: the thief's token and
the legitimate user's newer one alike. Only SHA-256 digests of tokens are stored.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from auth_service.errors import InvalidRefreshToken
from auth_service.models import RefreshToken, User

logger = logging.getLogger("auth_service.sessions")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NewRefreshToken:
    token: str
    family_id: uuid.UUID


async def issue_refresh_token(
    user: User, ttl_seconds: int, family_id: uuid.UUID | None = None
) -> NewRefreshToken:
    """Store a new refresh token for `user` (in a new family unless one is given)."""
    token = secrets.token_urlsafe(32)
    family = family_id or uuid.uuid4()
    await RefreshToken.create(
        user=user,
        family_id=family,
        token_hash=digest(token),
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    return NewRefreshToken(token, family)


async def revoke_family(family_id: uuid.UUID) -> int:
    """Revoke every live token of a family; returns how many rows changed."""
    return await RefreshToken.filter(family_id=family_id, revoked_at__isnull=True).update(
        revoked_at=utcnow()
    )


async def rotate_refresh_token(token: str, ttl_seconds: int) -> tuple[User, NewRefreshToken]:
    """Spend `token` and return its user with the family's next token.

    Raises `InvalidRefreshToken` for an unknown, expired, revoked or spent token; a spent
    one also revokes its family.
    """
    row = await RefreshToken.get_or_none(token_hash=digest(token)).prefetch_related("user")
    if row is None or row.revoked_at is not None:
        raise InvalidRefreshToken()
    now = utcnow()
    if row.used_at is not None:
        await _reuse_detected(row)
        raise InvalidRefreshToken()
    if row.expires_at <= now:
        raise InvalidRefreshToken()
    async with in_transaction():
        # Conditional update: of two concurrent refreshes with one token, only one wins;
        # the loser is a reuse like any other.
        spent = await RefreshToken.filter(
            id=row.id, used_at__isnull=True, revoked_at__isnull=True
        ).update(used_at=now)
        new = await issue_refresh_token(row.user, ttl_seconds, row.family_id) if spent else None
    if new is None:
        await _reuse_detected(row)
        raise InvalidRefreshToken()
    return row.user, new


async def _reuse_detected(row: RefreshToken) -> None:
    revoked = await revoke_family(row.family_id)
    logger.warning(
        "spent refresh token reused; family revoked",
        extra={"user_id": row.user_id, "family_id": str(row.family_id), "revoked": revoked},
    )


async def revoke_token_family(token: str) -> None:
    """Logout: revoke the family of `token`, if it is one of ours (silently otherwise)."""
    row = await RefreshToken.get_or_none(token_hash=digest(token))
    if row is not None:
        revoked = await revoke_family(row.family_id)
        logger.info("logged out", extra={"user_id": row.user_id, "revoked": revoked})
